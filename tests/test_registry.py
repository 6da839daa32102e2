"""The name → object registries: look-ups, errors, duplicate refusal, register_layer.

Tests that register things use a fresh ``Registry`` (or swap one in for
``zoo.registry.layers`` with monkeypatch), never the process-wide table.
"""

from __future__ import annotations

import keras
import pytest
from chapter import CHAPTER_LAYERS

from zoo import registry
from zoo.registry import Entry, Registry, RegistryError, register_layer
from zoo.training.keras_internals import forget_serializable


class First:
    pass


class Second:
    pass


def one_line(error):
    message = str(error.value)
    assert message and "\n" not in message, f"not one line: {message!r}"
    return message


# --------------------------------------------------------------------------- look-ups


def test_unknown_layer_names_the_problem_and_the_closest_match():
    with pytest.raises(RegistryError) as error:
        registry.layers.get("lstm_cel")
    message = one_line(error)
    assert "unknown layer 'lstm_cel'" in message
    hint = message.split("did you mean", 1)[1].split("(known", 1)[0]
    assert "'lstm_cell'" in hint
    assert hint.index("'lstm_cell'") == hint.index("'")  # the closest match comes first


def test_unknown_name_error_is_a_lookup_error_from_entry_and_get():
    assert issubclass(RegistryError, LookupError)
    with pytest.raises(LookupError):
        registry.layers.entry("no_such_layer_at_all")


def test_unknown_name_without_close_matches_lists_what_is_known():
    things = Registry("thing")
    things.add("alpha", First, provider="p")
    things.add("beta", Second, provider="p")
    with pytest.raises(RegistryError) as error:
        things.get("zzzzzz")
    message = one_line(error)
    assert "unknown thing 'zzzzzz'" in message
    assert "did you mean" not in message
    assert "known: alpha, beta" in message


def test_unknown_name_in_an_empty_registry():
    with pytest.raises(RegistryError) as error:
        Registry("thing").get("anything")
    assert "known: none" in one_line(error)


def test_add_then_get_entry_and_contains():
    things = Registry("thing")
    assert things.add("first", First, provider="pkg-a") is First
    assert things.get("first") is First
    assert things.entry("first") == Entry("first", First, "pkg-a")
    assert "first" in things
    assert "second" not in things


def test_add_without_a_provider_records_the_builtin_provider():
    things = Registry("thing")
    things.add("first", First)
    assert things.entry("first").provider == registry.BUILTIN_PROVIDER == "zoo"


def test_entries_and_names_are_sorted_by_name():
    things = Registry("thing")
    things.add("zeta", First, provider="p")
    things.add("alpha", Second, provider="q")
    assert things.names() == ["alpha", "zeta"]
    assert [(e.name, e.obj, e.provider) for e in things.entries()] == [
        ("alpha", Second, "q"),
        ("zeta", First, "p"),
    ]


# --------------------------------------------------------------------------- duplicates


def test_duplicate_registration_is_refused_naming_both_owners():
    things = Registry("thing")
    things.add("shared", First, provider="pkg-a")
    with pytest.raises(RegistryError) as error:
        things.add("shared", Second, provider="pkg-b")
    message = one_line(error)
    assert "'shared'" in message
    assert "pkg-a" in message and f"{__name__}.First" in message
    assert "pkg-b" in message and f"{__name__}.Second" in message
    assert message.index("pkg-a") < message.index("pkg-b")  # the owner first, then the newcomer
    assert things.entry("shared") == Entry("shared", First, "pkg-a")  # the first registration stays


def test_register_layer_refuses_a_builtin_name_without_changing_it():
    class Imposter(keras.layers.Layer):
        pass

    before = registry.layers.entry("gru")
    with pytest.raises(RegistryError) as error:
        register_layer("gru")(Imposter)
    message = one_line(error)
    assert "zoo.layers.gru.GRU" in message and "Imposter" in message
    assert registry.layers.entry("gru") == before
    assert not hasattr(Imposter, "registered_name")


# --------------------------------------------------------------------------- register_layer


@pytest.mark.parametrize("not_a_layer", [int, First, keras.layers.Dense(2), "gru", keras.Model.fit])
def test_register_layer_refuses_what_is_not_a_keras_layer_class(not_a_layer):
    with pytest.raises(TypeError, match="is not a keras.layers.Layer"):
        register_layer("not_a_layer")(not_a_layer)
    assert "not_a_layer" not in registry.layers


@pytest.fixture
def scratch_layers(monkeypatch):
    """A fresh layer registry in place of the global one, and Keras' serializable
    registrations made meanwhile undone afterwards."""
    registry.load_plugins()  # so that the global registry's lazy loading is not what we test
    fresh = Registry("layer")
    monkeypatch.setattr(registry, "layers", fresh)
    custom_objects = keras.saving.get_custom_objects()
    before = set(custom_objects)
    yield fresh
    for key in set(custom_objects) - before:
        forget_serializable(custom_objects[key])


def test_register_layer_registers_the_class_for_recipes_and_keras_files(scratch_layers):
    @register_layer("probe_scale")
    class ProbeScale(keras.layers.Layer):
        def call(self, inputs):
            return 2.0 * inputs

    assert scratch_layers.get("probe_scale") is ProbeScale
    assert scratch_layers.entry("probe_scale").provider == "zoo"
    assert ProbeScale.registered_name == "probe_scale"
    assert keras.saving.get_registered_object("zoo>ProbeScale") is ProbeScale
    assert keras.saving.get_registered_name(ProbeScale) == "zoo>ProbeScale"


def test_register_layer_twice_under_one_name_is_refused(scratch_layers):
    @register_layer("probe")
    class ProbeOne(keras.layers.Layer):
        pass

    class ProbeTwo(keras.layers.Layer):
        pass

    with pytest.raises(RegistryError) as error:
        register_layer("probe")(ProbeTwo)
    message = one_line(error)
    assert "ProbeOne" in message and "ProbeTwo" in message
    assert scratch_layers.get("probe") is ProbeOne


# --------------------------------------------------------------------------- the built-ins


def test_builtin_layers_are_listed_with_provider_zoo():
    entries = {entry.name: entry for entry in registry.layers.entries()}
    assert CHAPTER_LAYERS <= set(entries)
    for name in CHAPTER_LAYERS:
        entry = entries[name]
        assert entry.provider == "zoo"
        assert issubclass(entry.obj, keras.layers.Layer)
        assert entry.obj.__module__.startswith("zoo.layers.")
        assert entry.obj.registered_name == name
        assert keras.saving.get_registered_object(f"zoo>{entry.obj.__name__}") is entry.obj
    assert registry.layers.names() == sorted(entries)
    assert registry.layers.names() == [entry.name for entry in registry.layers.entries()]


def test_recipes_and_datasets_are_separate_registries():
    assert {registry.layers.kind, registry.recipes.kind, registry.datasets.kind} == {
        "layer",
        "recipe",
        "dataset",
    }
    assert "gru" not in registry.recipes and "gru" not in registry.datasets
