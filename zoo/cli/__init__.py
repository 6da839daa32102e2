"""The ``zoo`` command line: parses, then calls one importable function per command."""
