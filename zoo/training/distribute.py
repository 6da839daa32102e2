"""Data-parallel training on ``tf.distribute``: ``train.distribute`` in a recipe.

- ``none``: one process, TensorFlow's default strategy (the default).
- ``mirrored``: ``MirroredStrategy`` over the devices of this machine: its GPUs, or
  without one, its CPU cut into ``train.replicas`` logical devices.
- ``multi_worker``: ``MultiWorkerMirroredStrategy`` across processes and hosts, each
  started with the ``TF_CONFIG`` that TensorFlow documents:
  ``{"cluster": {"worker": ["host0:port", "host1:port"]}, "task": {"type": "worker",
  "index": 0}}``. ``zoo run recipe NAME --workers N`` starts N such processes on
  127.0.0.1 (``zoo.training.launch``).

The recipe's ``data.batch_size`` is the global batch: each step reads one batch of that
size, split across the replicas, so a recipe means the same optimisation whatever the
number of workers. ``tf.distribute`` shards the data by batch pieces: replica r of R
always gets the r-th part of each batch, so no two workers read the same examples, and a
sequential sampler's rows stay contiguous per replica.

The chief (worker 0, or the task of type ``chief``) writes the run directory:
checkpoints, logs, the model, metrics and exports; the other workers only train, reading
the chief's checkpoints to ``--resume`` (the run directory is shared storage, or one
host).

Two deadlines, neither of which costs a thread per step:

- joining: a worker that cannot reach the others within ``train.connect_timeout``
  seconds exits with one line (the coordination service's register timeout);
- a dead or hung peer: the coordination service's heartbeats find it within
  ``PEER_TIMEOUT_SECONDS``; it aborts every collective in flight, and each worker
  exits with one line. A killed peer on the same host is seen at once (its
  connections are reset); a stopped one (``SIGSTOP``), either the leader or not, was
  found after 9-11 s with TensorFlow's default heartbeat timeout (10 s), after 26-32 s
  with 30 s.

Collectives themselves carry no timeout. ``CommunicationOptions(timeout_seconds=T)``
arms a watchdog per collective through ``Env::SchedClosureAfter``, which starts a
thread that sleeps T seconds ("TODO(xldrx): Share the timeout watchdog thread among
collectives", ``base_collective_executor.cc``). Measured with two workers on two
cores (a GRU of 16 units, 67 steps an epoch, /proc/<pid>/task sampled every 0.25 s):
with T = 300 each worker gained about 15 threads a step, most of them named
``collective_ops`` (1,127 threads after one epoch, 3,100 after three; with lm-gru the
issue saw a worker reach ~15,700 and abort on ``std::system_error``); without it, 125-142
threads whatever the epochs, 40 of them included
(``test_thread_count_stays_bounded_over_forty_epochs``); a one-process run holds ~10.
"""

from __future__ import annotations

import os
import signal
import threading
from dataclasses import dataclass

from zoo.documents import parse_json
from zoo.errors import UsageError
from zoo.training import keras_internals

DISTRIBUTE = ("none", "mirrored", "multi_worker")


class DistributeError(UsageError):
    """A distributed setting that cannot work: a missing or malformed TF_CONFIG."""


@dataclass(frozen=True)
class Distribution:
    """The strategy a run trains under, and this process's part in it.

    Attributes:
        kind: ``none``, ``mirrored`` or ``multi_worker``.
        strategy: the ``tf.distribute.Strategy`` (``None`` for ``none``).
        chief: whether this process writes the run directory.
        worker: this process's index among the workers (0 without multi_worker).
    """

    kind: str = "none"
    strategy: object = None
    chief: bool = True
    worker: int = 0

    def scope(self):
        import contextlib

        return self.strategy.scope() if self.strategy is not None else contextlib.nullcontext()

    def fitting(self):
        """A context manager around ``fit``: the fixes Keras' trainer needs under this
        strategy, installed for the block only (``keras_internals.distributed_fit_fixes``;
        none without a strategy)."""
        return keras_internals.distributed_fit_fixes(self.kind)


def cluster_from_env(environ=os.environ) -> dict:
    """The cluster TF_CONFIG describes: ``{"workers": [...], "type": ..., "index": i,
    "chief": bool, "has_chief": bool}`` (``workers`` lists a chief first, and ``index``
    counts it). Everything is checked before TensorFlow starts: a missing or malformed
    TF_CONFIG is one line (``DistributeError``), never TensorFlow's own message."""
    text = environ.get("TF_CONFIG")
    if not text:
        raise DistributeError(
            "train.distribute multi_worker needs TF_CONFIG (cluster and task), or "
            "`zoo run recipe NAME --workers N` to start N local workers"
        )
    config = parse_json(text, "TF_CONFIG", DistributeError)
    if not isinstance(config, dict):
        raise DistributeError(f"TF_CONFIG: expected {TF_CONFIG_SHAPE}, got {_json_type(config)}")
    cluster, task = config.get("cluster"), config.get("task")
    for key, value in (("cluster", cluster), ("task", task)):
        if not isinstance(value, dict):
            got = "it is missing" if key not in config else f"got {_json_type(value)}"
            raise DistributeError(
                f"TF_CONFIG: {key}: expected an object, {got}; expected {TF_CONFIG_SHAPE}"
            )
    other_jobs = sorted(set(cluster) - {"chief", "worker"})
    if other_jobs:
        raise DistributeError(
            f"TF_CONFIG: cluster.{other_jobs[0]}: zoo trains with workers and at most one "
            "chief, not other jobs"
        )
    chiefs, workers = _addresses(cluster, "chief"), _addresses(cluster, "worker")
    if len(chiefs) > 1:
        raise DistributeError(f"TF_CONFIG: cluster.chief: at most one chief, got {len(chiefs)}")
    addresses = chiefs + workers
    if not addresses:
        raise DistributeError("TF_CONFIG: cluster.worker: no worker addresses (host:port each)")
    repeated = next((item for item in addresses if addresses.count(item) > 1), None)
    if repeated is not None:
        raise DistributeError(f"TF_CONFIG: cluster: {repeated!r} is listed twice")
    kind, index = task.get("type"), task.get("index")
    if kind not in ("worker", "chief"):
        raise DistributeError(
            f"TF_CONFIG: task.type: {kind!r}; zoo trains with 'worker' tasks (and a 'chief')"
        )
    if isinstance(index, str) and index.isascii() and index.isdigit():
        index = int(index)  # TensorFlow's own resolver takes "1" for 1
    if type(index) is not int:  # bool is an int to Python, not to TF_CONFIG
        raise DistributeError(f"TF_CONFIG: task.index: expected an integer, got {index!r}")
    count = len(chiefs) if kind == "chief" else len(workers)
    if not 0 <= index < count:
        raise DistributeError(
            f"TF_CONFIG: task.index: {index} is not a {kind} of the cluster "
            f"({count} {kind} address{'es' if count != 1 else ''}, counted from 0)"
        )
    has_chief = bool(chiefs)
    return {
        "workers": addresses,
        "type": kind,
        "index": index + (len(chiefs) if kind == "worker" else 0),
        "chief": kind == "chief" or (not has_chief and index == 0),
        "has_chief": has_chief,
    }


# What TF_CONFIG holds, as TensorFlow documents it, for the error messages.
TF_CONFIG_SHAPE = (
    "{'cluster': {'worker': ['host:port', ...]}, 'task': {'type': 'worker', 'index': i}}"
)


def _json_type(value) -> str:
    """What a JSON value is, for a message: ``a list``, ``null``..."""
    names = {list: "a list", str: "a string", bool: "a boolean", int: "a number", float: "a number"}
    return names.get(type(value), "null" if value is None else "an object")


def _addresses(cluster: dict, job: str) -> list[str]:
    """The ``host:port`` addresses of ``job`` in the cluster, each checked."""
    addresses = cluster.get(job, [])
    if not isinstance(addresses, list):
        raise DistributeError(
            f"TF_CONFIG: cluster.{job}: expected a list of 'host:port', got {_json_type(addresses)}"
        )
    for position, address in enumerate(addresses):
        where = f"TF_CONFIG: cluster.{job}[{position}]"
        if not isinstance(address, str):
            raise DistributeError(f"{where}: expected 'host:port', got {address!r}")
        host, _, port = address.rpartition(":")
        if not host or not (port.isascii() and port.isdigit() and 0 < int(port) < 65536):
            raise DistributeError(
                f"{where}: {address!r} is not 'host:port' (a port from 1 to 65535)"
            )
    return addresses


def distribution(train: dict) -> Distribution:
    """The recipe's ``train.distribute`` set up: call it before TensorFlow runs any op
    (``mirrored`` cuts the CPU into logical devices, which must happen first)."""
    kind = train.get("distribute", "none")
    if kind == "none":
        return Distribution()
    cluster = cluster_from_env() if kind == "multi_worker" else None
    import tensorflow as tf

    if kind == "mirrored":
        devices = _local_devices(train.get("replicas", 2))
        return Distribution(kind, tf.distribute.MirroredStrategy(devices))
    seconds = float(train.get("connect_timeout", 300))
    _configure_coordination(cluster, seconds)
    sigterm = signal.getsignal(signal.SIGTERM)
    try:
        # no CommunicationOptions(timeout_seconds=...): a thread per collective (above)
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
    except tf.errors.OpError as error:
        raise DistributeError(
            f"worker {cluster['index']} could not reach the other workers "
            f"({', '.join(cluster['workers'])}) within train.connect_timeout ({seconds:g} s; "
            f"{type(error).__name__})"
        ) from None
    finally:
        # The coordination agent's preemption notifier (tsl's SigtermNotifier) takes
        # SIGTERM for itself and only records it: a worker told to stop went on training
        # (measured: 97 more steps in 6 s), until the launcher killed it without cleanup.
        # SIGTERM is zoo's again, so that it stops a worker as Ctrl-C does.
        if sigterm is not None and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, sigterm)
    return Distribution(kind, strategy, cluster["chief"], cluster["index"])


# How long the coordination service waits for a worker's heartbeat before it declares
# the worker dead and aborts the collectives of the others (TensorFlow's default: 10 s).
# Heartbeats come from a thread of their own, so a long step or evaluation never misses
# one; the margin is for a loaded machine.
PEER_TIMEOUT_SECONDS = 30


def _configure_coordination(cluster: dict, seconds: float) -> None:
    """TensorFlow's coordination service as MultiWorkerMirroredStrategy would set it up,
    with a bound on how long a worker waits for the others to register (TensorFlow's
    default waits for an hour): a worker alone then fails in ``seconds``; and the
    heartbeat deadline that finds a dead peer (``PEER_TIMEOUT_SECONDS``)."""
    chiefs = 1 if cluster["has_chief"] else 0
    jobs = {
        name: count
        for name, count in (("chief", chiefs), ("worker", len(cluster["workers"]) - chiefs))
        if count
    }
    keras_internals.configure_coordination_service(
        leader=f"/job:{next(iter(jobs))}/replica:0/task:0",  # the chief, else worker 0
        jobs=jobs,
        register_timeout_ms=int(seconds * 1000),
        heartbeat_timeout_ms=PEER_TIMEOUT_SECONDS * 1000,
    )


def _local_devices(replicas: int) -> list[str]:
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        return [f"/gpu:{index}" for index in range(len(gpus))]
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(replicas)]
        )
    except RuntimeError:  # TensorFlow already started: keep what it has
        pass
    logical = tf.config.list_logical_devices("CPU")
    if len(logical) < replicas:
        raise DistributeError(
            f"train.distribute mirrored: {replicas} CPU replicas asked, but TensorFlow "
            f"had already started with {len(logical)} CPU device(s); start a new process"
        )
    return [device.name for device in logical[:replicas]]


def shared_replica_context():
    """The replica context when several replicas train together, else None."""
    import tensorflow as tf

    context = tf.distribute.get_replica_context()
    return context if context is not None and context.num_replicas_in_sync > 1 else None


def global_token_count(count):
    """``count`` summed over the replicas training together (itself with one): the
    denominator that makes each replica's share of a loss sum to the global mean."""
    import tensorflow as tf

    context = shared_replica_context()
    if context is None:
        return count
    return context.all_reduce(tf.distribute.ReduceOp.SUM, count)


def replicas_in_sync() -> int:
    """How many replicas train together (1 without a strategy)."""
    context = shared_replica_context()
    return 1 if context is None else context.num_replicas_in_sync


def track_loss(model, replica_loss, batch_size) -> None:
    """Adds a custom ``train_step``'s loss to the epoch's mean loss that Keras' own
    ``train_step`` keeps: the model's metric named ``loss``, found through the public
    ``model.metrics`` as Keras' guide to customising ``fit`` does. Under
    ``tf.distribute`` a replica's loss is its 1 / replicas share of the batch's, so the
    tracker takes it times the replicas; the logs average it over them."""
    tracker = next(metric for metric in model.metrics if metric.name == "loss")
    tracker.update_state(replica_loss * replicas_in_sync(), sample_weight=batch_size)
