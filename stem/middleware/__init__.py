"""Middleware: hooks around enqueue, process, retry and dead-letter."""

from stem.middleware.base import Middleware, Outcome, OutgoingJob

__all__ = ["Middleware", "Outcome", "OutgoingJob"]
