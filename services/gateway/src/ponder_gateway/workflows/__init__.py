"""Workflows: one pipeline (pipeline.py), the engines that execute it, one recorder of steps."""
