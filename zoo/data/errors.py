"""The errors and warnings that the data package raises."""

from zoo.errors import DataError

__all__ = ["DataError", "MalformedDataWarning"]


class MalformedDataWarning(UserWarning):
    """Some lines of a user's file could not be used; the message says which and why."""
