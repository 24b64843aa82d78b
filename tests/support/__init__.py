"""Helpers shared by the tests (test files import these, never each other)."""
