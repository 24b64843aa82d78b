"""Ponder's gateway: the public WorkflowService."""
