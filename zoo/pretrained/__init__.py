"""Pretrained models: the catalog (``registry.yaml``, plugins' and the user's entries),
their verified files, ``zoo models add`` / ``pull``, and ``zoo.load``.

catalog.py (entries and their schema) → artifacts.py (the local copy checked: sha256,
strays) → downloads.py (bounded downloads and archives, one pull of a model at a time)
→ resolver.py (name or path → verified folder) → pretrained_model.py (``zoo.load``);
publish.py and model_card.py make a shipped model from a run; locks.py serializes pulls
and registry updates. Importing this package imports no TensorFlow.
"""
