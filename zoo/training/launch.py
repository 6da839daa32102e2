"""``zoo run recipe NAME --workers N``: N worker processes on this machine, each a
``zoo run recipe`` with its ``TF_CONFIG`` (127.0.0.1 ports), for trying multi-worker
training without a cluster. The real use is one ``zoo run recipe`` per host with
``TF_CONFIG`` set (README).

The chief's (worker 0's) output is this command's; the other workers' lines go to
stderr prefixed with ``[worker i]``; TensorFlow's C++ log is dropped. When a worker
fails or is killed, the others are stopped and one line says which worker and why (the
first one's own error, or the signal that killed it): what the others print once their
peer is gone ("lost contact", "interrupted") follows from it and is dropped too.
``ZOO_DEBUG=1`` shows everything. ``--resume`` starts them all again from
the last checkpointed epoch. A worker killed before it could remove its scratch folder
leaves it to ``FollowerRun.remove_stale_scratch``, run here once all have exited.
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

from zoo.errors import Interrupted, UsageError, ZooError

# Seconds the other workers get to stop after one has failed, before they are killed.
STOP_GRACE = 10

# What a worker says when it fails: the line the launcher keeps for its own message.
FAILURE_PREFIXES = ("zoo: error: ", "zoo: interrupted")

# A worker: the ``zoo`` command with Python's stderr (zoo's lines, warnings, tracebacks)
# on the descriptor that ZOO_WORKER_STDERR names, so that TensorFlow's C++ log, on
# descriptor 2, stays apart. TensorFlow 2.21 logs through absl, which TF_CPP_MIN_LOG_LEVEL
# no longer silences: an aborted collective wrote seven ERROR lines beside the one line
# of the worker's own error.
WORKER_MAIN = (
    "import os, sys\n"
    "sys.stderr = open(int(os.environ.pop('ZOO_WORKER_STDERR')), 'w', buffering=1,"
    " errors='backslashreplace')\n"
    "sys.argv[0] = 'zoo'\n"
    "from zoo.cli.main import main\n"
    "main()\n"
)


class WorkerFailed(ZooError):
    """A worker of a local multi-worker job exited with an error or was killed; the exit
    code is the worker's own for its error (2 for a bad input), 1 for a signal."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code


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


class _Relay(threading.Thread):
    """Copies a worker's stderr to ours, line by line (``prefix`` first), keeping its
    first failure line (``failure``) instead of printing it (unless ``debug``), and
    dropping everything once ``silenced`` is set."""

    def __init__(self, stream, prefix: str, silenced: threading.Event, debug: bool):
        super().__init__(daemon=True)
        self.stream, self.prefix, self.silenced, self.debug = stream, prefix, silenced, debug
        self.failure: str | None = None

    def run(self) -> None:
        for line in iter(self.stream.readline, ""):
            failure = line.startswith(FAILURE_PREFIXES)
            if failure and self.failure is None:
                self.failure = line.rstrip("\n").removeprefix("zoo: error: ").removeprefix("zoo: ")
            if (self.debug or not failure) and not self.silenced.is_set():
                sys.stderr.write(f"{self.prefix}{line}")
                sys.stderr.flush()
        self.stream.close()


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
    argv = [sys.executable, "-c", WORKER_MAIN, *command, "--out", out]
    argv += ["--set", "train.distribute=multi_worker"]
    debug = os.environ.get("ZOO_DEBUG") == "1"
    silenced = threading.Event()
    processes, relays = [], []
    for index in range(workers):
        said, says = os.pipe()
        environment = {
            **os.environ,
            "TF_CONFIG": tf_config(addresses, index),
            "ZOO_WORKER_STDERR": str(says),
        }
        try:
            process = subprocess.Popen(
                argv,
                env=environment,
                stdout=None if index == 0 else subprocess.DEVNULL,
                stderr=None if debug else subprocess.DEVNULL,  # TensorFlow's C++ log
                pass_fds=(says,),
                start_new_session=True,  # a Ctrl-C here stops them through _stop(), in order
            )
        finally:
            os.close(says)
        processes.append(process)
        stream = open(said, encoding="utf-8", errors="replace")  # noqa: SIM115 (the relay's)
        relays.append(_Relay(stream, f"[worker {index}] " if index else "", silenced, debug))
        relays[-1].start()
    failed = None
    try:
        failed = _wait(processes)
    except KeyboardInterrupt:
        if not debug:
            silenced.set()
        _stop_all(processes, relays)
        # what the chief said it left ("finished epochs are checkpointed: rerun with
        # --resume", or "no epoch had finished; DIR is as it was")
        left = (relays[0].failure or "").partition("; ")[2]
        if left:
            raise Interrupted(left) from None
        raise
    if failed is not None:
        if not debug:
            silenced.set()
        _stop_all(processes, relays)
        raise _failure(failed, relays[failed[0]].failure, workers)
    _stop_all(processes, relays)  # all have exited: the relays pass on their last lines


def _stop_all(processes, relays) -> None:
    """Stops the workers still running, waits for the relays to pass on what the workers
    said, and removes the scratch of any worker killed before it could."""
    from zoo.training.run_directory import FollowerRun

    _stop(processes)
    for relay in relays:
        relay.join(timeout=5)
    FollowerRun.remove_stale_scratch()


def _failure(failed: tuple[int, int], said: str | None, workers: int) -> WorkerFailed:
    """The one line for a job whose worker ``failed`` (its index and status), with what
    it ``said`` when it failed."""
    index, status = failed
    stopped = "the other workers were stopped"
    if status < 0:
        try:
            name = f" ({signal.Signals(-status).name})"
        except ValueError:  # a real-time signal has no name
            name = ""
        return WorkerFailed(
            f"worker {index} of {workers} was killed by signal {-status}{name}; {stopped}; "
            "rerun the same command with --resume to continue from the last finished epoch"
        )
    if said is None:
        said = f"exited with status {status}"
    said = said.removeprefix(f"worker {index}: ")
    return WorkerFailed(
        f"worker {index} of {workers}: {said}; {stopped}", status if status == 2 else 1
    )


def _wait(processes) -> tuple[int, int] | None:
    """Waits until all exit (None) or one fails: (its index, its status); when several
    have failed by then, one killed by a signal first (the others' failures follow from
    losing it), then the lowest index."""
    while True:
        statuses = [process.poll() for process in processes]
        failed = [(index, status) for index, status in enumerate(statuses) if status]
        if failed:
            return min(failed, key=lambda item: (item[1] > 0, item[0]))
        if all(status == 0 for status in statuses):
            return None
        time.sleep(0.2)


def _stop(processes) -> None:
    """SIGTERM to each worker still running, waiting for each to exit (it cleans up as
    after Ctrl-C), then SIGKILL to any still there ``STOP_GRACE`` seconds after the
    start. The chief first, so that it cleans up the run directory while the others
    wait in their next collective: once it has exited, they see their connections reset
    and stop at once."""
    deadline = time.monotonic() + STOP_GRACE
    for process in processes:
        if process.poll() is None:
            _signal_group(process, signal.SIGTERM)
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
    for process in processes:
        if process.poll() is None:
            _signal_group(process, signal.SIGKILL)
            process.wait()


def _signal_group(process, number: int) -> None:
    try:
        os.killpg(process.pid, number)
    except ProcessLookupError:  # it has just exited
        pass
