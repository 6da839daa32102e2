import collections

from zoo.data.splits import contiguous_split, hash_split


def test_contiguous_split_is_90_5_5_percent_in_order():
    text = "".join(chr(ord("a") + index % 26) for index in range(173428))
    parts = contiguous_split(text)
    assert list(parts) == ["train", "validation", "test"]
    assert parts["train"] + parts["validation"] + parts["test"] == text
    assert [len(part) for part in parts.values()] == [156085, 8672, 8671]


def test_hash_split_is_stable_across_processes_and_machines():
    # Fixed expectations: a salted or changed hash would move these.
    assignments = [hash_split(f"sentence {index}", seed=0) for index in range(40)]
    held_out = {index: split for index, split in enumerate(assignments) if split != "train"}
    assert held_out == {6: "validation", 18: "test", 38: "test"}


def test_hash_split_fractions_are_about_90_5_5_and_depend_on_the_seed():
    keys = [f"key {index}" for index in range(20000)]
    counts = collections.Counter(hash_split(key, seed=0) for key in keys)
    assert abs(counts["validation"] / len(keys) - 0.05) < 0.01
    assert abs(counts["test"] / len(keys) - 0.05) < 0.01
    other_seed = [hash_split(key, seed=1) for key in keys[:200]]
    assert other_seed != [hash_split(key, seed=0) for key in keys[:200]]
