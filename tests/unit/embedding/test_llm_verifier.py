"""The optional LLM verifier against the project's fake OpenAI server (real openai client,
real HTTP on 127.0.0.1): asked only about undecided pairs, its yes serves, its no refuses, its
answers are remembered, and a slow model leaves the deterministic rejection in place."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from openai import AsyncOpenAI

from ponder_devstack.fake_openai import Behaviour, FakeOpenAI, serve_fake_openai
from ponder_embedding.cache.core import ACCEPTED, REJECTED, SemanticCache
from ponder_embedding.cache.sqlite_backend import SqliteBackend
from ponder_embedding.cache.verifier import Verifier
from ponder_embedding.cache.verifier.llm import LlmJudge
from tests.support.vectors import DIM, bag_of_words


STORED = "How do I prune embeddings for search?"
ASKED = "How do I compress embeddings for search?"  # one content word each: undecided


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    """A started fake OpenAI server."""
    server = serve_fake_openai()
    yield server
    server.close()


@pytest.fixture
async def judge(fake: FakeOpenAI) -> AsyncIterator[LlmJudge]:
    """An LLM verifier on the fake, 1 s timeout."""
    async with AsyncOpenAI(base_url=fake.base_url, api_key="sk-test", max_retries=0) as client:
        yield LlmJudge(client, "gpt-4o-mini", timeout=1.0)


@pytest.fixture
async def cache(tmp_path: Path, judge: LlmJudge) -> AsyncIterator[SemanticCache]:
    """A verifying cache with the LLM verifier."""
    made = SemanticCache(
        SqliteBackend(tmp_path / "cache.sqlite3"),
        bag_of_words,
        dimensions=DIM,
        max_entries=100,
        default_ttl_seconds=100.0,
        default_threshold=0.3,
        verifier=Verifier(),
        judge=judge,
    )
    await made.start()
    yield made
    await made.close()


def test_only_single_word_differences_are_undecided() -> None:
    """The pair above is undecided; a negation or an extra word is not."""
    verifier = Verifier()
    assert verifier.verify(STORED, ASKED).undecided
    assert not verifier.verify(STORED, "How do I not prune embeddings for search?").undecided
    assert not verifier.verify(STORED, "How do I prune embeddings for code search?").undecided


async def test_a_yes_serves_and_is_remembered(
    cache: SemanticCache, judge: LlmJudge, fake: FakeOpenAI
) -> None:
    """The model says "same": the entry is served with the LLM's reason; asking again makes
    no second call."""
    await cache.store("ns", STORED, b"A")
    first = await cache.lookup("ns", ASKED)
    again = await cache.lookup("ns", ASKED)
    assert first.hit
    assert again.hit
    assert first.verdict == ACCEPTED
    assert first.reason.startswith("the LLM verifier judged them the same")
    assert judge.calls == 1
    assert len([r for r in fake.requests if r[1].endswith("/chat/completions")]) == 1


async def test_a_no_refuses(cache: SemanticCache, fake: FakeOpenAI) -> None:
    """The model says "different": the deterministic reason is reported."""
    fake.behaviour = Behaviour(same_question=False)
    await cache.store("ns", STORED, b"A")
    result = await cache.lookup("ns", ASKED)
    assert not result.hit
    assert result.verdict == REJECTED
    assert result.reason == 'content words differ ("compress" vs "prune")'


async def test_a_slow_model_leaves_the_rejection(
    cache: SemanticCache, judge: LlmJudge, fake: FakeOpenAI
) -> None:
    """Beyond the timeout the lookup misses with the deterministic reason, and the missing
    answer is not remembered."""
    fake.behaviour = Behaviour(latency=3.0)
    await cache.store("ns", STORED, b"A")
    result = await cache.lookup("ns", ASKED)
    assert not result.hit
    assert result.category == "content"
    fake.behaviour = Behaviour()
    assert (await cache.lookup("ns", ASKED)).hit
    assert judge.calls == 2
