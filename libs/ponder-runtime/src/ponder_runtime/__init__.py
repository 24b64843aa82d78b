"""Shared runtime of Ponder's services: the boring parts, written once."""

from ponder_runtime.channels import ChannelFactory, call_timeout
from ponder_runtime.errors import (
    AlreadyExistsError,
    DeadlineExceededError,
    FailedPreconditionError,
    FieldViolation,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    PonderError,
    QuotaExceededError,
    ResourceExhaustedError,
    UnauthenticatedError,
    UnavailableError,
)
from ponder_runtime.health import wait_until_serving
from ponder_runtime.server import ServiceModule, ServiceServer, run_service, serve
from ponder_runtime.settings import ServiceSettings, SettingsError, load_settings
from ponder_runtime.telemetry import Telemetry, configure_telemetry
from ponder_runtime.validation import RequestValidator


__all__ = [
    "AlreadyExistsError",
    "ChannelFactory",
    "DeadlineExceededError",
    "FailedPreconditionError",
    "FieldViolation",
    "InvalidArgumentError",
    "NotFoundError",
    "PermissionDeniedError",
    "PonderError",
    "QuotaExceededError",
    "RequestValidator",
    "ResourceExhaustedError",
    "ServiceModule",
    "ServiceServer",
    "ServiceSettings",
    "SettingsError",
    "Telemetry",
    "UnauthenticatedError",
    "UnavailableError",
    "call_timeout",
    "configure_telemetry",
    "load_settings",
    "run_service",
    "serve",
    "wait_until_serving",
]
