"""``python -m stem`` is the ``stem`` command."""

from stem.cli import main

main()
