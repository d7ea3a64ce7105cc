"""Tracing, metrics and history of the pipeline: set up per process, kept in Redis for pages."""
