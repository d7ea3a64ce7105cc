"""Shared test machinery: a real Redis server, settings, services, processes, polling."""
