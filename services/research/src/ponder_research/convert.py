"""Translation between the research domain and ponder.*.v1 messages."""

from __future__ import annotations

from ponder.research.v1 import research_service_pb2 as research_pb2
from ponder.type.v1 import document_pb2
from ponder_research.documents import FoundDocument, SourceKind
from ponder_research.ranking import Ranking
from ponder_research.search import SourceOutcome, SourceState
from ponder_runtime.protobuf import duration, timestamp


KIND_TO_PROTO = {
    SourceKind.ARXIV: document_pb2.SOURCE_KIND_ARXIV,
    SourceKind.WEB: document_pb2.SOURCE_KIND_WEB,
    SourceKind.LIBRARY: document_pb2.SOURCE_KIND_LIBRARY,
}
PROTO_TO_KIND = {value: key for key, value in KIND_TO_PROTO.items()}
RANKING_TO_PROTO = {
    Ranking.EMBEDDING_SIMILARITY: research_pb2.RANKING_METHOD_EMBEDDING_SIMILARITY,
    Ranking.SOURCE_ORDER: research_pb2.RANKING_METHOD_SOURCE_ORDER,
}
STATE_TO_PROTO = {
    SourceState.OK: research_pb2.SOURCE_STATE_OK,
    SourceState.TIMEOUT: research_pb2.SOURCE_STATE_TIMEOUT,
    SourceState.ERROR: research_pb2.SOURCE_STATE_ERROR,
    SourceState.DISABLED: research_pb2.SOURCE_STATE_DISABLED,
}


def document_to_proto(doc: FoundDocument) -> document_pb2.Document:
    """ponder.type.v1.Document for a found document."""
    message = document_pb2.Document(
        id=doc.id,
        title=doc.title,
        authors=doc.authors,
        url=doc.url,
        summary=doc.summary,
        source=KIND_TO_PROTO[doc.source],
        score=doc.score,
        categories=doc.categories,
        pdf_url=doc.pdf_url,
        found_in=[KIND_TO_PROTO[kind] for kind in doc.found_in or (doc.source,)],
        doi=doc.doi,
        passages=[
            document_pb2.Passage(
                index=hit.passage.index,
                text=hit.passage.text,
                heading=hit.passage.heading,
                page=hit.passage.page,
                start_offset=hit.passage.start,
                end_offset=hit.passage.end,
                score=hit.score,
            )
            for hit in doc.passages
        ],
    )
    if doc.published is not None:
        message.published_time.CopyFrom(timestamp(doc.published))
    if doc.updated is not None:
        message.update_time.CopyFrom(timestamp(doc.updated))
    return message


def outcome_to_proto(outcome: SourceOutcome) -> research_pb2.SourceStatus:
    """ponder.research.v1.SourceStatus for a source outcome."""
    return research_pb2.SourceStatus(
        source=KIND_TO_PROTO[outcome.source],
        state=STATE_TO_PROTO[outcome.state],
        latency=duration(outcome.latency_s),
        result_count=outcome.result_count,
        message=outcome.message,
        cached=outcome.cached,
    )
