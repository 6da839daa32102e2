"""The errors that mean "bad input" rather than "bug", and how the CLI words any error:
one line, at most ``MAX_MESSAGE_CHARS`` characters."""

# A message longer than this is cut: a recipe's value can be as large as the recipe.
MAX_MESSAGE_CHARS = 500


class ZooError(Exception):
    """Base of zoo's own user-facing errors."""


class DataError(ValueError):
    """Data that cannot be used: a missing, empty, damaged or too short file, or bad
    arguments. Its message is one line and names the file or the argument. (Here rather
    than in ``zoo.data`` so that text preparation imports without TensorFlow.)"""


class UsageError(ZooError):
    """An option value that cannot be used (NaN, an empty prefix): exit code 2."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C, with what it left behind: the message says whether there is anything to resume."""


def user_errors():
    """The exception types the CLI reports as one line with exit code 2."""
    from zoo.registry import RegistryError

    return (ZooError, RegistryError, FileNotFoundError, DataError)


def one_line(error: BaseException) -> str:
    """The message of ``error`` as one line of at most ``MAX_MESSAGE_CHARS`` characters;
    an error without a message is named by its type."""
    text = " ".join(str(error).split()) or type(error).__name__
    if len(text) > MAX_MESSAGE_CHARS:
        text = text[: MAX_MESSAGE_CHARS - 1] + "…"
    return text
