"""Every place where zoo reaches into Keras' or TensorFlow's private code, in one module.

Each touch is a small function, context manager or mixin here, with the reason it is
needed and the upstream issue; the rest of zoo calls these and names no ``keras.src``,
no ``tensorflow.python`` and no private Keras attribute (``tests/test_keras_internals.py``
greps for them). ``PRIVATE_ATTRIBUTES`` lists every private attribute used here, and the
same test checks that each still exists in the installed Keras and TensorFlow, so an
upgrade that renames one fails a test rather than a training. ``setup.cfg`` pins the
Keras and TensorFlow ranges these touches were tested with.

- Keras' TensorFlow trainer under ``tf.distribute`` (``distributed_fit_fixes``): its
  symbolic build replaced for the duration of a ``fit`` under a strategy, and two
  reductions of its logs under ``multi_worker``; the originals are restored after it.
- Keras' optimizer hooks (``OptimizerHooks``): the replicas' gradients summed once,
  before clipping; a weight average that warms up.
- The optimizer's weight averages (``weight_average_pairs``), which validation and the
  best checkpoint swap in.
- TensorFlow's coordination service (``configure_coordination_service``), for bounded
  joining and heartbeats of ``MultiWorkerMirroredStrategy``.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass


@dataclass(frozen=True)
class PrivateAttribute:
    """A private attribute zoo uses. ``owner``: the dotted path of a module or class;
    ``name``: the attribute; ``on_instance``: set by the class on its instances (in
    ``__init__`` or ``build``) rather than defined on the class; ``replaced``: zoo puts a
    function of its own in its place, with the same parameters."""

    owner: str
    name: str
    on_instance: bool = False
    replaced: bool = False


_TF_TRAINER = "keras.src.backend.tensorflow.trainer"
_TRAINER_CLASS = f"{_TF_TRAINER}.TensorFlowTrainer"
_OPTIMIZER = "keras.optimizers.Optimizer"
_CONTEXT = "tensorflow.python.eager.context"

PRIVATE_ATTRIBUTES = [
    PrivateAttribute(_TF_TRAINER, "reduce_per_replica", replaced=True),
    PrivateAttribute(_TF_TRAINER, "_collective_all_reduce_multi_worker"),
    PrivateAttribute(_TRAINER_CLASS, "_maybe_symbolic_build", replaced=True),
    PrivateAttribute(_TRAINER_CLASS, "_get_metrics_result_or_logs", replaced=True),
    PrivateAttribute(_TRAINER_CLASS, "_symbolic_build"),
    PrivateAttribute(_TRAINER_CLASS, "_distribute_strategy", on_instance=True),
    PrivateAttribute(f"{_TF_TRAINER}.TFEpochIterator", "data_adapter", on_instance=True),
    PrivateAttribute(_OPTIMIZER, "_all_reduce_sum_gradients", replaced=True),
    PrivateAttribute(_OPTIMIZER, "_update_model_variables_moving_average", replaced=True),
    PrivateAttribute(_OPTIMIZER, "_model_variables_moving_average", on_instance=True),
    PrivateAttribute(_OPTIMIZER, "_trainable_variables", on_instance=True),
    PrivateAttribute(_CONTEXT, "context"),
    PrivateAttribute(f"{_CONTEXT}.Context", "coordination_service"),
    PrivateAttribute(f"{_CONTEXT}.Context", "configure_coordination_service"),
    PrivateAttribute(
        "tensorflow.compiler.xla.tsl.protobuf.coordination_config_pb2", "CoordinatedJob"
    ),
    PrivateAttribute(f"{_CONTEXT}.Context", "_context_handle", on_instance=True),
    PrivateAttribute("keras.src.saving.object_registration", "GLOBAL_CUSTOM_NAMES"),
]


# ---------------------------------------------------------------- Keras' TF trainer


def _multi_worker(strategy) -> bool:
    """Whether ``strategy`` is a ``MultiWorkerMirroredStrategy`` across processes."""
    from keras.src.backend.tensorflow import trainer as tf_trainer

    return tf_trainer._collective_all_reduce_multi_worker(strategy)


def _trainer_replacements(kind: str) -> dict:
    """``{(owner, name): replacement}`` for Keras' TensorFlow trainer under
    ``train.distribute`` ``kind``, each built on the original it replaces."""
    import tensorflow as tf
    from keras.src.backend.tensorflow import trainer as tf_trainer

    trainer = tf_trainer.TensorFlowTrainer
    original_reduce = tf_trainer.reduce_per_replica
    original_results = trainer._get_metrics_result_or_logs

    def maybe_symbolic_build(self, iterator=None, data_batch=None):
        if self._distribute_strategy is None:
            return
        if iterator is not None:
            # zeros of the batch's shapes: building needs no more
            spec = iterator.data_adapter.get_tf_dataset().element_spec
            data_batch = tf.nest.map_structure(
                lambda item: tf.zeros([size or 1 for size in item.shape], item.dtype), spec
            )
        with self.distribute_strategy.scope():
            self._symbolic_build(data_batch=data_batch)

    def reduce_per_replica(values, strategy, reduction):
        if reduction in ("auto", "mean") and _multi_worker(strategy):

            def mean(value):  # a worker's one local replica gives plain tensors
                return strategy.reduce("MEAN", value, axis=None)

            return tf.nest.map_structure(mean, values)
        return original_reduce(values, strategy, reduction)

    def metrics_result_or_logs(self, logs):
        # across workers, the metrics' variables hold this worker's share only; the last
        # step's logs are averaged over every worker
        if _multi_worker(self.distribute_strategy) and logs:
            return logs
        return original_results(self, logs)

    replacements = {(trainer, "_maybe_symbolic_build"): maybe_symbolic_build}
    if kind == "multi_worker":
        replacements[tf_trainer, "reduce_per_replica"] = reduce_per_replica
        replacements[trainer, "_get_metrics_result_or_logs"] = metrics_result_or_logs
    return replacements


@contextlib.contextmanager
def _replaced(replacements: dict):
    """Within the block each ``(owner, name)`` holds its replacement; after it, even on
    an exception, what it held before (an inherited method is inherited again)."""
    absent = object()
    saved = {key: vars(key[0]).get(key[1], absent) for key in replacements}
    try:
        for (owner, name), replacement in replacements.items():
            setattr(owner, name, replacement)
        yield
    finally:
        for (owner, name), before in saved.items():
            if before is absent:
                delattr(owner, name)
            else:
                setattr(owner, name, before)


def distributed_fit_fixes(kind: str):
    """A context manager around a ``fit`` under ``train.distribute`` ``kind``: fixes to
    Keras 3's TensorFlow trainer under ``tf.distribute``, installed on entry and removed
    on exit (also on an exception). Without a strategy (``none``) nothing is changed.

    Under ``mirrored`` and ``multi_worker``, the model is built from zeros of the
    batch's shapes (building needs no more): Keras builds it from a first batch, read
    from an iteration of the dataset of its own (measured: two iterations for a
    one-epoch ``fit`` under ``MirroredStrategy``, one without a strategy), which moves
    the samplers' epoch keys (``rerandomize_each_iteration``) one epoch ahead of a run
    without a strategy (keras#20394, closed, reports the batch that building consumes);
    and across workers it averages that batch, which the collective ops cannot
    do eagerly ("convert a value (PerReplica ...)", keras#20585, open: Keras 3 has no
    working multi-worker ``fit``).

    Under ``multi_worker`` also: scalar logs are averaged whole, not along an axis they
    do not have ("Invalid reduction dimension 0 for input with 0 dimensions",
    tensorflow#72388); and an epoch's logs are the last step's, averaged over the
    workers, not one worker's own metrics (no upstream issue of its own found: it
    shows once keras#20585's are fixed)."""
    if kind == "none":
        return contextlib.nullcontext()
    return _replaced(_trainer_replacements(kind))


# ---------------------------------------------------------------- Keras' optimizers


def weight_average_pairs(optimizer, weights=None) -> list:
    """``(weight, average)`` for each weight that ``optimizer`` (built with
    ``use_ema``) averages: ``weights`` (default: the trainable variables it was built
    on) with Keras' moving averages, which Keras 3 keeps private (keras#18949 asks for
    a way to evaluate with them; ``keras.callbacks.SwapEMAWeights`` swaps by adding and
    subtracting, which is not exact in float32)."""
    weights = optimizer._trainable_variables if weights is None else weights
    return [
        (weight, average)
        for weight, average in zip(weights, optimizer._model_variables_moving_average, strict=True)
        if average is not None
    ]


class OptimizerHooks:
    """A mixin for a ``keras.optimizers.Optimizer`` subclass that routes two private
    hooks of Keras 3's optimizer to zoo:

    - ``_all_reduce_sum_gradients``: under ``tf.distribute`` Keras clips each
      replica's share of the gradient and then sums the shares, so the sum is not the
      whole batch's clipped gradient (tensorflow#33929; keras#19308 on the summing,
      which Keras 3 offers no way to skip). A subclass that has summed the gradients
      itself before clipping applies them within ``replicas_already_summed()``, and
      Keras does not sum them again.
    - ``_update_model_variables_moving_average``: Keras' ``use_ema`` averages with a
      fixed momentum from the first step, with no warm-up (no upstream issue found);
      the subclass's ``update_weight_averages(pairs)`` updates each
      ``(weight, average)`` pair instead.
    """

    _replicas_summed = False

    @contextlib.contextmanager
    def replicas_already_summed(self):
        """Within the block, the gradients given to Keras are already summed over the
        replicas."""
        self._replicas_summed = True
        try:
            yield
        finally:
            self._replicas_summed = False

    def _all_reduce_sum_gradients(self, grads_and_vars):
        if self._replicas_summed:
            return list(grads_and_vars)
        return super()._all_reduce_sum_gradients(grads_and_vars)

    def _update_model_variables_moving_average(self, trainable_variables):
        self.update_weight_averages(weight_average_pairs(self, trainable_variables))

    def update_weight_averages(self, pairs):
        """Moves each ``(weight, average)`` pair's average towards its weight."""
        raise NotImplementedError


# ---------------------------------------------------------------- TensorFlow's runtime


def configure_coordination_service(
    leader: str, jobs: dict, register_timeout_ms: int, heartbeat_timeout_ms: int
) -> None:
    """TensorFlow's coordination service as ``MultiWorkerMirroredStrategy`` would set it
    up, with the two deadlines it does not let a user set: how long a worker waits for
    the others to register (TensorFlow's default: an hour) and how long without a
    heartbeat a peer is taken for dead. ``jobs``: ``{job name: number of tasks}``;
    ``leader``: the task that runs the service, ``/job:NAME/replica:0/task:0``. A
    service already configured in this process is left as it is. TensorFlow's public
    API sets neither deadline (no upstream issue found)."""
    from tensorflow.compiler.xla.tsl.protobuf import coordination_config_pb2
    from tensorflow.python.eager import context

    runtime = context.context()
    if runtime.coordination_service is not None:
        return
    runtime.configure_coordination_service(
        service_type="standalone",
        service_leader=leader,
        coordinated_jobs=[
            coordination_config_pb2.CoordinatedJob(name=name, num_tasks=count)
            for name, count in jobs.items()
        ],
        cluster_register_timeout_in_ms=register_timeout_ms,
        heartbeat_timeout_in_ms=heartbeat_timeout_ms,
    )


def tensorflow_runtime_started() -> bool:
    """Whether TensorFlow's eager runtime has started in this process (a multi-worker run
    must configure its collectives before it does; tests check that checking a recipe
    does not start it). TensorFlow has no public way to ask (no upstream issue found)."""
    from tensorflow.python.eager import context

    return context.context()._context_handle is not None


def forget_serializable(obj) -> None:
    """Undoes ``keras.saving.register_keras_serializable`` for ``obj`` in both of Keras'
    tables, so that a test's scratch layers leave no trace: the public
    ``get_custom_objects()`` is one, the reverse table (class → name) is private and has
    no public remover (no upstream issue found)."""
    import keras
    from keras.src.saving import object_registration

    for key, value in list(keras.saving.get_custom_objects().items()):
        if value is obj:
            keras.saving.get_custom_objects().pop(key)
    object_registration.GLOBAL_CUSTOM_NAMES.pop(obj, None)
