"""Tasks: what a recipe's ``task`` means — its data, model, loss, evaluation and export."""

from zoo.tasks.autoregression import Autoregression
from zoo.tasks.language_modeling import LanguageModeling
from zoo.tasks.translation import Translation

TASKS = {task.name: task for task in (LanguageModeling(), Autoregression(), Translation())}


def get_task(name: str):
    return TASKS[name]
