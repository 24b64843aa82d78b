import datetime

from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SourceKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SOURCE_KIND_UNSPECIFIED: _ClassVar[SourceKind]
    SOURCE_KIND_ARXIV: _ClassVar[SourceKind]
    SOURCE_KIND_WEB: _ClassVar[SourceKind]
    SOURCE_KIND_LIBRARY: _ClassVar[SourceKind]
SOURCE_KIND_UNSPECIFIED: SourceKind
SOURCE_KIND_ARXIV: SourceKind
SOURCE_KIND_WEB: SourceKind
SOURCE_KIND_LIBRARY: SourceKind

class Document(_message.Message):
    __slots__ = ("id", "title", "authors", "url", "summary", "published_time", "update_time", "source", "score", "categories", "pdf_url", "found_in", "doi", "passages")
    ID_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    AUTHORS_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    PUBLISHED_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    CATEGORIES_FIELD_NUMBER: _ClassVar[int]
    PDF_URL_FIELD_NUMBER: _ClassVar[int]
    FOUND_IN_FIELD_NUMBER: _ClassVar[int]
    DOI_FIELD_NUMBER: _ClassVar[int]
    PASSAGES_FIELD_NUMBER: _ClassVar[int]
    id: str
    title: str
    authors: _containers.RepeatedScalarFieldContainer[str]
    url: str
    summary: str
    published_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    source: SourceKind
    score: float
    categories: _containers.RepeatedScalarFieldContainer[str]
    pdf_url: str
    found_in: _containers.RepeatedScalarFieldContainer[SourceKind]
    doi: str
    passages: _containers.RepeatedCompositeFieldContainer[Passage]
    def __init__(self, id: _Optional[str] = ..., title: _Optional[str] = ..., authors: _Optional[_Iterable[str]] = ..., url: _Optional[str] = ..., summary: _Optional[str] = ..., published_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., source: _Optional[_Union[SourceKind, str]] = ..., score: _Optional[float] = ..., categories: _Optional[_Iterable[str]] = ..., pdf_url: _Optional[str] = ..., found_in: _Optional[_Iterable[_Union[SourceKind, str]]] = ..., doi: _Optional[str] = ..., passages: _Optional[_Iterable[_Union[Passage, _Mapping]]] = ...) -> None: ...

class Passage(_message.Message):
    __slots__ = ("index", "text", "heading", "page", "start_offset", "end_offset", "score")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    HEADING_FIELD_NUMBER: _ClassVar[int]
    PAGE_FIELD_NUMBER: _ClassVar[int]
    START_OFFSET_FIELD_NUMBER: _ClassVar[int]
    END_OFFSET_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    index: int
    text: str
    heading: str
    page: int
    start_offset: int
    end_offset: int
    score: float
    def __init__(self, index: _Optional[int] = ..., text: _Optional[str] = ..., heading: _Optional[str] = ..., page: _Optional[int] = ..., start_offset: _Optional[int] = ..., end_offset: _Optional[int] = ..., score: _Optional[float] = ...) -> None: ...

class Citation(_message.Message):
    __slots__ = ("index", "document_id", "title", "url", "passage")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_ID_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    PASSAGE_FIELD_NUMBER: _ClassVar[int]
    index: int
    document_id: str
    title: str
    url: str
    passage: Passage
    def __init__(self, index: _Optional[int] = ..., document_id: _Optional[str] = ..., title: _Optional[str] = ..., url: _Optional[str] = ..., passage: _Optional[_Union[Passage, _Mapping]] = ...) -> None: ...

class TokenUsage(_message.Message):
    __slots__ = ("prompt_tokens", "completion_tokens", "total_tokens")
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_TOKENS_FIELD_NUMBER: _ClassVar[int]
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    def __init__(self, prompt_tokens: _Optional[int] = ..., completion_tokens: _Optional[int] = ..., total_tokens: _Optional[int] = ...) -> None: ...
