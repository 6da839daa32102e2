"""What zoo prints is zoo's: no Keras warning before a one-line error, and no control
character or bidirectional override from a vocabulary reaching the terminal raw."""

import json
import shutil
import warnings

from click.testing import CliRunner

from zoo.cli.main import cli, for_terminal


def test_control_characters_and_bidi_overrides_are_escaped():
    text = "a\x00b\rc\x1b[31md\u202ee\u2066f\x85g\th\ni é 😀"
    shown = for_terminal(text)
    assert shown == "a\\u0000b\\u000dc\\u001b[31md\\u202ee\\u2066f\\u0085g\th\ni é 😀"
    # in JSON output the escape is the same character's
    assert json.loads(f'"{for_terminal(json.dumps(text)[1:-1])}"') == text


def test_generated_and_translated_text_is_escaped(monkeypatch):
    import zoo.pipeline

    monkeypatch.setattr(zoo.pipeline, "generate_from_run", lambda *args: "time\u202e\x1b]0;x\x07")
    result = CliRunner().invoke(cli, ["generate", "run", "--prefix", "time"])
    assert result.exit_code == 0 and result.stdout == "time\\u202e\\u001b]0;x\\u0007\n"
    monkeypatch.setattr(zoo.pipeline, "translate_with_run", lambda *args: ["va\r!", "ok"])
    result = CliRunner().invoke(cli, ["translate", "run", "go ."])
    assert result.stdout == "va\\u000d!\nok\n"


def test_a_tampered_model_is_one_line_without_keras_warnings(trained_run, tmp_path, monkeypatch):
    import keras

    _, source = trained_run
    shutil.copytree(source, tmp_path / "run")

    def warn_then_fail(path, **kwargs):
        warnings.warn("Skipping variable loading for optimizer 'adam'", UserWarning, stacklevel=1)
        raise ValueError("A total of 3 objects could not be loaded.")

    monkeypatch.setattr(keras.saving, "load_model", warn_then_fail)
    with warnings.catch_warnings(record=True) as shown:  # what would reach stderr
        warnings.simplefilter("always")
        result = CliRunner().invoke(cli, ["generate", str(tmp_path / "run"), "--prefix", "time"])
    assert [str(warning.message) for warning in shown] == []
    assert result.exit_code == 2
    assert result.stderr == (
        f"zoo: error: {tmp_path / 'run' / 'model.keras'}: corrupt or unreadable model file "
        "(A total of 3 objects could not be loaded.)\n"
    )
