"""Ponder's reflection service: bounded draft -> critique -> refine loops over sources."""
