import datetime

from google.api import annotations_pb2 as _annotations_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CacheVerdict(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CACHE_VERDICT_UNSPECIFIED: _ClassVar[CacheVerdict]
    CACHE_VERDICT_EXACT: _ClassVar[CacheVerdict]
    CACHE_VERDICT_ACCEPTED: _ClassVar[CacheVerdict]
    CACHE_VERDICT_REJECTED: _ClassVar[CacheVerdict]
    CACHE_VERDICT_BELOW_THRESHOLD: _ClassVar[CacheVerdict]
    CACHE_VERDICT_EMPTY: _ClassVar[CacheVerdict]
CACHE_VERDICT_UNSPECIFIED: CacheVerdict
CACHE_VERDICT_EXACT: CacheVerdict
CACHE_VERDICT_ACCEPTED: CacheVerdict
CACHE_VERDICT_REJECTED: CacheVerdict
CACHE_VERDICT_BELOW_THRESHOLD: CacheVerdict
CACHE_VERDICT_EMPTY: CacheVerdict

class EmbedTextsRequest(_message.Message):
    __slots__ = ("texts", "normalize")
    TEXTS_FIELD_NUMBER: _ClassVar[int]
    NORMALIZE_FIELD_NUMBER: _ClassVar[int]
    texts: _containers.RepeatedScalarFieldContainer[str]
    normalize: bool
    def __init__(self, texts: _Optional[_Iterable[str]] = ..., normalize: _Optional[bool] = ...) -> None: ...

class EmbedTextsResponse(_message.Message):
    __slots__ = ("embeddings", "model", "dimensions")
    EMBEDDINGS_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    DIMENSIONS_FIELD_NUMBER: _ClassVar[int]
    embeddings: _containers.RepeatedCompositeFieldContainer[Embedding]
    model: str
    dimensions: int
    def __init__(self, embeddings: _Optional[_Iterable[_Union[Embedding, _Mapping]]] = ..., model: _Optional[str] = ..., dimensions: _Optional[int] = ...) -> None: ...

class Embedding(_message.Message):
    __slots__ = ("values",)
    VALUES_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, values: _Optional[_Iterable[float]] = ...) -> None: ...

class RankDocumentsRequest(_message.Message):
    __slots__ = ("query", "candidates", "top_k")
    QUERY_FIELD_NUMBER: _ClassVar[int]
    CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    query: str
    candidates: _containers.RepeatedCompositeFieldContainer[RankCandidate]
    top_k: int
    def __init__(self, query: _Optional[str] = ..., candidates: _Optional[_Iterable[_Union[RankCandidate, _Mapping]]] = ..., top_k: _Optional[int] = ...) -> None: ...

class RankCandidate(_message.Message):
    __slots__ = ("id", "text")
    ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    id: str
    text: str
    def __init__(self, id: _Optional[str] = ..., text: _Optional[str] = ...) -> None: ...

class RankDocumentsResponse(_message.Message):
    __slots__ = ("results", "model")
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[RankedCandidate]
    model: str
    def __init__(self, results: _Optional[_Iterable[_Union[RankedCandidate, _Mapping]]] = ..., model: _Optional[str] = ...) -> None: ...

class RankedCandidate(_message.Message):
    __slots__ = ("id", "index", "score")
    ID_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    id: str
    index: int
    score: float
    def __init__(self, id: _Optional[str] = ..., index: _Optional[int] = ..., score: _Optional[float] = ...) -> None: ...

class LookupCacheRequest(_message.Message):
    __slots__ = ("namespace", "text", "similarity_threshold")
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    SIMILARITY_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    text: str
    similarity_threshold: float
    def __init__(self, namespace: _Optional[str] = ..., text: _Optional[str] = ..., similarity_threshold: _Optional[float] = ...) -> None: ...

class LookupCacheResponse(_message.Message):
    __slots__ = ("hit", "entry", "similarity", "candidate_text", "candidate_key", "verdict", "reason", "reason_category")
    HIT_FIELD_NUMBER: _ClassVar[int]
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    SIMILARITY_FIELD_NUMBER: _ClassVar[int]
    CANDIDATE_TEXT_FIELD_NUMBER: _ClassVar[int]
    CANDIDATE_KEY_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    REASON_CATEGORY_FIELD_NUMBER: _ClassVar[int]
    hit: bool
    entry: CacheEntry
    similarity: float
    candidate_text: str
    candidate_key: str
    verdict: CacheVerdict
    reason: str
    reason_category: str
    def __init__(self, hit: _Optional[bool] = ..., entry: _Optional[_Union[CacheEntry, _Mapping]] = ..., similarity: _Optional[float] = ..., candidate_text: _Optional[str] = ..., candidate_key: _Optional[str] = ..., verdict: _Optional[_Union[CacheVerdict, str]] = ..., reason: _Optional[str] = ..., reason_category: _Optional[str] = ...) -> None: ...

class StoreCacheRequest(_message.Message):
    __slots__ = ("namespace", "text", "payload", "payload_type", "ttl")
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_TYPE_FIELD_NUMBER: _ClassVar[int]
    TTL_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    text: str
    payload: bytes
    payload_type: str
    ttl: _duration_pb2.Duration
    def __init__(self, namespace: _Optional[str] = ..., text: _Optional[str] = ..., payload: _Optional[bytes] = ..., payload_type: _Optional[str] = ..., ttl: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class StoreCacheResponse(_message.Message):
    __slots__ = ("entry",)
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    entry: CacheEntry
    def __init__(self, entry: _Optional[_Union[CacheEntry, _Mapping]] = ...) -> None: ...

class CacheEntry(_message.Message):
    __slots__ = ("key", "namespace", "text", "payload", "payload_type", "create_time", "expire_time", "hit_count")
    KEY_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_TYPE_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    HIT_COUNT_FIELD_NUMBER: _ClassVar[int]
    key: str
    namespace: str
    text: str
    payload: bytes
    payload_type: str
    create_time: _timestamp_pb2.Timestamp
    expire_time: _timestamp_pb2.Timestamp
    hit_count: int
    def __init__(self, key: _Optional[str] = ..., namespace: _Optional[str] = ..., text: _Optional[str] = ..., payload: _Optional[bytes] = ..., payload_type: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., hit_count: _Optional[int] = ...) -> None: ...

class InvalidateCacheRequest(_message.Message):
    __slots__ = ("namespace", "key", "topic_prefix", "namespace_prefix")
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    TOPIC_PREFIX_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_PREFIX_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    key: str
    topic_prefix: str
    namespace_prefix: bool
    def __init__(self, namespace: _Optional[str] = ..., key: _Optional[str] = ..., topic_prefix: _Optional[str] = ..., namespace_prefix: _Optional[bool] = ...) -> None: ...

class InvalidateCacheResponse(_message.Message):
    __slots__ = ("removed_count",)
    REMOVED_COUNT_FIELD_NUMBER: _ClassVar[int]
    removed_count: int
    def __init__(self, removed_count: _Optional[int] = ...) -> None: ...

class GetCacheStatsRequest(_message.Message):
    __slots__ = ("namespace",)
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    def __init__(self, namespace: _Optional[str] = ...) -> None: ...

class GetCacheStatsResponse(_message.Message):
    __slots__ = ("entry_count", "hit_count", "miss_count", "hit_ratio", "eviction_count", "expiration_count", "rejection_counts")
    class RejectionCountsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    ENTRY_COUNT_FIELD_NUMBER: _ClassVar[int]
    HIT_COUNT_FIELD_NUMBER: _ClassVar[int]
    MISS_COUNT_FIELD_NUMBER: _ClassVar[int]
    HIT_RATIO_FIELD_NUMBER: _ClassVar[int]
    EVICTION_COUNT_FIELD_NUMBER: _ClassVar[int]
    EXPIRATION_COUNT_FIELD_NUMBER: _ClassVar[int]
    REJECTION_COUNTS_FIELD_NUMBER: _ClassVar[int]
    entry_count: int
    hit_count: int
    miss_count: int
    hit_ratio: float
    eviction_count: int
    expiration_count: int
    rejection_counts: _containers.ScalarMap[str, int]
    def __init__(self, entry_count: _Optional[int] = ..., hit_count: _Optional[int] = ..., miss_count: _Optional[int] = ..., hit_ratio: _Optional[float] = ..., eviction_count: _Optional[int] = ..., expiration_count: _Optional[int] = ..., rejection_counts: _Optional[_Mapping[str, int]] = ...) -> None: ...
