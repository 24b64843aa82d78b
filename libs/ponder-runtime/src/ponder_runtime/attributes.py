"""The attribute keys Ponder puts on spans and metrics, in one place.

OpenTelemetry's semantic conventions where one exists (`rpc.*` and `http.*` come from the gRPC
instrumentation and the REST facade, `gen_ai.*` from `opentelemetry-semantic-conventions`);
Ponder's own keys are prefixed `ponder.`.
"""

from __future__ import annotations

from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as gen_ai


# --- workflows (gateway) -------------------------------------------------------------------
WORKFLOW_ID = "ponder.workflow.id"
WORKFLOW_KIND = "ponder.workflow.kind"  # RESEARCH, REFLECTION, RESEARCH_REFLECTION
WORKFLOW_OUTCOME = "ponder.workflow.outcome"  # SUCCEEDED, FAILED, CANCELLED, ERROR
# The workflow's own language-model usage (0 on a cache hit) and its cost in USD.
WORKFLOW_INPUT_TOKENS = "ponder.workflow.usage.input_tokens"
WORKFLOW_OUTPUT_TOKENS = "ponder.workflow.usage.output_tokens"
WORKFLOW_COST_USD = "ponder.workflow.cost_usd"
TOKEN_TYPE = gen_ai.GEN_AI_TOKEN_TYPE  # "input" or "output"
WORKFLOW_STEP = "ponder.workflow.step"  # cache_lookup, research, rank, reflect, cache_store
STEP_STATE = "ponder.step.state"  # SUCCEEDED, FAILED, SKIPPED
STEP_MESSAGE = "ponder.step.message"
CACHE_RESULT = "ponder.cache.result"  # hit, miss, error, replay
CACHE_SIMILARITY = "ponder.cache.similarity"  # cosine of the best entry (1.0: exact text)
CACHE_VERDICT = "ponder.cache.verdict"  # exact, accepted, rejected, below_threshold, empty
CACHE_REASON = "ponder.cache.reason"  # e.g. 'polarity differs ("fail")'
CACHE_REASON_CATEGORY = "ponder.cache.reason_category"  # polarity, antonym, role_order, ...
CACHE_CANDIDATE = "ponder.cache.candidate"  # text of the best candidate considered

# --- research -------------------------------------------------------------------------------
SOURCE = "ponder.source"  # arxiv, web, library
SOURCE_STATE = "ponder.source.state"  # ok, timeout, error, disabled
SOURCE_RESULTS = "ponder.source.results"  # documents the source returned
SOURCE_CACHED = "ponder.source.cached"  # answered by the research service's source cache

# --- upstream calls (ResilientCaller) and embedding batches --------------------------------
UPSTREAM = "ponder.upstream"  # e.g. "model endpoint http://127.0.0.1:8000/v1"
UPSTREAM_OUTCOME = "ponder.upstream.outcome"  # ok, rate_limited, unavailable, rejected,
# breaker_open, deadline_exceeded, error
FAILURE_KIND = "ponder.failure.kind"  # rate_limited, unavailable, rejected
BREAKER_STATE = "ponder.breaker.state"  # closed, half_open, open
BATCH_CALLERS = "ponder.embedding.batch.callers"  # requests a model batch served
BATCH_SIZE = "ponder.embedding.batch.size"  # texts in a model batch

# --- reflection: LLM calls ------------------------------------------------------------------
LLM_ATTEMPTS = "ponder.llm.attempts"  # 1 + retries
GEN_AI_OPERATION_NAME = gen_ai.GEN_AI_OPERATION_NAME
GEN_AI_PROVIDER_NAME = gen_ai.GEN_AI_PROVIDER_NAME
GEN_AI_REQUEST_MODEL = gen_ai.GEN_AI_REQUEST_MODEL
GEN_AI_REQUEST_TEMPERATURE = gen_ai.GEN_AI_REQUEST_TEMPERATURE
GEN_AI_REQUEST_MAX_TOKENS = gen_ai.GEN_AI_REQUEST_MAX_TOKENS
GEN_AI_RESPONSE_MODEL = gen_ai.GEN_AI_RESPONSE_MODEL
GEN_AI_USAGE_INPUT_TOKENS = gen_ai.GEN_AI_USAGE_INPUT_TOKENS
GEN_AI_USAGE_OUTPUT_TOKENS = gen_ai.GEN_AI_USAGE_OUTPUT_TOKENS
ERROR_TYPE = "error.type"  # semantic conventions: the class of error, on failed operations
