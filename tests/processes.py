"""Shared by tests that stop a zoo process with Ctrl-C (it holds no tests)."""

from __future__ import annotations

import signal


def ctrl_c_as_from_a_terminal() -> None:
    """A ``preexec_fn``: the child takes SIGINT as a terminal's Ctrl-C. A shell starts a
    background job (a test run started with ``&``) with SIGINT ignored; its children
    inherit that, and Python then never raises KeyboardInterrupt, so a Ctrl-C test
    would wait out its timeout (seen in a CI check run in the background)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
