"""Developer tooling behind ``dev.py``: the changelog gate and the release command.

Not shipped in the wheel; run with the repository checkout (``dev.py`` puts its folder on
``sys.path``). Standard library only, so ``dev.py`` can import it before the venv exists.
"""
