"""Runs the whole Ponder stack as local processes: `make run`, and the integration tests."""

from ponder_devstack.stack import ServiceProcess, Stack, StackPorts, files_in, temporary_stack


__all__ = ["ServiceProcess", "Stack", "StackPorts", "files_in", "temporary_stack"]
