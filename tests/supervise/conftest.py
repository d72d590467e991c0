"""The supervise tests reuse the worker tests' app fixture."""

from tests.worker.conftest import japp

__all__ = ["japp"]
