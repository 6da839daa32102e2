"""Pretrained models: the catalog (``registry.yaml``, plugins' and the user's entries),
their verified files, ``zoo models add`` / ``pull``, and ``zoo.load``.

catalog.py (entries and their schema) → artifacts.py (sha256, download, unpack) →
resolver.py (name or path → verified folder) → pretrained_model.py (``zoo.load``);
publish.py and model_card.py make a shipped model from a run. Importing this package
imports no TensorFlow.
"""
