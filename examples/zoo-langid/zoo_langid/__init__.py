"""zoo-langid: a zoo plugin that adds a task, sentence language identification (English
or French?), with its model, recipe, exporter and a pretrained model.

Importing the package registers nothing: zoo imports ``zoo_langid.plugin`` through the
``zoo.plugins`` entry point. ``zoo_langid.text`` and ``zoo_langid.runtime`` import no
TensorFlow.
"""
