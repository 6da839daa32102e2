"""One bounded reader for every YAML and JSON file zoo reads: recipes, the pretrained
registries, ``metrics.json``, ``export.json``, checkpoint states.

Each file is checked before it is trusted, in this order: its size (read at most
``max_bytes`` + 1 bytes, so a huge file or a FIFO costs nothing), UTF-8, the syntax, then
its shape once YAML aliases are expanded: at most ``max_values`` values (a "billion
laughs" file of a few hundred bytes expands to billions, which hashing or printing it
would then spell out; an alias that refers to itself never ends) and at most
``max_depth`` levels of nesting (deeper data overflows Python's stack in whatever walks
it later). Every refusal is one line that starts with the file's path; ``field`` reads
one value of a document and names the path inside the file when it is missing or of
the wrong type.

YAML is read with a SafeLoader (never objects) that follows YAML 1.2 for numbers:
``1e-3`` and ``1e12`` are floats, not strings.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from zoo.errors import ZooError

MAX_DOCUMENT_BYTES = 1 << 20
MAX_DOCUMENT_VALUES = 100_000
# Far deeper than any file zoo writes (a recipe is 5 levels deep), far below the stack.
MAX_DOCUMENT_DEPTH = 64


class DocumentError(ZooError):
    """A YAML or JSON file that cannot be used; one line that starts with its path."""


class DocumentLoader(yaml.SafeLoader):
    """YAML with YAML 1.2 numbers: ``1e-3`` and ``1e12`` are floats, not strings."""


DocumentLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


def check_shape(
    value: Any,
    label: str,
    error: type[Exception] = DocumentError,
    max_values: int = MAX_DOCUMENT_VALUES,
    max_depth: int = MAX_DOCUMENT_DEPTH,
    aliases: str = " once its YAML aliases are expanded",
) -> None:
    """Walks ``value`` as if its aliases were copies, refusing it past ``max_values``
    values or ``max_depth`` levels (iteratively: the walk itself never recurses).
    ``aliases`` words the bound for YAML; JSON has none (pass ``""``)."""
    pending, count = [(value, 1)], 0
    while pending:
        item, depth = pending.pop()
        count += 1
        if count > max_values:
            loop = " (or an alias refers to itself)" if aliases else ""
            raise error(f"{label}: more than {max_values:,} values{aliases}{loop}")
        if depth > max_depth:
            loop = " (or an alias refers to itself)" if aliases else ""
            raise error(f"{label}: nested more than {max_depth} levels deep{aliases}{loop}")
        if isinstance(item, dict):
            pending += [(child, depth + 1) for child in (*item.keys(), *item.values())]
        elif isinstance(item, list):
            pending += [(child, depth + 1) for child in item]


def parse_yaml(
    text: str,
    label: str,
    error: type[Exception] = DocumentError,
    max_values: int = MAX_DOCUMENT_VALUES,
    max_depth: int = MAX_DOCUMENT_DEPTH,
) -> Any:
    """YAML data from ``text`` (``label`` names it in errors), within the bounds."""
    # PyYAML parses flow collections recursively and slowly (100,000 nested brackets
    # take seconds before its recursion limit stops it): their depth is counted first.
    # Brackets inside quoted strings count too, which only a file nested in name would
    # notice; block nesting needs a line per level and stays within the size bound.
    depth = deepest = 0
    for character in re.finditer(r"[\[\]{}]", text):
        depth += 1 if character.group() in "[{" else -1
        deepest = max(deepest, depth)
        if deepest > max_depth:
            raise error(f"{label}: nested more than {max_depth} levels deep")
    try:
        value = yaml.load(text, Loader=DocumentLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as problem:
        mark = getattr(problem, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        reason = getattr(problem, "problem", None) or str(problem).splitlines()[0]
        raise error(f"{label}: not valid YAML{where}: {reason}") from None
    except RecursionError:
        raise error(f"{label}: not valid YAML: nested too deep") from None
    except ValueError as problem:  # an impossible date
        raise error(f"{label}: not valid YAML: {type(problem).__name__}: {problem}") from None
    check_shape(value, label, error, max_values, max_depth)
    return value


def parse_json(
    text: str,
    label: str,
    error: type[Exception] = DocumentError,
    max_values: int = MAX_DOCUMENT_VALUES,
    max_depth: int = MAX_DOCUMENT_DEPTH,
) -> Any:
    """JSON data from ``text`` (``label`` names it in errors), within the bounds."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise error(f"{label}: nested more than {max_depth} levels deep") from None
    except ValueError as problem:
        reason = str(problem).splitlines()[0][:120]
        raise error(f"{label}: not valid JSON ({reason})") from None
    check_shape(value, label, error, max_values, max_depth, aliases="")
    return value


def read_text(
    path: Path,
    what: str,
    error: type[Exception] = DocumentError,
    max_bytes: int = MAX_DOCUMENT_BYTES,
) -> str:
    """The UTF-8 text of ``path`` (``what`` says what it is meant to be), refused past
    ``max_bytes`` without reading further."""
    path = Path(path)
    if not path.is_file():
        raise error(f"{path}: no such {what} file")
    try:
        with open(path, "rb") as file:
            data = file.read(max_bytes + 1)
    except OSError as problem:
        raise error(f"{path}: cannot read the {what} ({problem.strerror})") from None
    if len(data) > max_bytes:
        size = path.stat().st_size
        raise error(f"{path}: {size:,} bytes; a {what} is at most {max_bytes:,}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise error(f"{path}: not UTF-8 text") from None


def read_yaml(
    path: Path,
    what: str,
    error: type[Exception] = DocumentError,
    max_bytes: int = MAX_DOCUMENT_BYTES,
    max_values: int = MAX_DOCUMENT_VALUES,
    max_depth: int = MAX_DOCUMENT_DEPTH,
) -> Any:
    """A YAML file's data, checked against every bound; one line naming ``path`` if not."""
    text = read_text(path, what, error, max_bytes)
    return parse_yaml(text, str(path), error, max_values, max_depth)


def read_json(
    path: Path,
    what: str,
    error: type[Exception] = DocumentError,
    max_bytes: int = MAX_DOCUMENT_BYTES,
    max_values: int = MAX_DOCUMENT_VALUES,
    max_depth: int = MAX_DOCUMENT_DEPTH,
) -> Any:
    """A JSON file's data, checked against every bound; one line naming ``path`` if not."""
    text = read_text(path, what, error, max_bytes)
    return parse_json(text, str(path), error, max_values, max_depth)


_KINDS = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "true or false",
    dict: "a mapping",
    list: "a list",
}


def field(document: Any, path: str, kind: type | tuple, label: str, error=DocumentError) -> Any:
    """The value at ``path`` (``a.b[0].c``) in ``document``, of type ``kind``; a missing
    value or one of another type is one line: ``LABEL: a.b[0].c: missing``."""
    value = document
    for key, index in re.findall(r"([^.\[\]]+)|\[(\d+)\]", path):
        if index:
            if not isinstance(value, list) or int(index) >= len(value):
                raise error(f"{label}: {path}: missing")
            value = value[int(index)]
        else:
            if not isinstance(value, dict) or key not in value:
                raise error(f"{label}: {path}: missing")
            value = value[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    # a bool is an int to Python, never to a file's reader
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        expected = " or ".join(_KINDS.get(each, each.__name__) for each in kinds)
        raise error(f"{label}: {path}: expected {expected}, got {type(value).__name__}")
    return value
