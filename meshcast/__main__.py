"""``python -m meshcast``: the same as the ``meshcast`` command."""

from meshcast.cli import main

main()
