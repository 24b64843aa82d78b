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

class ReflectionStepKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REFLECTION_STEP_KIND_UNSPECIFIED: _ClassVar[ReflectionStepKind]
    REFLECTION_STEP_KIND_DRAFT: _ClassVar[ReflectionStepKind]
    REFLECTION_STEP_KIND_CRITIQUE: _ClassVar[ReflectionStepKind]
    REFLECTION_STEP_KIND_REFINE: _ClassVar[ReflectionStepKind]

class StopReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STOP_REASON_UNSPECIFIED: _ClassVar[StopReason]
    STOP_REASON_SCORE_THRESHOLD_REACHED: _ClassVar[StopReason]
    STOP_REASON_MAX_ITERATIONS_REACHED: _ClassVar[StopReason]
    STOP_REASON_NO_ISSUES: _ClassVar[StopReason]
    STOP_REASON_BUDGET_EXHAUSTED: _ClassVar[StopReason]
REFLECTION_STEP_KIND_UNSPECIFIED: ReflectionStepKind
REFLECTION_STEP_KIND_DRAFT: ReflectionStepKind
REFLECTION_STEP_KIND_CRITIQUE: ReflectionStepKind
REFLECTION_STEP_KIND_REFINE: ReflectionStepKind
STOP_REASON_UNSPECIFIED: StopReason
STOP_REASON_SCORE_THRESHOLD_REACHED: StopReason
STOP_REASON_MAX_ITERATIONS_REACHED: StopReason
STOP_REASON_NO_ISSUES: StopReason
STOP_REASON_BUDGET_EXHAUSTED: StopReason

class ReflectRequest(_message.Message):
    __slots__ = ("topic", "documents", "max_iterations", "score_threshold", "max_tokens", "max_cost_usd")
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    DOCUMENTS_FIELD_NUMBER: _ClassVar[int]
    MAX_ITERATIONS_FIELD_NUMBER: _ClassVar[int]
    SCORE_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    MAX_TOKENS_FIELD_NUMBER: _ClassVar[int]
    MAX_COST_USD_FIELD_NUMBER: _ClassVar[int]
    topic: str
    documents: _containers.RepeatedCompositeFieldContainer[_document_pb2.Document]
    max_iterations: int
    score_threshold: float
    max_tokens: int
    max_cost_usd: float
    def __init__(self, topic: _Optional[str] = ..., documents: _Optional[_Iterable[_Union[_document_pb2.Document, _Mapping]]] = ..., max_iterations: _Optional[int] = ..., score_threshold: _Optional[float] = ..., max_tokens: _Optional[int] = ..., max_cost_usd: _Optional[float] = ...) -> None: ...

class ReflectResponse(_message.Message):
    __slots__ = ("text", "iterations", "steps", "citations", "usage", "provider", "model", "offline", "score", "stop_reason", "warnings", "latency")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    ITERATIONS_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    CITATIONS_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    OFFLINE_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    STOP_REASON_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_FIELD_NUMBER: _ClassVar[int]
    text: str
    iterations: _containers.RepeatedCompositeFieldContainer[ReflectionIteration]
    steps: _containers.RepeatedCompositeFieldContainer[ReflectionStep]
    citations: _containers.RepeatedCompositeFieldContainer[_document_pb2.Citation]
    usage: _document_pb2.TokenUsage
    provider: str
    model: str
    offline: bool
    score: float
    stop_reason: StopReason
    warnings: _containers.RepeatedScalarFieldContainer[str]
    latency: _duration_pb2.Duration
    def __init__(self, text: _Optional[str] = ..., iterations: _Optional[_Iterable[_Union[ReflectionIteration, _Mapping]]] = ..., steps: _Optional[_Iterable[_Union[ReflectionStep, _Mapping]]] = ..., citations: _Optional[_Iterable[_Union[_document_pb2.Citation, _Mapping]]] = ..., usage: _Optional[_Union[_document_pb2.TokenUsage, _Mapping]] = ..., provider: _Optional[str] = ..., model: _Optional[str] = ..., offline: _Optional[bool] = ..., score: _Optional[float] = ..., stop_reason: _Optional[_Union[StopReason, str]] = ..., warnings: _Optional[_Iterable[str]] = ..., latency: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class StreamReflectRequest(_message.Message):
    __slots__ = ("topic", "documents", "max_iterations", "score_threshold", "completed_steps", "max_tokens", "max_cost_usd")
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    DOCUMENTS_FIELD_NUMBER: _ClassVar[int]
    MAX_ITERATIONS_FIELD_NUMBER: _ClassVar[int]
    SCORE_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_STEPS_FIELD_NUMBER: _ClassVar[int]
    MAX_TOKENS_FIELD_NUMBER: _ClassVar[int]
    MAX_COST_USD_FIELD_NUMBER: _ClassVar[int]
    topic: str
    documents: _containers.RepeatedCompositeFieldContainer[_document_pb2.Document]
    max_iterations: int
    score_threshold: float
    completed_steps: _containers.RepeatedCompositeFieldContainer[ReflectionStep]
    max_tokens: int
    max_cost_usd: float
    def __init__(self, topic: _Optional[str] = ..., documents: _Optional[_Iterable[_Union[_document_pb2.Document, _Mapping]]] = ..., max_iterations: _Optional[int] = ..., score_threshold: _Optional[float] = ..., completed_steps: _Optional[_Iterable[_Union[ReflectionStep, _Mapping]]] = ..., max_tokens: _Optional[int] = ..., max_cost_usd: _Optional[float] = ...) -> None: ...

class StreamReflectResponse(_message.Message):
    __slots__ = ("step_started", "step_finished", "text_delta", "completed")
    STEP_STARTED_FIELD_NUMBER: _ClassVar[int]
    STEP_FINISHED_FIELD_NUMBER: _ClassVar[int]
    TEXT_DELTA_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_FIELD_NUMBER: _ClassVar[int]
    step_started: ReflectionStep
    step_finished: ReflectionStep
    text_delta: str
    completed: ReflectResponse
    def __init__(self, step_started: _Optional[_Union[ReflectionStep, _Mapping]] = ..., step_finished: _Optional[_Union[ReflectionStep, _Mapping]] = ..., text_delta: _Optional[str] = ..., completed: _Optional[_Union[ReflectResponse, _Mapping]] = ...) -> None: ...

class Critique(_message.Message):
    __slots__ = ("score", "issues", "suggestions")
    SCORE_FIELD_NUMBER: _ClassVar[int]
    ISSUES_FIELD_NUMBER: _ClassVar[int]
    SUGGESTIONS_FIELD_NUMBER: _ClassVar[int]
    score: float
    issues: _containers.RepeatedScalarFieldContainer[str]
    suggestions: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, score: _Optional[float] = ..., issues: _Optional[_Iterable[str]] = ..., suggestions: _Optional[_Iterable[str]] = ...) -> None: ...

class ReflectionIteration(_message.Message):
    __slots__ = ("iteration", "draft", "critique")
    ITERATION_FIELD_NUMBER: _ClassVar[int]
    DRAFT_FIELD_NUMBER: _ClassVar[int]
    CRITIQUE_FIELD_NUMBER: _ClassVar[int]
    iteration: int
    draft: str
    critique: Critique
    def __init__(self, iteration: _Optional[int] = ..., draft: _Optional[str] = ..., critique: _Optional[_Union[Critique, _Mapping]] = ...) -> None: ...

class ReflectionStep(_message.Message):
    __slots__ = ("kind", "iteration", "text", "critique", "usage", "latency")
    KIND_FIELD_NUMBER: _ClassVar[int]
    ITERATION_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    CRITIQUE_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    LATENCY_FIELD_NUMBER: _ClassVar[int]
    kind: ReflectionStepKind
    iteration: int
    text: str
    critique: Critique
    usage: _document_pb2.TokenUsage
    latency: _duration_pb2.Duration
    def __init__(self, kind: _Optional[_Union[ReflectionStepKind, str]] = ..., iteration: _Optional[int] = ..., text: _Optional[str] = ..., critique: _Optional[_Union[Critique, _Mapping]] = ..., usage: _Optional[_Union[_document_pb2.TokenUsage, _Mapping]] = ..., latency: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...
