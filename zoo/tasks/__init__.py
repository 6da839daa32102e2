"""Tasks: what a recipe's ``task`` means — its recipe sections, data, model, loss,
evaluation and export (the contract: ``zoo.tasks.base.Task``).

Importing this package registers the built-in tasks with ``zoo.registry.tasks``, exactly
as a plugin registers its own; it imports no TensorFlow.
"""

from zoo.tasks import autoregression, language_modeling, translation  # noqa: F401  (register)
from zoo.tasks.base import Task, TaskActionError


def get_task(name: str) -> Task:
    """The registered task ``name`` (built-in or a plugin's)."""
    from zoo import registry

    return registry.tasks.get(name)


__all__ = ["Task", "TaskActionError", "get_task"]
