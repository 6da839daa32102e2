"""Reading users' own corpora: a plain-text file for a language model, and a TSV file of
``source<TAB>target`` pairs for a translator.

Malformed TSV lines are never dropped silently: ``read_pairs_tsv`` returns a
``MalformedReport`` that lists each one with its line number, and warns with a one-line
summary of it.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from zoo.data.errors import DataError, MalformedDataWarning

# How many malformed lines the one-line summary names before it says "...".
SUMMARY_EXAMPLES = 5
# A TSV file none of whose first this many lines is a pair is not a TSV file of pairs.
PROBE_LINES = 10


class Pair(NamedTuple):
    """One sentence pair and the 1-based line it came from."""

    line_number: int
    source: str
    target: str


@dataclass
class MalformedReport:
    """The lines of a file that could not be used, as ``(line_number, reason)``.

    Reasons: ``"no tab"``, ``"empty source"``, ``"empty target"``, ``"bad UTF-8"``.
    """

    path: str
    num_lines: int = 0
    problems: list[tuple[int, str]] = field(default_factory=list)

    @property
    def num_malformed(self) -> int:
        return len(self.problems)

    def summary(self) -> str:
        """One line: ``"2 malformed lines (line 3: no tab; line 7: empty target)"``."""
        shown = "; ".join(
            f"line {number}: {reason}" for number, reason in self.problems[:SUMMARY_EXAMPLES]
        )
        more = "; ..." if self.num_malformed > SUMMARY_EXAMPLES else ""
        noun = "line" if self.num_malformed == 1 else "lines"
        return f"{self.num_malformed} malformed {noun} ({shown}{more})"


def read_text_file(path) -> str:
    """The UTF-8 text of a language-model corpus.

    Raises:
        DataError: the file is missing, empty (or only whitespace) or not UTF-8.
    """
    data = _read_bytes(path)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line_number = data.count(b"\n", 0, error.start) + 1
        raise DataError(f"{path}: bad UTF-8 at line {line_number}") from None
    if not text.strip():
        raise DataError(f"{path}: file is empty")
    return text


def read_pairs_tsv(path) -> tuple[list[Pair], MalformedReport]:
    """The sentence pairs of a ``source<TAB>target`` file, one pair per line.

    Columns after the second are ignored (manythings.org's newer files add an attribution
    column). Trailing ``\\r`` and a UTF-8 byte-order mark are removed. Malformed lines are
    listed in the report and summarised in one ``MalformedDataWarning``.

    Returns:
        ``(pairs, report)``: the good pairs in file order, and the malformed lines.

    Raises:
        DataError: the file is missing or empty, or none of its first ``PROBE_LINES``
            lines is a good pair (a binary file, a file of another kind).
    """
    pairs, report = parse_pairs(_read_bytes(path), source_name=str(path))
    probed = min(PROBE_LINES, report.num_lines)
    if not any(pair.line_number <= probed for pair in pairs):
        raise DataError(
            f"{path}: not a source<TAB>target file: none of its first {probed} lines is a pair "
            f"({report.summary()})"
        )
    if report.num_malformed:
        warnings.warn(f"{path}: {report.summary()}", MalformedDataWarning, stacklevel=2)
    return pairs, report


def parse_pairs(data: bytes, source_name: str) -> tuple[list[Pair], MalformedReport]:
    """Parses the bytes of a TSV file of pairs; ``read_pairs_tsv`` without the file
    checks and the warning, shared with the fra-eng builder."""
    report = MalformedReport(path=source_name)
    pairs = []
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    report.num_lines = len(lines)
    for line_number, raw_line in enumerate(lines, start=1):
        try:
            line = raw_line.decode("utf-8").rstrip("\r")
        except UnicodeDecodeError:
            report.problems.append((line_number, "bad UTF-8"))
            continue
        if line_number == 1:
            line = line.removeprefix("\ufeff")
        columns = line.split("\t")
        if len(columns) < 2:
            report.problems.append((line_number, "no tab"))
        elif not columns[0].strip():
            report.problems.append((line_number, "empty source"))
        elif not columns[1].strip():
            report.problems.append((line_number, "empty target"))
        else:
            pairs.append(Pair(line_number, columns[0].strip(), columns[1].strip()))
    return pairs, report


def _read_bytes(path) -> bytes:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    data = path.read_bytes()
    if not data.strip():
        raise DataError(f"{path}: file is empty")
    return data
