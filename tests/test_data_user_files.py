import pytest

from zoo.data import DataError
from zoo.data.errors import MalformedDataWarning
from zoo.data.user_files import read_pairs_tsv, read_text_file


def write_bytes(tmp_path, content: bytes):
    path = tmp_path / "pairs.tsv"
    path.write_bytes(content)
    return path


def test_malformed_lines_are_reported_with_line_numbers_and_one_warning(tmp_path):
    lines = [
        b"Go.\tVa !",
        b"Hi.\tSalut !",
        b"no tab here",
        b"\tempty source",
        b"Run!\tCours !",
        b"bad \xff utf-8\tmauvais",
        b"Who?\t   ",
        "Wow!\tÇa alors !\r".encode(),
    ]
    path = write_bytes(tmp_path, b"\n".join(lines) + b"\n")
    with pytest.warns(MalformedDataWarning) as warnings:
        pairs, report = read_pairs_tsv(path)
    assert [pair.line_number for pair in pairs] == [1, 2, 5, 8]
    assert pairs[-1].target == "Ça alors !"  # \r removed
    assert report.num_lines == 8
    assert report.problems == [
        (3, "no tab"),
        (4, "empty source"),
        (6, "bad UTF-8"),
        (7, "empty target"),
    ]
    [warning] = warnings
    message = str(warning.message)
    assert "\n" not in message
    assert message.endswith(
        "4 malformed lines (line 3: no tab; line 4: empty source; line 6: bad UTF-8; "
        "line 7: empty target)"
    )


def test_the_summary_names_the_first_five_and_then_says_more(tmp_path):
    path = write_bytes(tmp_path, b"good\tbon\n" + b"bad\n" * 7)
    with pytest.warns(
        MalformedDataWarning,
        match=r"7 malformed lines \(line 2: no tab; .*line 6: no tab; \.\.\.\)",
    ):
        read_pairs_tsv(path)


def test_a_clean_file_gives_no_warning_and_ignores_extra_columns_and_a_bom(tmp_path):
    path = write_bytes(tmp_path, "\ufeffGo.\tVa !\tCC-BY 2.0 (France)\n".encode())
    pairs, report = read_pairs_tsv(path)  # a warning would fail: zoo's warnings are errors
    assert [tuple(pair) for pair in pairs] == [(1, "Go.", "Va !")]
    assert report.num_malformed == 0


@pytest.mark.parametrize("content", [b"", b"  \n\n", None])
def test_a_missing_or_empty_file_is_a_one_line_error(tmp_path, content):
    path = tmp_path / "pairs.tsv"
    if content is not None:
        path.write_bytes(content)
    for reader in (read_pairs_tsv, read_text_file):
        with pytest.raises(DataError) as error:
            reader(path)
        assert "\n" not in str(error.value)
        assert str(path) in str(error.value)


def test_a_file_without_any_good_pair_is_an_error(tmp_path):
    path = write_bytes(tmp_path, b"one\ntwo\n")
    with pytest.raises(DataError, match="not a source<TAB>target file"):
        read_pairs_tsv(path)


def test_a_file_whose_first_lines_are_no_pairs_fails_at_once(tmp_path):
    """A binary file, or a text file of another kind, whatever follows its first lines."""
    path = write_bytes(tmp_path, bytes(range(256)) * 20 + b"go .\tva !\n" * 50)
    with pytest.raises(DataError, match="none of its first 10 lines is a pair"):
        read_pairs_tsv(path)


def test_a_text_file_with_bad_utf8_names_the_line(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_bytes(b"fine\nstill fine\nnot \xff fine\n")
    with pytest.raises(DataError, match="line 3"):
        read_text_file(path)


def test_a_text_file_is_read_whole(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text("The Time\nMachine\n", encoding="utf-8")
    assert read_text_file(path) == "The Time\nMachine\n"
