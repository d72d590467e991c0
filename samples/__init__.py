"""Runnable samples; the tests smoke-run each of them."""
