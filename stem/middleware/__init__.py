"""Middleware: hooks around enqueue, process, retry and dead-letter."""

from stem.middleware.base import Middleware, OutgoingJob
from stem.outcome import Outcome, Verdict

__all__ = ["Middleware", "Outcome", "OutgoingJob", "Verdict"]
