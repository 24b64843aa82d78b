"""The semantic cache: an in-memory vector index in front of a persistent backend."""
