"""``python -m stem.cli`` is the ``stem`` command."""

from stem.cli import main

main()
