"""Ponder's embedding service: sentence embeddings, ranking and (soon) a semantic cache."""
