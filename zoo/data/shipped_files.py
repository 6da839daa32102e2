"""The corpora shipped inside the package (``zoo/data/files``), checked by sha256.

Nothing here touches the network: the builders read these files directly.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from zoo.data.errors import DataError

FILES_DIR = Path(__file__).with_name("files")

# Kept in step with ``files/README.md``.
SHA256 = {
    "timemachine.txt": "8424dbd9532ac81f7e5f0b6add90e6952baea29158309d7d1bf3884f4e12c516",
    "fra-eng.zip": "fa96382b2c8b609e1662654c1e6e6baeb8d30b3bf63dfb4a5a261cc36347df13",
}


def file_sha256(path: Path) -> str:
    """The hex sha256 of a file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def shipped_file(file_name: str) -> Path:
    """The path of a shipped file, after checking that its sha256 is the expected one.

    Raises:
        DataError: the file is missing or its sha256 differs.
    """
    path = FILES_DIR / file_name
    if not path.is_file():
        raise DataError(f"{path}: shipped data file is missing; reinstall zoo")
    actual = file_sha256(path)
    if actual != SHA256[file_name]:
        raise DataError(
            f"{path}: sha256 {actual} does not match the expected {SHA256[file_name]}; "
            "the shipped file is damaged, reinstall zoo"
        )
    return path
