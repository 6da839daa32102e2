"""The errors that mean "bad input" rather than "bug": the CLI prints them as one line."""


class ZooError(Exception):
    """Base of zoo's own user-facing errors."""


def user_errors():
    """The exception types the CLI reports as one line with exit code 2."""
    from zoo.registry import RegistryError

    errors = [ZooError, RegistryError, FileNotFoundError]
    try:
        from zoo.data.errors import DataError

        errors.append(DataError)
    except ImportError:
        pass
    return tuple(errors)
