"""The plugin's entry point (``zoo.plugins``): zoo imports this module, which registers

- the task ``sentence_language`` (``zoo_langid.task``),
- its model class, for zoo's safe loading of ``model.keras`` files (``zoo_langid.model``;
  zoo imports its own layers, and with them Keras, before any plugin),
- the recipe ``langid-bigru`` (``zoo run recipe langid-bigru``),
- the catalog of its pretrained model (``zoo models list``, ``zoo evaluate NAME``).
"""

from pathlib import Path

from zoo import registry
from zoo.pretrained.catalog import register_catalog
from zoo_langid import model, task  # noqa: F401  (register the model class and the task)

PACKAGE = Path(__file__).resolve().parent
RECIPES = {"langid-bigru": PACKAGE / "recipes" / "langid-bigru.yaml"}
CATALOG = PACKAGE / "models.yaml"
SAVED_MODELS = PACKAGE / "saved_models"

for recipe_name, recipe_path in RECIPES.items():
    registry.recipes.add(recipe_name, recipe_path)
register_catalog(CATALOG, SAVED_MODELS)
