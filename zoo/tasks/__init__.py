"""Tasks: what a recipe's ``task`` means — its data, model, loss, evaluation and export."""

from zoo.tasks.autoregression import Autoregression
from zoo.tasks.language_modeling import LanguageModeling

TASKS = {task.name: task for task in (LanguageModeling(), Autoregression())}


def get_task(name: str):
    return TASKS[name]
