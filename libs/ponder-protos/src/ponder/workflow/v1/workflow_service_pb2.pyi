import datetime

from google.api import annotations_pb2 as _annotations_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.api import resource_pb2 as _resource_pb2
from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.rpc import status_pb2 as _status_pb2
from ponder.reflection.v1 import reflection_service_pb2 as _reflection_service_pb2
from ponder.research.v1 import research_service_pb2 as _research_service_pb2
from ponder.type.v1 import document_pb2 as _document_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class WorkflowKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    WORKFLOW_KIND_UNSPECIFIED: _ClassVar[WorkflowKind]
    WORKFLOW_KIND_REFLECTION: _ClassVar[WorkflowKind]
    WORKFLOW_KIND_RESEARCH: _ClassVar[WorkflowKind]
    WORKFLOW_KIND_RESEARCH_REFLECTION: _ClassVar[WorkflowKind]

class WorkflowState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    WORKFLOW_STATE_UNSPECIFIED: _ClassVar[WorkflowState]
    WORKFLOW_STATE_PENDING: _ClassVar[WorkflowState]
    WORKFLOW_STATE_RUNNING: _ClassVar[WorkflowState]
    WORKFLOW_STATE_SUCCEEDED: _ClassVar[WorkflowState]
    WORKFLOW_STATE_FAILED: _ClassVar[WorkflowState]
    WORKFLOW_STATE_CANCELLED: _ClassVar[WorkflowState]

class CachePolicy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CACHE_POLICY_UNSPECIFIED: _ClassVar[CachePolicy]
    CACHE_POLICY_USE: _ClassVar[CachePolicy]
    CACHE_POLICY_BYPASS: _ClassVar[CachePolicy]
    CACHE_POLICY_REFRESH: _ClassVar[CachePolicy]

class StepState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STEP_STATE_UNSPECIFIED: _ClassVar[StepState]
    STEP_STATE_PENDING: _ClassVar[StepState]
    STEP_STATE_RUNNING: _ClassVar[StepState]
    STEP_STATE_SUCCEEDED: _ClassVar[StepState]
    STEP_STATE_FAILED: _ClassVar[StepState]
    STEP_STATE_SKIPPED: _ClassVar[StepState]

class WorkflowEventType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    WORKFLOW_EVENT_TYPE_UNSPECIFIED: _ClassVar[WorkflowEventType]
    WORKFLOW_EVENT_TYPE_SNAPSHOT: _ClassVar[WorkflowEventType]
    WORKFLOW_EVENT_TYPE_STATE_CHANGED: _ClassVar[WorkflowEventType]
    WORKFLOW_EVENT_TYPE_STEP_UPDATED: _ClassVar[WorkflowEventType]
    WORKFLOW_EVENT_TYPE_FINISHED: _ClassVar[WorkflowEventType]

class NotificationDeliveryState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    NOTIFICATION_DELIVERY_STATE_UNSPECIFIED: _ClassVar[NotificationDeliveryState]
    NOTIFICATION_DELIVERY_STATE_PENDING: _ClassVar[NotificationDeliveryState]
    NOTIFICATION_DELIVERY_STATE_DELIVERING: _ClassVar[NotificationDeliveryState]
    NOTIFICATION_DELIVERY_STATE_DELIVERED: _ClassVar[NotificationDeliveryState]
    NOTIFICATION_DELIVERY_STATE_FAILED: _ClassVar[NotificationDeliveryState]

class CacheVerdict(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CACHE_VERDICT_UNSPECIFIED: _ClassVar[CacheVerdict]
    CACHE_VERDICT_EXACT: _ClassVar[CacheVerdict]
    CACHE_VERDICT_ACCEPTED: _ClassVar[CacheVerdict]
    CACHE_VERDICT_REJECTED: _ClassVar[CacheVerdict]
    CACHE_VERDICT_BELOW_THRESHOLD: _ClassVar[CacheVerdict]
    CACHE_VERDICT_EMPTY: _ClassVar[CacheVerdict]
WORKFLOW_KIND_UNSPECIFIED: WorkflowKind
WORKFLOW_KIND_REFLECTION: WorkflowKind
WORKFLOW_KIND_RESEARCH: WorkflowKind
WORKFLOW_KIND_RESEARCH_REFLECTION: WorkflowKind
WORKFLOW_STATE_UNSPECIFIED: WorkflowState
WORKFLOW_STATE_PENDING: WorkflowState
WORKFLOW_STATE_RUNNING: WorkflowState
WORKFLOW_STATE_SUCCEEDED: WorkflowState
WORKFLOW_STATE_FAILED: WorkflowState
WORKFLOW_STATE_CANCELLED: WorkflowState
CACHE_POLICY_UNSPECIFIED: CachePolicy
CACHE_POLICY_USE: CachePolicy
CACHE_POLICY_BYPASS: CachePolicy
CACHE_POLICY_REFRESH: CachePolicy
STEP_STATE_UNSPECIFIED: StepState
STEP_STATE_PENDING: StepState
STEP_STATE_RUNNING: StepState
STEP_STATE_SUCCEEDED: StepState
STEP_STATE_FAILED: StepState
STEP_STATE_SKIPPED: StepState
WORKFLOW_EVENT_TYPE_UNSPECIFIED: WorkflowEventType
WORKFLOW_EVENT_TYPE_SNAPSHOT: WorkflowEventType
WORKFLOW_EVENT_TYPE_STATE_CHANGED: WorkflowEventType
WORKFLOW_EVENT_TYPE_STEP_UPDATED: WorkflowEventType
WORKFLOW_EVENT_TYPE_FINISHED: WorkflowEventType
NOTIFICATION_DELIVERY_STATE_UNSPECIFIED: NotificationDeliveryState
NOTIFICATION_DELIVERY_STATE_PENDING: NotificationDeliveryState
NOTIFICATION_DELIVERY_STATE_DELIVERING: NotificationDeliveryState
NOTIFICATION_DELIVERY_STATE_DELIVERED: NotificationDeliveryState
NOTIFICATION_DELIVERY_STATE_FAILED: NotificationDeliveryState
CACHE_VERDICT_UNSPECIFIED: CacheVerdict
CACHE_VERDICT_EXACT: CacheVerdict
CACHE_VERDICT_ACCEPTED: CacheVerdict
CACHE_VERDICT_REJECTED: CacheVerdict
CACHE_VERDICT_BELOW_THRESHOLD: CacheVerdict
CACHE_VERDICT_EMPTY: CacheVerdict

class Workflow(_message.Message):
    __slots__ = ("name", "id", "kind", "topic", "parameters", "state", "result", "error", "steps", "cache", "create_time", "update_time", "end_time", "execution_time", "trace_id", "warnings", "tenant", "notification", "notification_delivery")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    CACHE_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    EXECUTION_TIME_FIELD_NUMBER: _ClassVar[int]
    TRACE_ID_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    NOTIFICATION_FIELD_NUMBER: _ClassVar[int]
    NOTIFICATION_DELIVERY_FIELD_NUMBER: _ClassVar[int]
    name: str
    id: str
    kind: WorkflowKind
    topic: str
    parameters: WorkflowParameters
    state: WorkflowState
    result: WorkflowResult
    error: _status_pb2.Status
    steps: _containers.RepeatedCompositeFieldContainer[WorkflowStep]
    cache: CacheInfo
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    execution_time: _duration_pb2.Duration
    trace_id: str
    warnings: _containers.RepeatedScalarFieldContainer[str]
    tenant: str
    notification: NotificationTarget
    notification_delivery: NotificationDelivery
    def __init__(self, name: _Optional[str] = ..., id: _Optional[str] = ..., kind: _Optional[_Union[WorkflowKind, str]] = ..., topic: _Optional[str] = ..., parameters: _Optional[_Union[WorkflowParameters, _Mapping]] = ..., state: _Optional[_Union[WorkflowState, str]] = ..., result: _Optional[_Union[WorkflowResult, _Mapping]] = ..., error: _Optional[_Union[_status_pb2.Status, _Mapping]] = ..., steps: _Optional[_Iterable[_Union[WorkflowStep, _Mapping]]] = ..., cache: _Optional[_Union[CacheInfo, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., execution_time: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., trace_id: _Optional[str] = ..., warnings: _Optional[_Iterable[str]] = ..., tenant: _Optional[str] = ..., notification: _Optional[_Union[NotificationTarget, _Mapping]] = ..., notification_delivery: _Optional[_Union[NotificationDelivery, _Mapping]] = ...) -> None: ...

class NotificationTarget(_message.Message):
    __slots__ = ("url", "secret_name")
    URL_FIELD_NUMBER: _ClassVar[int]
    SECRET_NAME_FIELD_NUMBER: _ClassVar[int]
    url: str
    secret_name: str
    def __init__(self, url: _Optional[str] = ..., secret_name: _Optional[str] = ...) -> None: ...

class NotificationDelivery(_message.Message):
    __slots__ = ("state", "attempts", "last_status_code", "last_error", "event_id", "last_attempt_time", "next_attempt_time", "deliver_time")
    STATE_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    LAST_STATUS_CODE_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    LAST_ATTEMPT_TIME_FIELD_NUMBER: _ClassVar[int]
    NEXT_ATTEMPT_TIME_FIELD_NUMBER: _ClassVar[int]
    DELIVER_TIME_FIELD_NUMBER: _ClassVar[int]
    state: NotificationDeliveryState
    attempts: int
    last_status_code: int
    last_error: str
    event_id: str
    last_attempt_time: _timestamp_pb2.Timestamp
    next_attempt_time: _timestamp_pb2.Timestamp
    deliver_time: _timestamp_pb2.Timestamp
    def __init__(self, state: _Optional[_Union[NotificationDeliveryState, str]] = ..., attempts: _Optional[int] = ..., last_status_code: _Optional[int] = ..., last_error: _Optional[str] = ..., event_id: _Optional[str] = ..., last_attempt_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., next_attempt_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., deliver_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class WorkflowParameters(_message.Message):
    __slots__ = ("sources", "max_sources", "max_iterations", "score_threshold", "cache_policy")
    SOURCES_FIELD_NUMBER: _ClassVar[int]
    MAX_SOURCES_FIELD_NUMBER: _ClassVar[int]
    MAX_ITERATIONS_FIELD_NUMBER: _ClassVar[int]
    SCORE_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    CACHE_POLICY_FIELD_NUMBER: _ClassVar[int]
    sources: _containers.RepeatedScalarFieldContainer[_document_pb2.SourceKind]
    max_sources: int
    max_iterations: int
    score_threshold: float
    cache_policy: CachePolicy
    def __init__(self, sources: _Optional[_Iterable[_Union[_document_pb2.SourceKind, str]]] = ..., max_sources: _Optional[int] = ..., max_iterations: _Optional[int] = ..., score_threshold: _Optional[float] = ..., cache_policy: _Optional[_Union[CachePolicy, str]] = ...) -> None: ...

class WorkflowResult(_message.Message):
    __slots__ = ("text", "citations", "sources", "source_statuses", "iterations", "score", "usage", "provider", "model", "offline")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    CITATIONS_FIELD_NUMBER: _ClassVar[int]
    SOURCES_FIELD_NUMBER: _ClassVar[int]
    SOURCE_STATUSES_FIELD_NUMBER: _ClassVar[int]
    ITERATIONS_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    OFFLINE_FIELD_NUMBER: _ClassVar[int]
    text: str
    citations: _containers.RepeatedCompositeFieldContainer[_document_pb2.Citation]
    sources: _containers.RepeatedCompositeFieldContainer[_document_pb2.Document]
    source_statuses: _containers.RepeatedCompositeFieldContainer[_research_service_pb2.SourceStatus]
    iterations: _containers.RepeatedCompositeFieldContainer[_reflection_service_pb2.ReflectionIteration]
    score: float
    usage: _document_pb2.TokenUsage
    provider: str
    model: str
    offline: bool
    def __init__(self, text: _Optional[str] = ..., citations: _Optional[_Iterable[_Union[_document_pb2.Citation, _Mapping]]] = ..., sources: _Optional[_Iterable[_Union[_document_pb2.Document, _Mapping]]] = ..., source_statuses: _Optional[_Iterable[_Union[_research_service_pb2.SourceStatus, _Mapping]]] = ..., iterations: _Optional[_Iterable[_Union[_reflection_service_pb2.ReflectionIteration, _Mapping]]] = ..., score: _Optional[float] = ..., usage: _Optional[_Union[_document_pb2.TokenUsage, _Mapping]] = ..., provider: _Optional[str] = ..., model: _Optional[str] = ..., offline: _Optional[bool] = ...) -> None: ...

class WorkflowStep(_message.Message):
    __slots__ = ("name", "state", "start_time", "end_time", "message", "document_count", "iteration", "iteration_scores")
    NAME_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_COUNT_FIELD_NUMBER: _ClassVar[int]
    ITERATION_FIELD_NUMBER: _ClassVar[int]
    ITERATION_SCORES_FIELD_NUMBER: _ClassVar[int]
    name: str
    state: StepState
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    message: str
    document_count: int
    iteration: int
    iteration_scores: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, name: _Optional[str] = ..., state: _Optional[_Union[StepState, str]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., message: _Optional[str] = ..., document_count: _Optional[int] = ..., iteration: _Optional[int] = ..., iteration_scores: _Optional[_Iterable[float]] = ...) -> None: ...

class CacheInfo(_message.Message):
    __slots__ = ("hit", "similarity", "source_workflow", "namespace", "candidate_topic", "verdict", "reason", "reason_category")
    HIT_FIELD_NUMBER: _ClassVar[int]
    SIMILARITY_FIELD_NUMBER: _ClassVar[int]
    SOURCE_WORKFLOW_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    CANDIDATE_TOPIC_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    REASON_CATEGORY_FIELD_NUMBER: _ClassVar[int]
    hit: bool
    similarity: float
    source_workflow: str
    namespace: str
    candidate_topic: str
    verdict: CacheVerdict
    reason: str
    reason_category: str
    def __init__(self, hit: _Optional[bool] = ..., similarity: _Optional[float] = ..., source_workflow: _Optional[str] = ..., namespace: _Optional[str] = ..., candidate_topic: _Optional[str] = ..., verdict: _Optional[_Union[CacheVerdict, str]] = ..., reason: _Optional[str] = ..., reason_category: _Optional[str] = ...) -> None: ...

class RunReflectionWorkflowRequest(_message.Message):
    __slots__ = ("topic", "parameters", "notification")
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    NOTIFICATION_FIELD_NUMBER: _ClassVar[int]
    topic: str
    parameters: WorkflowParameters
    notification: NotificationTarget
    def __init__(self, topic: _Optional[str] = ..., parameters: _Optional[_Union[WorkflowParameters, _Mapping]] = ..., notification: _Optional[_Union[NotificationTarget, _Mapping]] = ...) -> None: ...

class RunReflectionWorkflowResponse(_message.Message):
    __slots__ = ("workflow",)
    WORKFLOW_FIELD_NUMBER: _ClassVar[int]
    workflow: Workflow
    def __init__(self, workflow: _Optional[_Union[Workflow, _Mapping]] = ...) -> None: ...

class RunResearchWorkflowRequest(_message.Message):
    __slots__ = ("topic", "parameters", "notification")
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    NOTIFICATION_FIELD_NUMBER: _ClassVar[int]
    topic: str
    parameters: WorkflowParameters
    notification: NotificationTarget
    def __init__(self, topic: _Optional[str] = ..., parameters: _Optional[_Union[WorkflowParameters, _Mapping]] = ..., notification: _Optional[_Union[NotificationTarget, _Mapping]] = ...) -> None: ...

class RunResearchWorkflowResponse(_message.Message):
    __slots__ = ("workflow",)
    WORKFLOW_FIELD_NUMBER: _ClassVar[int]
    workflow: Workflow
    def __init__(self, workflow: _Optional[_Union[Workflow, _Mapping]] = ...) -> None: ...

class RunWorkflowRequest(_message.Message):
    __slots__ = ("workflow",)
    WORKFLOW_FIELD_NUMBER: _ClassVar[int]
    workflow: Workflow
    def __init__(self, workflow: _Optional[_Union[Workflow, _Mapping]] = ...) -> None: ...

class RunWorkflowResponse(_message.Message):
    __slots__ = ("workflow",)
    WORKFLOW_FIELD_NUMBER: _ClassVar[int]
    workflow: Workflow
    def __init__(self, workflow: _Optional[_Union[Workflow, _Mapping]] = ...) -> None: ...

class CreateWorkflowRequest(_message.Message):
    __slots__ = ("workflow", "workflow_id", "request_id")
    WORKFLOW_FIELD_NUMBER: _ClassVar[int]
    WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    workflow: Workflow
    workflow_id: str
    request_id: str
    def __init__(self, workflow: _Optional[_Union[Workflow, _Mapping]] = ..., workflow_id: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class CreateWorkflowResponse(_message.Message):
    __slots__ = ("workflow",)
    WORKFLOW_FIELD_NUMBER: _ClassVar[int]
    workflow: Workflow
    def __init__(self, workflow: _Optional[_Union[Workflow, _Mapping]] = ...) -> None: ...

class GetWorkflowRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class GetWorkflowResponse(_message.Message):
    __slots__ = ("workflow",)
    WORKFLOW_FIELD_NUMBER: _ClassVar[int]
    workflow: Workflow
    def __init__(self, workflow: _Optional[_Union[Workflow, _Mapping]] = ...) -> None: ...

class ListWorkflowsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "filter")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    filter: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., filter: _Optional[str] = ...) -> None: ...

class ListWorkflowsResponse(_message.Message):
    __slots__ = ("workflows", "next_page_token")
    WORKFLOWS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    workflows: _containers.RepeatedCompositeFieldContainer[Workflow]
    next_page_token: str
    def __init__(self, workflows: _Optional[_Iterable[_Union[Workflow, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class CancelWorkflowRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class CancelWorkflowResponse(_message.Message):
    __slots__ = ("workflow",)
    WORKFLOW_FIELD_NUMBER: _ClassVar[int]
    workflow: Workflow
    def __init__(self, workflow: _Optional[_Union[Workflow, _Mapping]] = ...) -> None: ...

class WatchWorkflowRequest(_message.Message):
    __slots__ = ("name", "after_sequence")
    NAME_FIELD_NUMBER: _ClassVar[int]
    AFTER_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    name: str
    after_sequence: int
    def __init__(self, name: _Optional[str] = ..., after_sequence: _Optional[int] = ...) -> None: ...

class WatchWorkflowResponse(_message.Message):
    __slots__ = ("event_type", "workflow", "step", "event_time", "sequence")
    EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    WORKFLOW_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    EVENT_TIME_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    event_type: WorkflowEventType
    workflow: Workflow
    step: WorkflowStep
    event_time: _timestamp_pb2.Timestamp
    sequence: int
    def __init__(self, event_type: _Optional[_Union[WorkflowEventType, str]] = ..., workflow: _Optional[_Union[Workflow, _Mapping]] = ..., step: _Optional[_Union[WorkflowStep, _Mapping]] = ..., event_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., sequence: _Optional[int] = ...) -> None: ...
