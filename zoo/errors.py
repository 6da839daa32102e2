"""The errors that mean "bad input" rather than "bug": the CLI prints them as one line."""

import sys


class ZooError(Exception):
    """Base of zoo's own user-facing errors."""


def user_errors():
    """The exception types the CLI reports as one line with exit code 2."""
    from zoo.registry import RegistryError

    errors = [ZooError, RegistryError, FileNotFoundError]
    # A DataError can only have been raised once zoo.data is imported; importing it here
    # would import TensorFlow just to print an error of a command that never needed it.
    data_errors = sys.modules.get("zoo.data.errors")
    if data_errors is not None:
        errors.append(data_errors.DataError)
    return tuple(errors)
