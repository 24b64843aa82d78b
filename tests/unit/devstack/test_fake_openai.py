"""The fake OpenAI server against the real `openai.AsyncOpenAI` (real sockets): completions,
streams, critiques, failures (429, 500, fail_next, malformed JSON, hangs), concurrency and
citations."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import re
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import openai
import pytest
from openai import AsyncOpenAI

from ponder_devstack.fake_openai import FakeOpenAI, serve_fake_openai


MODEL = "gpt-4o-mini"
DOCUMENTS = (
    "[1] Title: Retrieval-Augmented Generation for Knowledge-Intensive NLP Tasks\n"
    "RAG combines a parametric model with a dense vector index of Wikipedia.\n\n"
    "[2] Title: Dense Passage Retrieval for Open-Domain Question Answering\n"
    "A dual-encoder retriever beats BM25 on top-20 passage retrieval.\n\n"
    "[4] Title: Reflexion: Language Agents with Verbal Reinforcement Learning\n"
    "Agents reflect on feedback in words and keep the reflections in memory.\n"
)
QUESTION = "How do agents use retrieval and self-reflection?"
MARKER = re.compile(r"\[(\d+)\]")


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    """A started fake OpenAI server, closed after the test."""
    server = serve_fake_openai()
    yield server
    server.close()


@contextlib.asynccontextmanager
async def _client(fake: FakeOpenAI, **kwargs: Any) -> AsyncIterator[AsyncOpenAI]:
    """The real AsyncOpenAI pointed at the fake, without retries."""
    async with AsyncOpenAI(
        base_url=fake.base_url, api_key="sk-test", max_retries=0, **kwargs
    ) as client:
        yield client


def _draft_messages(documents: str = DOCUMENTS) -> list[Any]:
    """A draft request: numbered sources and a question in the user message."""
    return [
        {"role": "system", "content": "Write a short answer citing sources as [n]."},
        {"role": "user", "content": f"Sources:\n{documents}\nQuestion: {QUESTION}"},
    ]


def _critique_messages() -> list[Any]:
    """A critique request's messages (sent with response_format json_object)."""
    return [
        {"role": "system", "content": "Critique the draft; reply in JSON."},
        {"role": "user", "content": f"Sources:\n{DOCUMENTS}\nDraft: Agents reflect [4]."},
    ]


async def _critique(client: AsyncOpenAI) -> str:
    """The content of one json_object critique call."""
    reply = await client.chat.completions.create(
        model=MODEL, messages=_critique_messages(), response_format={"type": "json_object"}
    )
    return reply.choices[0].message.content or ""


async def _wait_for(predicate: Any, timeout: float = 5.0) -> None:
    """Poll until `predicate()` holds (the fake records on its own thread)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


async def test_plain_completion(fake: FakeOpenAI) -> None:
    """A plain call returns a full ChatCompletion for the request's model, with word usage."""
    messages = _draft_messages()
    async with _client(fake) as client:
        reply = await client.chat.completions.create(model="my-model", messages=messages)
    assert reply.object == "chat.completion"
    assert reply.id.startswith("chatcmpl-")
    assert reply.created > 0
    assert reply.model == "my-model"
    choice = reply.choices[0]
    assert choice.finish_reason == "stop"
    assert choice.message.role == "assistant"
    content = choice.message.content or ""
    assert content
    prompt_words = sum(len(m["content"].split()) for m in messages)
    assert reply.usage is not None
    assert reply.usage.prompt_tokens == prompt_words
    assert reply.usage.completion_tokens == len(content.split())
    assert reply.usage.total_tokens == prompt_words + len(content.split())
    (_, path, body) = fake.requests[-1]
    assert path == "/v1/chat/completions"
    assert body["model"] == "my-model"
    assert body["messages"] == messages
    assert fake.calls_by_status[200] == 1


async def test_stream_with_usage(fake: FakeOpenAI) -> None:
    """A stream sends role first, ~4-word deltas that join to the plain reply, then usage."""
    fake.behaviour.chunk_delay = 0.001
    async with _client(fake) as client:
        plain = await client.chat.completions.create(model=MODEL, messages=_draft_messages())
        stream = await client.chat.completions.create(
            model=MODEL,
            messages=_draft_messages(),
            stream=True,
            stream_options={"include_usage": True},
        )
        assert stream.response.headers["content-type"].startswith("text/event-stream")
        chunks = [chunk async for chunk in stream]
    assert all(c.object == "chat.completion.chunk" and c.model == MODEL for c in chunks)
    assert len({c.id for c in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    with_choices = [c for c in chunks if c.choices]
    deltas = [c.choices[0].delta.content or "" for c in with_choices]
    assert "".join(deltas) == plain.choices[0].message.content
    assert len(deltas) > 3
    assert all(len(d.split()) <= 4 for d in deltas)
    assert with_choices[-1].choices[0].finish_reason == "stop"
    assert all(c.choices[0].finish_reason is None for c in with_choices[:-1])
    last = chunks[-1]
    assert last.choices == []
    assert last.usage is not None
    assert plain.usage is not None
    assert last.usage.model_dump() == plain.usage.model_dump()


async def test_stream_without_usage(fake: FakeOpenAI) -> None:
    """Without include_usage a stream ends with the finish_reason chunk and carries no usage."""
    async with _client(fake) as client:
        stream = await client.chat.completions.create(
            model=MODEL, messages=_draft_messages(), stream=True
        )
        chunks = [chunk async for chunk in stream]
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(c.usage is None for c in chunks)


async def test_critique_follows_scores(fake: FakeOpenAI) -> None:
    """json_object calls return critique JSON with the queued scores, then default_score."""
    fake.behaviour.critique_scores = [6.0, 8.5, 10.0]
    async with _client(fake) as client:
        replies = [json.loads(await _critique(client)) for _ in range(4)]
    assert [r["score"] for r in replies] == [6.0, 8.5, 10.0, 9.0]
    for reply in replies:
        assert set(reply) == {"score", "issues", "suggestions"}
        assert all(isinstance(item, str) for item in reply["issues"] + reply["suggestions"])
        below_ten = reply["score"] < 10
        assert bool(reply["issues"]) is below_ten
        assert bool(reply["suggestions"]) is below_ten
    assert fake.behaviour.critique_scores == []


async def test_rate_limited(fake: FakeOpenAI) -> None:
    """A rate-limited call raises RateLimitError with Retry-After and an OpenAI error body."""
    fake.behaviour.rate_limit_fraction = 1.0
    async with _client(fake) as client:
        with pytest.raises(openai.RateLimitError) as caught:
            await client.chat.completions.create(model=MODEL, messages=_draft_messages())
    err = caught.value
    assert err.status_code == 429
    assert err.response.headers["retry-after"] == "0.1"
    assert isinstance(err.body, dict)
    assert err.body["type"] == "rate_limit_exceeded"
    assert err.body["message"]
    assert fake.calls_by_status == {429: 1}


async def test_rate_limit_fraction_is_seeded(fake: FakeOpenAI) -> None:
    """A fraction rate-limits the calls a seeded random.Random(seed) picks, reproducibly."""
    fake.behaviour.update(rate_limit_fraction=0.5, seed=7, retry_after="2")
    rng = random.Random(7)
    expected = [rng.random() < 0.5 for _ in range(30)]
    limited: list[bool] = []
    retry_afters: set[str] = set()
    async with _client(fake) as client:
        for _ in range(30):
            try:
                await client.models.list()
            except openai.RateLimitError as err:
                retry_afters.add(err.response.headers["retry-after"])
                limited.append(True)
            else:
                limited.append(False)
    assert limited == expected
    assert retry_afters == {"2"}
    assert 0 < sum(limited) < 30
    assert fake.calls_by_status[429] == sum(limited)


async def test_status_500(fake: FakeOpenAI) -> None:
    """A configured status 500 raises InternalServerError on every call."""
    fake.behaviour.status = 500
    async with _client(fake) as client:
        for _ in range(2):
            with pytest.raises(openai.InternalServerError) as caught:
                await client.chat.completions.create(model=MODEL, messages=_draft_messages())
            assert caught.value.status_code == 500
    assert fake.calls_by_status == {500: 2}


async def test_fail_next_then_success(fake: FakeOpenAI) -> None:
    """fail_next fails exactly the next N calls with status_when_failing, then calls succeed."""
    fake.behaviour.update(fail_next=2, status_when_failing=503)
    async with _client(fake) as client:
        for _ in range(2):
            with pytest.raises(openai.InternalServerError) as caught:
                await client.chat.completions.create(model=MODEL, messages=_draft_messages())
            assert caught.value.status_code == 503
        reply = await client.chat.completions.create(model=MODEL, messages=_draft_messages())
    assert reply.choices[0].message.content
    assert fake.behaviour.fail_next == 0
    assert fake.calls_by_status == {503: 2, 200: 1}


async def test_client_retries_reach_success(fake: FakeOpenAI) -> None:
    """With the client's own retries, a fail_next failure is retried into a success."""
    fake.behaviour.update(fail_next=1)
    async with AsyncOpenAI(base_url=fake.base_url, api_key="sk-test", max_retries=2) as client:
        reply = await client.chat.completions.create(model=MODEL, messages=_draft_messages())
    assert reply.choices[0].message.content
    assert fake.calls_by_status == {500: 1, 200: 1}


async def test_malformed_json_next(fake: FakeOpenAI) -> None:
    """malformed_json_next makes the next critiques non-JSON, then valid JSON resumes."""
    fake.behaviour.update(malformed_json_next=1, critique_scores=[7.5])
    async with _client(fake) as client:
        broken = await _critique(client)
        repaired = await _critique(client)
        draft = await client.chat.completions.create(model=MODEL, messages=_draft_messages())
    with pytest.raises(json.JSONDecodeError):
        json.loads(broken)
    assert json.loads(repaired)["score"] == 7.5  # the malformed reply used no score
    assert MARKER.search(draft.choices[0].message.content or "")
    assert fake.behaviour.malformed_json_next == 0


async def test_hang_times_out_and_records_disconnect(fake: FakeOpenAI) -> None:
    """A hanging call ends in APITimeoutError on the client and a recorded disconnect."""
    fake.behaviour.hang = True
    async with _client(fake, timeout=0.3) as client:
        with pytest.raises(openai.APITimeoutError):
            await client.chat.completions.create(model=MODEL, messages=_draft_messages())
    await _wait_for(lambda: fake.disconnects == 1 and fake.in_flight == 0)
    assert fake.calls_by_status == {}


async def test_disconnect_during_latency(fake: FakeOpenAI) -> None:
    """A client that gives up during the latency is recorded as a disconnect, not a reply."""
    fake.behaviour.latency = 5.0
    async with _client(fake, timeout=0.2) as client:
        started = time.monotonic()
        with pytest.raises(openai.APITimeoutError):
            await client.chat.completions.create(model=MODEL, messages=_draft_messages())
    await _wait_for(lambda: fake.disconnects == 1 and fake.in_flight == 0)
    assert time.monotonic() - started < 4.0
    assert fake.calls_by_status == {}


async def test_concurrent_calls_overlap(fake: FakeOpenAI) -> None:
    """300 concurrent calls with 0.5 s latency run together, not one after another."""
    fake.behaviour.latency = 0.5
    async with _client(fake) as client:
        started = time.monotonic()
        replies = await asyncio.gather(
            *(
                client.chat.completions.create(model=MODEL, messages=_draft_messages())
                for _ in range(300)
            )
        )
        elapsed = time.monotonic() - started
    assert len(replies) == 300
    assert all(r.choices[0].message.content for r in replies)
    assert elapsed < 15.0  # one after another would take 150 s
    assert fake.max_in_flight >= 250
    assert fake.in_flight == 0
    assert fake.calls_by_status == {200: 300}


async def test_draft_citations_point_to_supplied_documents(fake: FakeOpenAI) -> None:
    """Draft sentences each end with the [n] of a supplied document; [99] only if asked."""
    async with _client(fake) as client:
        reply = await client.chat.completions.create(model=MODEL, messages=_draft_messages())
        one_doc = await client.chat.completions.create(
            model=MODEL, messages=_draft_messages("[3] Title: Attention Is All You Need\n")
        )
        fake.behaviour.cite_missing = True
        missing = await client.chat.completions.create(model=MODEL, messages=_draft_messages())
    text = reply.choices[0].message.content or ""
    sentences = re.split(r"(?<=\.) ", text)
    assert 2 <= len(sentences) <= 3
    assert all(re.search(r" \[\d+\]\.$", sentence) for sentence in sentences)
    assert {int(n) for n in MARKER.findall(text)} <= {1, 2, 4}
    assert "Retrieval-Augmented Generation" in text
    one = one_doc.choices[0].message.content or ""
    assert set(MARKER.findall(one)) == {"3"}
    assert "Attention Is All You Need" in one
    cited_missing = [int(n) for n in MARKER.findall(missing.choices[0].message.content or "")]
    assert 99 in cited_missing
    assert set(cited_missing) - {99} <= {1, 2, 4}


async def test_models_list(fake: FakeOpenAI) -> None:
    """GET /v1/models lists the configured models; one model can be fetched by id."""
    async with _client(fake) as client:
        page = await client.models.list()
        model = await client.models.retrieve("gpt-4o")
        with pytest.raises(openai.NotFoundError):
            await client.models.retrieve("no-such-model")
    assert [m.id for m in page.data] == ["gpt-4o-mini", "gpt-4o"]
    assert model.object == "model"


def test_behaviour_update_rejects_unknown_knobs() -> None:
    """Behaviour.update sets known knobs together and refuses names that are not knobs."""
    fake = serve_fake_openai()
    try:
        fake.behaviour.update(latency=0.25, fail_next=3)
        assert (fake.behaviour.latency, fake.behaviour.fail_next) == (0.25, 3)
        with pytest.raises(AttributeError, match="no knob"):
            fake.behaviour.update(latencyy=1.0)
        fake.reset()
        assert fake.behaviour.fail_next == 0
        assert fake.base_url == f"http://127.0.0.1:{fake.port}/v1"
    finally:
        fake.close()
    fake.close()  # closing twice is harmless
