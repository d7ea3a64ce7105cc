"""Thin entry points, one per process kind: `python -m workers.<kind>`."""
