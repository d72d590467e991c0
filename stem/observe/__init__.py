"""Observability: logging setup, heartbeats towards the supervisor, metrics and traces."""
