"""Ponder's command-line client (`ponder`)."""
