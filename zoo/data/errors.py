"""The errors and warnings that the data package raises."""


class DataError(ValueError):
    """Data that cannot be used: a missing, empty, damaged or too short file, or bad
    arguments. Its message is one line and names the file or the argument."""


class MalformedDataWarning(UserWarning):
    """Some lines of a user's file could not be used; the message says which and why."""
