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
host). A worker that cannot reach the others within ``train.connect_timeout`` seconds,
or whose peer stops answering for that long, exits with one line.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from zoo.errors import UsageError

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


def cluster_from_env(environ=os.environ) -> dict:
    """The cluster TF_CONFIG describes: ``{"workers": [...], "type": ..., "index": i,
    "chief": bool, "has_chief": bool}`` (``workers`` lists a chief first, and ``index``
    counts it); a missing or malformed TF_CONFIG is one line."""
    text = environ.get("TF_CONFIG")
    if not text:
        raise DistributeError(
            "train.distribute multi_worker needs TF_CONFIG (cluster and task), or "
            "`zoo run recipe NAME --workers N` to start N local workers"
        )
    try:
        config = json.loads(text)
        cluster, task = config["cluster"], config["task"]
        workers = list(cluster.get("chief", [])) + list(cluster["worker"])
        kind, index = task["type"], int(task["index"])
    except (ValueError, KeyError, TypeError) as error:
        raise DistributeError(
            f"TF_CONFIG: expected {{'cluster': {{'worker': [...]}}, 'task': {{'type': "
            f"'worker', 'index': i}}}} ({type(error).__name__}: {error})"
        ) from None
    if kind not in ("worker", "chief") or not workers:
        raise DistributeError(
            f"TF_CONFIG: task type {kind!r}; zoo trains with workers (and a chief)"
        )
    has_chief = bool(cluster.get("chief"))
    chief = kind == "chief" or (not has_chief and index == 0)
    position = index if kind == "chief" else index + (1 if has_chief else 0)
    if position >= len(workers):
        raise DistributeError(f"TF_CONFIG: task index {index} but {len(workers)} addresses")
    return {
        "workers": workers,
        "type": kind,
        "index": position,
        "chief": chief,
        "has_chief": has_chief,
    }


def distribution(train: dict) -> Distribution:
    """The recipe's ``train.distribute`` set up: call it before TensorFlow runs any op
    (``mirrored`` cuts the CPU into logical devices, which must happen first)."""
    kind = train.get("distribute", "none")
    if kind == "none":
        return Distribution()
    import tensorflow as tf

    patch_keras()
    if kind == "mirrored":
        devices = _local_devices(train.get("replicas", 2))
        return Distribution(kind, tf.distribute.MirroredStrategy(devices))
    cluster = cluster_from_env()
    seconds = float(train.get("connect_timeout", 300))
    _configure_coordination(cluster, seconds)
    options = tf.distribute.experimental.CommunicationOptions(timeout_seconds=seconds)
    try:
        strategy = tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
    except tf.errors.OpError as error:
        raise DistributeError(
            f"worker {cluster['index']} could not reach the other workers "
            f"({', '.join(cluster['workers'])}) within train.connect_timeout ({seconds:g} s; "
            f"{type(error).__name__})"
        ) from None
    return Distribution(kind, strategy, cluster["chief"], cluster["index"])


def _configure_coordination(cluster: dict, seconds: float) -> None:
    """TensorFlow's coordination service as MultiWorkerMirroredStrategy would set it up,
    with a bound on how long a worker waits for the others to register (TensorFlow's
    default waits for an hour): a worker alone then fails in ``seconds``."""
    from tensorflow.compiler.xla.tsl.protobuf import coordination_config_pb2
    from tensorflow.python.eager import context

    jobs = [
        coordination_config_pb2.CoordinatedJob(name="worker", num_tasks=len(cluster["workers"]))
    ]
    if context.context().coordination_service is None:
        context.context().configure_coordination_service(
            service_type="standalone",
            service_leader="/job:worker/replica:0/task:0",
            coordinated_jobs=jobs,
            cluster_register_timeout_in_ms=int(seconds * 1000),
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


_PATCHED = False


def patch_keras() -> None:
    """Two fixes to Keras 3's TensorFlow trainer under ``MultiWorkerMirroredStrategy``
    (keras#20585): it averages the first batch across workers to build the model, which
    the collective ops cannot do eagerly ("convert a value (PerReplica ...)"), and it
    averages scalar logs along an axis they do not have ("Invalid reduction dimension 0
    for input with 0 dimensions", tensorflow#72388). The model is built from zeros of
    the batch's shapes (building needs no more); scalars are averaged whole; and an
    epoch's logs are the last step's, averaged over the workers, not one worker's own
    metrics."""
    global _PATCHED
    if _PATCHED:
        return
    import tensorflow as tf
    from keras.src.backend.tensorflow import trainer as tf_trainer

    original_reduce = tf_trainer.reduce_per_replica

    def reduce_per_replica(values, strategy, reduction):
        if reduction in ("auto", "mean") and tf_trainer._collective_all_reduce_multi_worker(
            strategy
        ):

            def mean(value):  # a worker's one local replica gives plain tensors
                return strategy.reduce("MEAN", value, axis=None)

            return tf.nest.map_structure(mean, values)
        return original_reduce(values, strategy, reduction)

    def maybe_symbolic_build(self, iterator=None, data_batch=None):
        if self._distribute_strategy is None:
            return
        if iterator is not None:
            # zeros of the batch's shapes: building needs no more, and reading a batch
            # would start an iteration of the dataset, which moves the samplers' epoch
            # keys one epoch ahead of a run without a strategy
            spec = iterator.data_adapter.get_tf_dataset().element_spec
            data_batch = tf.nest.map_structure(
                lambda item: tf.zeros([size or 1 for size in item.shape], item.dtype), spec
            )
        with self.distribute_strategy.scope():
            self._symbolic_build(data_batch=data_batch)

    original_results = tf_trainer.TensorFlowTrainer._get_metrics_result_or_logs

    def metrics_result_or_logs(self, logs):
        # across workers, the metrics' variables hold this worker's share only; the last
        # step's logs are averaged over every worker
        if tf_trainer._collective_all_reduce_multi_worker(self.distribute_strategy) and logs:
            return logs
        return original_results(self, logs)

    tf_trainer.TensorFlowTrainer._get_metrics_result_or_logs = metrics_result_or_logs
    tf_trainer.reduce_per_replica = reduce_per_replica
    tf_trainer.TensorFlowTrainer._maybe_symbolic_build = maybe_symbolic_build
    _PATCHED = True


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
