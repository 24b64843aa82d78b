"""SemanticCache with the verifier: candidates by cosine, served only when verified; misses
say why; rejections counted by reason; TTL fixed at store time; invalidation by topic prefix
and namespace prefix. Vectors from the bag-of-words projection of test_cache_core."""

from __future__ import annotations

from pathlib import Path

import pytest

from ponder_embedding.cache.core import (
    ACCEPTED,
    BELOW_THRESHOLD,
    EMPTY,
    EXACT,
    REJECTED,
    SemanticCache,
)
from ponder_embedding.cache.sqlite_backend import SqliteBackend
from ponder_embedding.cache.verifier import Verifier
from tests.support.clock import Clock
from tests.support.vectors import DIM, bag_of_words


@pytest.fixture(scope="module")
def verifier() -> Verifier:
    """The packaged verifier."""
    return Verifier()


@pytest.fixture
async def cache(tmp_path: Path, verifier: Verifier):
    """A verifying cache with a low recall threshold, over SQLite, on a settable clock."""
    clock = Clock()
    made = SemanticCache(
        SqliteBackend(tmp_path / "cache.sqlite3"),
        bag_of_words,
        dimensions=DIM,
        max_entries=100,
        default_ttl_seconds=100.0,
        default_threshold=0.3,
        verifier=verifier,
        clock=clock,
    )
    await made.start()
    made.test_clock = clock  # type: ignore[attr-defined]
    yield made
    await made.close()


async def test_negated_candidate_is_rejected_with_its_reason(cache: SemanticCache) -> None:
    """The opposite question is found as a candidate but refused, naming the negation."""
    await cache.store("ns", "why does self-consistency improve reasoning", b"A")
    result = await cache.lookup("ns", "why does self-consistency fail to improve reasoning")
    assert not result.hit
    assert result.verdict == REJECTED
    assert result.category == "polarity"
    assert result.explain() == 'rejected: polarity differs ("fail")'
    assert result.candidate_text == "why does self-consistency improve reasoning"
    assert result.similarity > 0.3
    assert cache.stats("ns").rejections == {"polarity": 1}
    assert cache.stats().rejections == {"polarity": 1}


async def test_paraphrase_is_served_after_verification(cache: SemanticCache) -> None:
    """An acronym paraphrase is embedded in normalised form, found and accepted."""
    await cache.store("ns", "DPR for open domain question answering", b"A")
    result = await cache.lookup("ns", "dense passage retrieval for open-domain QA")
    assert result.hit
    assert result.verdict == ACCEPTED
    assert result.entry is not None
    assert result.entry.payload == b"A"
    assert result.similarity == pytest.approx(1.0, abs=1e-5)


async def test_the_best_accepted_candidate_wins(cache: SemanticCache) -> None:
    """A rejected nearer candidate does not hide an accepted one further down."""
    await cache.store("ns", "does rag reduce hallucinations in 2024", b"year")
    await cache.store("ns", "does rag reduce hallucinations", b"plain")
    result = await cache.lookup("ns", "does retrieval augmented generation reduce hallucinations")
    assert result.hit
    assert result.entry is not None
    assert result.entry.payload == b"plain"


async def test_miss_reasons_for_empty_and_dissimilar(cache: SemanticCache) -> None:
    """An empty namespace and a far-off text are misses that say so."""
    empty = await cache.lookup("ns", "what is lora")
    assert (empty.verdict, empty.reason) == (EMPTY, "no entry in the namespace")
    await cache.store("ns", "what is lora", b"A")
    exact = await cache.lookup("ns", "What is LoRA")
    assert exact.verdict == EXACT
    far = await cache.lookup("ns", "best pasta recipe with tomatoes", 0.9)
    assert far.verdict == BELOW_THRESHOLD
    assert far.candidate_text == "what is lora"
    assert "below 0.9" in far.reason


async def test_hits_never_extend_the_ttl(cache: SemanticCache) -> None:
    """An entry stored with a 100 s TTL expires at 100 s however often it is hit."""
    clock: Clock = cache.test_clock  # type: ignore[attr-defined]
    await cache.store("ns", "how does lora work", b"A")
    for _ in range(3):
        clock.now += 30
        assert (await cache.lookup("ns", "how does LoRA work")).hit
    clock.now += 11  # 101 s after the store
    assert not (await cache.lookup("ns", "how does LoRA work")).hit


async def test_invalidate_by_topic_prefix_and_namespace_prefix(cache: SemanticCache) -> None:
    """A topic prefix drops the matching entries only; a namespace prefix every namespace
    under it."""
    await cache.store("workflow/a/global", "How does LoRA work", b"1")
    await cache.store("workflow/a/global", "how does LoRA scale", b"2")
    await cache.store("workflow/a/global", "What is RAG", b"3")
    await cache.store("workflow/a/key-1", "What is RAG", b"4")
    await cache.store("workflow/b/global", "What is RAG", b"5")
    assert await cache.invalidate("workflow/a/global", topic_prefix="HOW DOES lora") == 2
    assert len(cache) == 3
    assert await cache.invalidate("workflow/a/", namespace_prefix=True) == 2
    assert len(cache) == 1
    assert (await cache.lookup("workflow/b/global", "What is RAG")).hit
