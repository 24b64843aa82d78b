"""Ponder's research service: finds source documents for a query."""
