"""Exports: TensorFlow SavedModel with named endpoints (TFLite follows the same endpoints)."""

from zoo.export.saved_model import export_saved_model

__all__ = ["export_saved_model"]
