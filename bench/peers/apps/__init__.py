"""One module per system: its task (the shared job of ``bench.peers.job``) and its producer.

Each module is imported inside that system's own environment (``.venv-peers/<peer>/``,
or the repository's ``.venv`` for stem and the Redis Streams ceiling), by the system's
worker command and by ``bench.peers.driver``. See ``bench/peers/driver.py`` for the
``producer()`` contract.
"""
