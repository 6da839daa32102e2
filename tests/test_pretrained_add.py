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


# ------------------------------------------------------------------ --replace and ownership


def add(run, name, registry_file, root, replace=False):
    return publish.add_model(run, name, registry_file=registry_file, root=root, replace=replace)


@pytest.fixture
def quick_cards(monkeypatch):
    monkeypatch.setattr(publish, "save_for_inference", shutil.copyfile)
    monkeypatch.setattr(
        publish,
        "write_model_card",
        lambda folder, name, *args: (folder / "card.md").write_text(f"# {name}\n"),
    )


def test_replace_refuses_a_folder_that_is_not_a_registered_model(
    trained_run, tmp_path, quick_cards
):
    registry_file, root = tmp_path / "registry.yaml", tmp_path / "saved_models"
    mine = root / "notes"
    mine.mkdir(parents=True)
    (mine / "thesis.tex").write_text("two years of work")
    with pytest.raises(CatalogError) as error:
        add(trained_run[1], "notes", registry_file, root, replace=True)
    assert str(error.value) == (
        f"{mine}: in the way of --replace and not a registered model's folder "
        "('notes' is not in the registry); nothing replaced"
    )
    assert (mine / "thesis.tex").read_text() == "two years of work"
    assert not registry_file.exists()
    assert [path.name for path in root.iterdir()] == ["notes"]  # no staging left


@pytest.mark.parametrize("change", ["added", "edited"])
def test_replace_refuses_a_model_folder_holding_what_zoo_did_not_write(
    trained_run, tmp_path, quick_cards, change
):
    registry_file, root = tmp_path / "registry.yaml", tmp_path / "saved_models"
    add(trained_run[1], "same", registry_file, root)
    before = registry_file.read_bytes()
    if change == "added":
        path = root / "same" / "my-notes.txt"
        message = f"{path}: not a file of the registered model 'same'; nothing replaced"
    else:
        path = root / "same" / "card.md"
        message = f"{path}: changed since `zoo models add` wrote it"
    path.write_text("written by hand")
    with pytest.raises(CatalogError) as error:
        add(trained_run[1], "same", registry_file, root, replace=True)
    assert str(error.value).startswith(message)
    assert path.read_text() == "written by hand"
    assert registry_file.read_bytes() == before


def test_replace_replaces_the_registered_model_it_wrote(trained_run, tmp_path, quick_cards):
    registry_file, root = tmp_path / "registry.yaml", tmp_path / "saved_models"
    add(trained_run[1], "same", registry_file, root)
    (root / "same" / "card.md").unlink()  # a file missing is not a file of someone else's
    entry = add(trained_run[1], "same", registry_file, root, replace=True)
    assert (root / "same" / "card.md").read_text() == "# same\n"
    assert sorted(entry["artifacts"]) == sorted(
        path.relative_to(root / "same").as_posix()
        for path in (root / "same").rglob("*")
        if path.is_file()
    )
