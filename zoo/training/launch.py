"""``zoo run recipe NAME --workers N``: N worker processes on this machine, each a
``zoo run recipe`` with its ``TF_CONFIG`` (127.0.0.1 ports), for trying multi-worker
training without a cluster. The real use is one ``zoo run recipe`` per host with
``TF_CONFIG`` set (README).

The chief's (worker 0's) output is this command's; the other workers' lines go to
stderr prefixed with ``[worker i]``. When a worker fails or is killed, the others are
stopped and one line says so; ``--resume`` starts them all again from the last
checkpointed epoch.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

from zoo.errors import UsageError, ZooError

# Seconds the other workers get to stop after one has failed, before they are killed.
STOP_GRACE = 10


class WorkerFailed(ZooError):
    """A worker of a local multi-worker job exited with an error or was killed."""


def free_ports(count: int) -> list[int]:
    """``count`` TCP ports free on 127.0.0.1 now (held open together so they differ)."""
    sockets = []
    try:
        for _ in range(count):
            handle = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            handle.bind(("127.0.0.1", 0))
            sockets.append(handle)
        return [handle.getsockname()[1] for handle in sockets]
    finally:
        for handle in sockets:
            handle.close()


def tf_config(addresses: list[str], index: int) -> str:
    return json.dumps(
        {"cluster": {"worker": addresses}, "task": {"type": "worker", "index": index}}
    )


def _relay(stream, prefix: str, target) -> None:
    for line in iter(stream.readline, ""):
        target.write(f"{prefix}{line}" if prefix else line)
        target.flush()
    stream.close()


def launch(command: list[str], workers: int, out: str) -> None:
    """Runs ``zoo <command> --out out --set train.distribute=multi_worker`` as
    ``workers`` local processes and waits for all of them.

    Raises:
        WorkerFailed: a worker exited with a non-zero status or a signal; the others
            were stopped.
    """
    if workers < 2:
        raise UsageError(f"--workers {workers}: a multi-worker job needs at least 2 workers")
    addresses = [f"127.0.0.1:{port}" for port in free_ports(workers)]
    argv = [
        sys.executable,
        "-m",
        "zoo.cli.main",
        *command,
        "--out",
        out,
        "--set",
        "train.distribute=multi_worker",
    ]
    processes, relays = [], []
    for index in range(workers):
        environment = {**os.environ, "TF_CONFIG": tf_config(addresses, index)}
        chief = index == 0
        process = subprocess.Popen(
            argv,
            env=environment,
            stdout=None if chief else subprocess.DEVNULL,
            stderr=None if chief else subprocess.PIPE,
            text=True,
            start_new_session=True,  # a Ctrl-C here stops them through stop(), in order
        )
        processes.append(process)
        if not chief:
            relay = threading.Thread(
                target=_relay, args=(process.stderr, f"[worker {index}] ", sys.stderr)
            )
            relay.daemon = True
            relay.start()
            relays.append(relay)
    try:
        failed = _wait(processes)
    except KeyboardInterrupt:
        _stop(processes)
        raise
    if failed is not None:
        _stop(processes)
    for relay in relays:
        relay.join(timeout=5)
    if failed is not None:
        index, status = failed
        how = f"was killed by signal {-status}" if status < 0 else f"exited with status {status}"
        raise WorkerFailed(
            f"worker {index} of {workers} {how}; the other workers were stopped; "
            f"rerun the same command with --resume to continue from the last finished epoch"
        )


def _wait(processes) -> tuple[int, int] | None:
    """Waits until all exit (None) or one fails: (its index, its status)."""
    while True:
        statuses = [process.poll() for process in processes]
        for index, status in enumerate(statuses):
            if status not in (None, 0):
                return index, status
        if all(status == 0 for status in statuses):
            return None
        time.sleep(0.2)


def _stop(processes) -> None:
    for process in processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
