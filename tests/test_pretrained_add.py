"""`zoo models add` run twice at once: both models land in the registry and their
folders, nothing is lost or orphaned. The model and its card are copied (the card's
samples would load TensorFlow's model), so the test reaches the registry in seconds."""

from __future__ import annotations

import shutil
import threading
import time

import pytest

from zoo.pretrained import publish
from zoo.pretrained.catalog import CatalogError, read_catalog_file


@pytest.fixture
def quick_add(monkeypatch):
    """add_model whose cards wait for each other, so that two adds reach the registry
    together, and which dwells a moment after reading the registry, so that without a
    lock each would read it before the other writes it."""
    both_prepared = threading.Barrier(2, timeout=60)
    read_registry = publish._registry_models

    def card(folder, name, *args):
        both_prepared.wait()
        (folder / "card.md").write_text(f"# {name}\n", encoding="utf-8")

    def slow_read(registry_file):
        models = read_registry(registry_file)
        time.sleep(0.2)
        return models

    monkeypatch.setattr(publish, "save_for_inference", shutil.copyfile)
    monkeypatch.setattr(publish, "write_model_card", card)
    monkeypatch.setattr(publish, "_registry_models", slow_read)


def add_at_once(run, names, registry_file, root):
    errors = {}

    def add(name):
        try:
            publish.add_model(run, name, registry_file=registry_file, root=root)
        except CatalogError as error:
            errors[name] = str(error)

    threads = [threading.Thread(target=add, args=(name,)) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return errors


def test_two_adds_at_once_both_land(trained_run, tmp_path, quick_add):
    registry_file, root = tmp_path / "registry.yaml", tmp_path / "saved_models"
    assert add_at_once(trained_run[1], ["first", "second"], registry_file, root) == {}
    entries = read_catalog_file(registry_file, root)
    assert sorted(entry.name for entry in entries) == ["first", "second"]
    assert sorted(path.name for path in root.iterdir()) == ["first", "second"]  # no staging
    assert not list(tmp_path.glob("*.tmp"))


def test_two_adds_of_one_name_at_once_keep_one_and_refuse_the_other(
    trained_run, tmp_path, quick_add
):
    registry_file, root = tmp_path / "registry.yaml", tmp_path / "saved_models"
    errors = add_at_once(trained_run[1], ["same", "same"], registry_file, root)
    assert list(errors.values()) == [
        f"pretrained model 'same' exists ({root / 'same'}); --replace replaces it"
    ]
    assert [entry.name for entry in read_catalog_file(registry_file, root)] == ["same"]
    assert [path.name for path in root.iterdir()] == ["same"]
