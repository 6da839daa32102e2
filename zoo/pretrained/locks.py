"""The lock that serializes zoo processes over one thing they both change: a pretrained
model's cache folder (``zoo models pull``, or a load that pulls) or a registry file
(``zoo models add``).

An ``flock``: the kernel releases it when its holder exits or is killed, so a lock is
never stale and nothing has to be cleaned after a crash. Locks belong to an open file
description, so two threads of one process exclude each other as two processes do.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from zoo.pretrained.catalog import CatalogError, CatalogFailure

POLL_SECONDS = 0.05


@contextmanager
def exclusive(path: Path, wait_seconds: float, busy: str) -> Iterator[None]:
    """Holds an exclusive lock on ``path`` (a folder, or a lock file created if missing)
    for the ``with`` block, waiting at most ``wait_seconds`` for another holder; past
    that, ``CatalogFailure(busy)``."""
    path = Path(path)
    try:
        if path.is_dir():
            descriptor = os.open(path, os.O_RDONLY)
        else:
            descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as error:
        raise CatalogError(f"{path}: cannot lock it ({error.strerror})") from None
    try:
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise CatalogFailure(busy) from None
                time.sleep(POLL_SECONDS)
        yield
    finally:
        os.close(descriptor)  # closing releases the lock


def is_held(path: Path) -> bool:
    """Whether another process holds the lock on ``path`` now (False when it does not exist)."""
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(descriptor, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(descriptor)
