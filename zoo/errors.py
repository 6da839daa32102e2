"""The errors that mean "bad input" rather than "bug": the CLI prints them as one line."""


class ZooError(Exception):
    """Base of zoo's own user-facing errors."""


class DataError(ValueError):
    """Data that cannot be used: a missing, empty, damaged or too short file, or bad
    arguments. Its message is one line and names the file or the argument. (Here rather
    than in ``zoo.data`` so that text preparation imports without TensorFlow.)"""


def user_errors():
    """The exception types the CLI reports as one line with exit code 2."""
    from zoo.registry import RegistryError

    return (ZooError, RegistryError, FileNotFoundError, DataError)
