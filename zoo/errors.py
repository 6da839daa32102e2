"""The errors that mean "bad input" rather than "bug", and how the CLI words any error:
one line, at most ``MAX_MESSAGE_CHARS`` characters, classified by cause (``classify``):

- a bad input or usage (a recipe, an option, a data file, a run directory): exit 2;
- a file or folder zoo was not allowed to write or read (permission, a read-only
  disk): exit 2, the user chooses another place;
- the disk full: exit 1, named as such (TensorFlow words it as "resource exhausted");
- a file or folder that is not there: exit 2 (a path the user gave), but a run folder
  deleted during training is a ``Failure`` (exit 1) that says so;
- out of memory: exit 1;
- anything else is a bug: exit 1, with the hint that ``ZOO_DEBUG=1`` shows the traceback.
"""

import errno

# A message longer than this is cut: a recipe's value can be as large as the recipe.
MAX_MESSAGE_CHARS = 500


class ZooError(Exception):
    """Base of zoo's own user-facing errors; ``exit_code`` 2 says "bad input"."""

    exit_code = 2


class Failure(ZooError):
    """A failure at run time that is not the input's fault (a run folder that disappeared
    during training): one line, exit code 1."""

    exit_code = 1


class DataError(ValueError):
    """Data that cannot be used: a missing, empty, damaged or too short file, or bad
    arguments. Its message is one line and names the file or the argument. (Here rather
    than in ``zoo.data`` so that text preparation imports without TensorFlow.)"""


class UsageError(ZooError):
    """An option value that cannot be used (NaN, an empty prefix): exit code 2."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C, with what it left behind: the message says whether there is anything to resume."""


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised where Ctrl-C would be, so a run cleans up alike (which
    signal it was is in ``received_signal``)."""


# The signal that interrupted this process (SIGINT unless SIGTERM or SIGHUP came): its
# exit code is 128 + its number, as a shell reports a process killed by it.
received_signal = {"number": 2, "name": "SIGINT"}


def terminate_on(signal_number: int, frame=None) -> None:
    """A signal handler: SIGTERM and SIGHUP interrupt zoo as Ctrl-C does."""
    import signal

    received_signal.update(number=signal_number, name=signal.Signals(signal_number).name)
    raise Terminated


def user_errors():
    """The exception types the CLI reports as one line with exit code 2."""
    from zoo.registry import RegistryError

    return (ZooError, RegistryError, DataError)


def one_line(error: BaseException) -> str:
    """The message of ``error`` as one line of at most ``MAX_MESSAGE_CHARS`` characters;
    an error without a message is named by its type."""
    text = " ".join(str(error).split()) or type(error).__name__
    if len(text) > MAX_MESSAGE_CHARS:
        text = text[: MAX_MESSAGE_CHARS - 1] + "…"
    return text


DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
NOT_ALLOWED = (errno.EACCES, errno.EPERM, errno.EROFS)
DISK_FULL_TEXT = "No space left on device"  # how TensorFlow's C++ file writers say it
OUT_OF_MEMORY = ("MemoryError", "ResourceExhaustedError")  # Python's and TensorFlow's


def _os_error(error: BaseException) -> OSError | None:
    """The ``OSError`` behind ``error`` (itself, or what it was raised from)."""
    while error is not None:
        if isinstance(error, OSError) and error.errno is not None:
            return error
        error = error.__cause__ or error.__context__
    return None


def classify(error: BaseException) -> tuple[int, str]:
    """The exit code and the one line (without ``zoo: error: ``) for ``error``."""
    if isinstance(error, user_errors()):
        return getattr(error, "exit_code", 2), one_line(error)
    os_error = _os_error(error)
    kind = type(error).__name__
    if (os_error is not None and os_error.errno in DISK_FULL) or DISK_FULL_TEXT in str(error):
        where = f"{os_error.filename}: " if os_error is not None and os_error.filename else ""
        return 1, f"disk full: {where}no space left on the device; free some space and retry"
    if os_error is not None and os_error.errno in NOT_ALLOWED:
        where = os_error.filename or "a file"
        return 2, f"permission denied: {where} ({os_error.strerror}); choose another place"
    if os_error is not None and os_error.errno == errno.ENOENT:
        where = os_error.filename or "a file"
        return 2, f"{where}: no such file or folder"
    if kind in OUT_OF_MEMORY:
        kind = f"out of memory ({kind})"
    return 1, f"{kind}: {one_line(error)} (ZOO_DEBUG=1 shows the traceback)"
