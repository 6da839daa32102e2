"""Exports: SavedModel and builtin-only TFLite files with ``export.json`` and a mobile
card (``zoo.export.exporter``), and the LiteRT runtime that runs them without
TensorFlow (``zoo.export.litert``). Importing this package imports no TensorFlow."""
