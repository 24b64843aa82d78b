import datetime

from google.api import annotations_pb2 as _annotations_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import duration_pb2 as _duration_pb2
from ponder.type.v1 import document_pb2 as _document_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SourceState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SOURCE_STATE_UNSPECIFIED: _ClassVar[SourceState]
    SOURCE_STATE_OK: _ClassVar[SourceState]
    SOURCE_STATE_TIMEOUT: _ClassVar[SourceState]
    SOURCE_STATE_ERROR: _ClassVar[SourceState]
    SOURCE_STATE_DISABLED: _ClassVar[SourceState]

class RankingMethod(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RANKING_METHOD_UNSPECIFIED: _ClassVar[RankingMethod]
    RANKING_METHOD_EMBEDDING_SIMILARITY: _ClassVar[RankingMethod]
    RANKING_METHOD_SOURCE_ORDER: _ClassVar[RankingMethod]
SOURCE_STATE_UNSPECIFIED: SourceState
SOURCE_STATE_OK: SourceState
SOURCE_STATE_TIMEOUT: SourceState
SOURCE_STATE_ERROR: SourceState
SOURCE_STATE_DISABLED: SourceState
RANKING_METHOD_UNSPECIFIED: RankingMethod
RANKING_METHOD_EMBEDDING_SIMILARITY: RankingMethod
RANKING_METHOD_SOURCE_ORDER: RankingMethod

class GetLibraryRequest(_message.Message):
    __slots__ = ("tenant",)
    TENANT_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    def __init__(self, tenant: _Optional[str] = ...) -> None: ...

class GetLibraryResponse(_message.Message):
    __slots__ = ("version", "document_count")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_COUNT_FIELD_NUMBER: _ClassVar[int]
    version: str
    document_count: int
    def __init__(self, version: _Optional[str] = ..., document_count: _Optional[int] = ...) -> None: ...

class SearchSourcesRequest(_message.Message):
    __slots__ = ("query", "sources", "max_results", "source_timeout", "include_domains", "exclude_domains", "tenant")
    QUERY_FIELD_NUMBER: _ClassVar[int]
    SOURCES_FIELD_NUMBER: _ClassVar[int]
    MAX_RESULTS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_DOMAINS_FIELD_NUMBER: _ClassVar[int]
    EXCLUDE_DOMAINS_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    query: str
    sources: _containers.RepeatedScalarFieldContainer[_document_pb2.SourceKind]
    max_results: int
    source_timeout: _duration_pb2.Duration
    include_domains: _containers.RepeatedScalarFieldContainer[str]
    exclude_domains: _containers.RepeatedScalarFieldContainer[str]
    tenant: str
    def __init__(self, query: _Optional[str] = ..., sources: _Optional[_Iterable[_Union[_document_pb2.SourceKind, str]]] = ..., max_results: _Optional[int] = ..., source_timeout: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., include_domains: _Optional[_Iterable[str]] = ..., exclude_domains: _Optional[_Iterable[str]] = ..., tenant: _Optional[str] = ...) -> None: ...

class SearchSourcesResponse(_message.Message):
    __slots__ = ("documents", "source_statuses", "duplicates_removed", "ranking", "ranking_note")
    DOCUMENTS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_STATUSES_FIELD_NUMBER: _ClassVar[int]
    DUPLICATES_REMOVED_FIELD_NUMBER: _ClassVar[int]
    RANKING_FIELD_NUMBER: _ClassVar[int]
    RANKING_NOTE_FIELD_NUMBER: _ClassVar[int]
    documents: _containers.RepeatedCompositeFieldContainer[_document_pb2.Document]
    source_statuses: _containers.RepeatedCompositeFieldContainer[SourceStatus]
    duplicates_removed: int
    ranking: RankingMethod
    ranking_note: str
    def __init__(self, documents: _Optional[_Iterable[_Union[_document_pb2.Document, _Mapping]]] = ..., source_statuses: _Optional[_Iterable[_Union[SourceStatus, _Mapping]]] = ..., duplicates_removed: _Optional[int] = ..., ranking: _Optional[_Union[RankingMethod, str]] = ..., ranking_note: _Optional[str] = ...) -> None: ...

class SourceStatus(_message.Message):
    __slots__ = ("source", "state", "latency", "result_count", "message", "cached")
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    LATENCY_FIELD_NUMBER: _ClassVar[int]
    RESULT_COUNT_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    CACHED_FIELD_NUMBER: _ClassVar[int]
    source: _document_pb2.SourceKind
    state: SourceState
    latency: _duration_pb2.Duration
    result_count: int
    message: str
    cached: bool
    def __init__(self, source: _Optional[_Union[_document_pb2.SourceKind, str]] = ..., state: _Optional[_Union[SourceState, str]] = ..., latency: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., result_count: _Optional[int] = ..., message: _Optional[str] = ..., cached: _Optional[bool] = ...) -> None: ...
