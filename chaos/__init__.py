"""Fault injection for stem's chaos suite.

``chaos.proxy`` is a Toxiproxy-compatible TCP proxy written on trio: the same HTTP API
(v2) and the same toxics, so a suite written against ``toxiproxy-python`` runs unchanged
against it or against Shopify's Go ``toxiproxy-server``.
"""
