"""Sub-commands of the ``meshcast`` command line, one module each."""
