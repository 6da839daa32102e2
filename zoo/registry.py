"""Name → object registries for layers, recipes, datasets, tasks and export formats,
extended by plugins.

A plugin is any installed distribution that declares an entry point in the group
``zoo.plugins``; the entry point names a module (or a callable) whose import registers
things with the decorators below. Plugins are loaded lazily, the first time any
registry is consulted, so ``zoo --help`` never pays for them. A plugin that fails to
load produces one warning and is skipped.

This module imports neither TensorFlow nor Keras at import time.
"""

from __future__ import annotations

import difflib
import importlib
import warnings
from dataclasses import dataclass
from importlib import metadata
from typing import Any

PLUGIN_GROUP = "zoo.plugins"
BUILTIN_PROVIDER = "zoo"


class RegistryError(LookupError):
    """A name that is unknown or registered twice. Its message is one line."""


@dataclass(frozen=True)
class Entry:
    name: str
    obj: Any
    provider: str


class Registry:
    """A table of named objects of one kind, with the distribution that provided each."""

    def __init__(self, kind: str, needs_layers: bool = True, builtins: str | None = None):
        self.kind = kind
        self.needs_layers = needs_layers  # False: consulted without importing TensorFlow
        # the module whose import registers zoo's own entries (imported on first use)
        self.builtins = builtins
        self._entries: dict[str, Entry] = {}

    def _load(self) -> None:
        if self.builtins:
            importlib.import_module(self.builtins)
        if self.needs_layers or plugins_installed():
            load_plugins()

    def add(self, name: str, obj: Any, provider: str | None = None) -> Any:
        provider = provider or _provider_of(obj)
        if name in self._entries:
            owner = self._entries[name]
            raise RegistryError(
                f"{self.kind} name '{name}' is already registered by {owner.provider} "
                f"({_qualname(owner.obj)}); {provider} ({_qualname(obj)}) cannot register it again"
            )
        self._entries[name] = Entry(name, obj, provider)
        return obj

    def get(self, name: str) -> Any:
        return self.entry(name).obj

    def entry(self, name: str) -> Entry:
        self._load()
        if name not in self._entries:
            close = difflib.get_close_matches(str(name), list(self._entries), n=3, cutoff=0.5)
            hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            known = ", ".join(sorted(self._entries)) or "none"
            raise RegistryError(f"unknown {self.kind} '{name}'{hint} (known: {known})")
        return self._entries[name]

    def entries(self) -> list[Entry]:
        self._load()
        return [self._entries[name] for name in sorted(self._entries)]

    def names(self) -> list[str]:
        return [entry.name for entry in self.entries()]

    def __contains__(self, name: str) -> bool:
        self._load()
        return name in self._entries


def _provider_of(obj: Any) -> str:
    """zoo for what zoo's own modules define, whenever they are first imported (a plugin
    importing ``zoo.recipe`` may be the first to import ``zoo.export.formats``), else the
    distribution whose plugin is being imported."""
    module = getattr(obj, "__module__", None) or type(obj).__module__
    if module == BUILTIN_PROVIDER or module.startswith(f"{BUILTIN_PROVIDER}."):
        return BUILTIN_PROVIDER
    return _current_provider


def _qualname(obj: Any) -> str:
    module = getattr(obj, "__module__", None)
    name = getattr(obj, "__qualname__", None)
    return f"{module}.{name}" if module and name else repr(obj)


layers = Registry("layer")
recipes = Registry("recipe", needs_layers=False)
datasets = Registry("dataset")
# tasks and export formats are read without TensorFlow (zoo models list, zoo export --help)
tasks = Registry("task", needs_layers=False, builtins="zoo.tasks")
exporters = Registry("exporter", needs_layers=False, builtins="zoo.export.formats")

_current_provider = BUILTIN_PROVIDER
_plugins_loaded = False
plugin_failures: list[str] = []


def register_layer(name: str):
    """Class decorator: registers a Keras layer under ``name`` for recipes, and with
    ``keras.saving.register_keras_serializable(package="zoo")`` for ``.keras`` files."""
    import keras

    def decorator(cls):
        if not (isinstance(cls, type) and issubclass(cls, keras.layers.Layer)):
            raise TypeError(f"register_layer('{name}'): {cls!r} is not a keras.layers.Layer")
        layers.add(name, cls)
        cls.registered_name = name
        return keras.saving.register_keras_serializable(package="zoo", name=cls.__name__)(cls)

    return decorator


def register_task(cls):
    """Class decorator: registers a ``zoo.tasks.Task`` subclass (one instance of it)
    under its ``name``, the value of a recipe's ``task``."""
    from zoo.tasks.base import Task

    if not (isinstance(cls, type) and issubclass(cls, Task)):
        raise TypeError(f"register_task: {cls!r} is not a zoo.tasks.Task")
    tasks.add(cls.name, cls())
    return cls


def register_exporter(cls):
    """Class decorator: registers an export format (``zoo.export.formats.ExportFormat``
    subclass, one instance) under its ``name``, a value of ``export.formats`` and of
    ``zoo export --format``."""
    from zoo.export.formats import ExportFormat

    if not (isinstance(cls, type) and issubclass(cls, ExportFormat)):
        raise TypeError(f"register_exporter: {cls!r} is not a zoo.export.formats.ExportFormat")
    exporters.add(cls.name, cls())
    return cls


def current_provider() -> str:
    """The distribution whose plugin is being imported (``zoo`` outside plugins)."""
    return _current_provider


def plugins_installed() -> bool:
    """Whether any distribution declares a ``zoo.plugins`` entry point."""
    return any(True for _ in metadata.entry_points(group=PLUGIN_GROUP))


def load_plugins() -> None:
    """Imports the built-in layers, then every ``zoo.plugins`` entry point, once."""
    global _plugins_loaded, _current_provider
    if _plugins_loaded:
        return
    _plugins_loaded = True
    import zoo.layers  # noqa: F401  (registers the built-in layers)

    for entry_point in metadata.entry_points(group=PLUGIN_GROUP):
        distribution = entry_point.dist.name if entry_point.dist else entry_point.value
        _current_provider = distribution
        try:
            loaded = entry_point.load()
            if callable(loaded):
                loaded()
        except Exception as error:  # a broken plugin must never break the CLI
            message = f"zoo plugin '{entry_point.name}' from {distribution} failed to load: {error}"
            plugin_failures.append(message)
            warnings.warn(message, RuntimeWarning, stacklevel=2)
        finally:
            _current_provider = BUILTIN_PROVIDER


# The datasets that importing zoo.data registers, named here so that listing them needs
# no TensorFlow (tests/test_pretrained_cli.py checks that the two agree).
BUILTIN_DATASETS = ("fra_eng", "fra_eng_words", "sine", "time_machine")


def dataset_names() -> list[str]:
    """``zoo data list``: the built-in datasets, and the plugins' when there are plugins."""
    if not plugins_installed():
        return sorted(BUILTIN_DATASETS)
    import zoo.data  # noqa: F401  (registers the built-in datasets)

    return datasets.names()


def layer_table() -> list[dict[str, str]]:
    """Rows of ``zoo list layers``: name, class (module.qualname) and provider."""
    return [
        {"name": entry.name, "class": _qualname(entry.obj), "provider": entry.provider}
        for entry in layers.entries()
    ]


def build_layer(spec: dict, **overrides):
    """Instantiates a registered layer from a recipe entry ``{"name": ..., **kwargs}``."""
    arguments = {key: value for key, value in spec.items() if key != "name"}
    return layers.get(spec["name"])(**{**arguments, **overrides})
