"""Library passages in the reflection: each passage is its own numbered source, citations
carry the passage, and the offline provider quotes the passage's text."""

from __future__ import annotations

from ponder.type.v1 import document_pb2
from ponder_reflection.citations import validate_citations
from ponder_reflection.convert import citation_to_proto, source_documents
from ponder_reflection.loop import reflect, validate_spec
from ponder_reflection.offline.provider import OfflineProvider
from ponder_reflection.types import ReflectionSpec


HANDBOOK = document_pb2.Document(
    id="library:handbook",
    title="Acme Operations Handbook",
    summary="Acme schedules nightly batch jobs with quantum annealing.",
    passages=[
        document_pb2.Passage(
            index=7,
            text="Acme schedules nightly batch jobs with quantum annealing every evening.",
            heading="Acme Operations Handbook > Scheduling",
            start_offset=2400,
            end_offset=2471,
            score=0.71,
        ),
        document_pb2.Passage(
            index=8,
            text="When the annealer is down, a greedy planner orders the batch jobs by deadline.",
            heading="Acme Operations Handbook > Scheduling",
            start_offset=2460,
            end_offset=2538,
            score=0.6,
        ),
    ],
)
PAPER = document_pb2.Document(id="arxiv:1", title="A paper", summary="Batch jobs are hard.")


def test_each_passage_is_a_numbered_source() -> None:
    """A document with passages becomes one source per passage (its text, heading, offsets);
    one without stays one source read from its summary."""
    first, second, paper = source_documents([HANDBOOK, PAPER])
    assert (first.id, second.id, paper.id) == ("library:handbook", "library:handbook", "arxiv:1")
    assert first.text == HANDBOOK.passages[0].text
    assert first.passage is not None
    assert (first.passage.index, first.passage.start, first.passage.end) == (7, 2400, 2471)
    assert first.passage.heading == "Acme Operations Handbook > Scheduling"
    assert paper.text == PAPER.summary
    assert paper.passage is None


def test_citation_names_the_passage() -> None:
    """`[2]` resolves to the second passage, and the proto citation carries it."""
    sources = source_documents([HANDBOOK, PAPER])
    check = validate_citations("Planners fall back [2]. Jobs are hard [3].", sources)
    (passage_cited, paper_cited) = check.citations
    message = citation_to_proto(passage_cited)
    assert message.document_id == "library:handbook"
    assert message.passage.index == 8
    assert (message.passage.start_offset, message.passage.end_offset) == (2460, 2538)
    assert message.passage.text.startswith("When the annealer is down")
    assert not citation_to_proto(paper_cited).HasField("passage")


def test_passages_of_one_document_count_once() -> None:
    """The document limit counts documents, not their passages."""
    spec = ReflectionSpec("topic", source_documents([HANDBOOK] * 30), 1, 7.0)
    assert len(spec.documents) == 60
    assert validate_spec(spec) == []


async def test_offline_provider_quotes_and_cites_the_passage() -> None:
    """The offline provider's text quotes the passage about quantum annealing and cites its
    number."""
    spec = ReflectionSpec(
        "How does Acme schedule nightly batch jobs with quantum annealing?",
        source_documents([HANDBOOK, PAPER]),
        1,
        7.0,
    )
    outcome = await reflect(OfflineProvider(), spec)
    cited = {c.index: c for c in outcome.citations}
    assert 1 in cited
    assert cited[1].passage is not None
    assert "quantum annealing" in cited[1].passage.text
    assert "[1]" in outcome.text


def test_prompt_names_the_section_or_page() -> None:
    """The model's source list shows a passage's section (or PDF page) after the title."""
    from ponder_reflection.openai_provider import sources_block

    block = sources_block(source_documents([HANDBOOK, PAPER]))
    assert (
        "[1] Title: Acme Operations Handbook (section: Acme Operations Handbook > Scheduling)"
        in block
    )
    assert "[3] Title: A paper\nBatch jobs are hard." in block
