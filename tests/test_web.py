"""``zoo export --format web``, its page and ``zoo serve`` (issue 26).

Quick tests: the page's contract.js in node (cleaning and tokens as zoo's, the beam search
as the Python client's on an arithmetic decode_step full of ties), ``zoo serve`` (types,
refusals, Ctrl-C), the gallery's ownership, the runtime's one-line refusal without npm.

Slow tests (``-m slow``; CI installs what they need, and they fail without it): the
shipped models exported with ``--format web``, served by ``zoo serve`` and driven in
Debian's Chromium by playwright-core (tests/web/drive.cjs): the translator's page
against ``zoo translate`` on the same TFLite file (25 sentences; a difference passes only
as a near-tie, |Δ log P| < 0.01 by the Python runtime), the language model's page against
``zoo generate --greedy`` character for character, and both pages at a phone's viewport,
the translator's with the network cut after the first load. Each writes a screenshot to
its tmp folder; with ZOO_WEB_SCREENSHOT=PATH the phone one is copied to PATH (README's
docs/web-phone.png is made so).
"""

import contextlib
import importlib.util
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from processes import ctrl_c_as_from_a_terminal
from test_export_contract import SAMPLES, cleanings, fra_eng_test_sources

from zoo.cli.main import cli
from zoo.export.formats import default_formats
from zoo.export.litert import LiteRTTranslator
from zoo.export.manifest import ExportError
from zoo.export.web import gallery, runtime
from zoo.export.web.page import write_web
from zoo.export.web.serve import make_server

ROOT = Path(__file__).resolve().parents[1]
WEB = ROOT / "zoo" / "export" / "web"
DRIVER = ROOT / "tests" / "web" / "drive.cjs"
CONTRACT_CHECK = ROOT / "tests" / "web" / "contract_check.mjs"
CLIENT = ROOT / "tests" / "clients" / "translate_client.py"
CHROMIUM = "/usr/bin/chromium"
TRANSLATOR, LANGUAGE_MODEL = "seq2seq-attn-fra-eng", "lm-lstm-timemachine"


def require(tool: str, found: bool, how: str) -> None:
    """A tool these tests need: absent, the test fails in CI (which installs it) and is
    skipped on a machine without it."""
    if not found:
        message = f"{tool} is missing ({how})"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def load_client():
    specification = importlib.util.spec_from_file_location("translate_client", CLIENT)
    client = importlib.util.module_from_spec(specification)
    specification.loader.exec_module(client)
    return client


# ---------------------------------------------------------------- contract.js in node


def fake_decode_step(tokens: np.ndarray, carried: dict) -> dict:
    """tests/web/contract_check.mjs's fakeDecodeStep, row by row, in NumPy."""
    state = carried["state_0"].astype(np.float64)
    token = tokens.astype(np.float64)[:, None]
    values = np.arange(7, dtype=np.float64)[None, :]
    log_probs = -np.mod(3 * values + 7 * state[:, :1] + 5 * token, 11) / 4
    moved = np.stack([np.mod(state[:, 0] + token[:, 0], 13), state[:, 1] * 0.5 + 1], axis=1)
    return {"log_probs": log_probs.astype(np.float32), "state_0": moved.astype(np.float32)}


PREFIXES = [
    "The cat\nsat",
    "the cat sat\n",
    "a\n\nthe  cat",
    "The Time\r\nMachine",
    "\n",
    "123",
    *SAMPLES,
]


def language_model_ids(text, prefix: str, vocabulary: list) -> list | None:
    """zoo generate's ids of ``prefix`` (zoo.decoding.text), None where it is refused."""
    from zoo.decoding.text import PrefixError, TextGenerator
    from zoo.text.vocab import Vocab

    generator = TextGenerator(None, Vocab(reserved_tokens=vocabulary), text)
    try:
        return generator.prefix_ids(prefix)[1]
    except PrefixError:
        return None


SEARCH_CASES = [
    {"state": [s0, s1], "beam": beam}
    for s0, s1 in [(0, 0), (1, 2), (4, 1), (9, 3), (12, 0)]
    for beam in (1, 2, 3, 4)
]


def test_contract_js_cleans_cuts_and_searches_as_zoo_and_the_python_client():
    """The page's own code: every cleaning export.json can state, on text that tells the
    dialects apart, gives zoo's cleaning and tokens; the beam search gives the Python
    client's hypotheses at beams 1 to 4, max_length reached or not, ties included."""
    require("node", shutil.which("node") is not None, "apt-get install nodejs")
    from zoo.text.formats import WHITESPACE, LanguageModelText

    specs = [{"token_level": "word", "whitespace": WHITESPACE}, {"token_level": "char"}]
    jobs, expected = [], []
    for _, steps, clean in cleanings():
        for spec in specs:
            jobs.append({"steps": steps, "text": spec, "samples": SAMPLES})
            cleaned = [clean(sample) for sample in SAMPLES]
            tokens = [
                list(text) if spec["token_level"] == "char" else text.split() for text in cleaned
            ]
            expected.append([[text, pieces] for text, pieces in zip(cleaned, tokens, strict=True)])
    prefix_jobs, prefix_ids = [], []
    vocabulary = ["<unk>", "<eos>", " ", "the", "cat", "sat", "a", "t", "h", "e"]
    for preprocess, token_level, line_ends in [
        ("chapter", "char", "space"),
        ("lower", "word", "eos"),
        ("none", "word", "space"),
        ("lower", "char", "eos"),
        ("lower", "char", "space"),
    ]:
        text = LanguageModelText(
            preprocess=preprocess, token_level=token_level, line_ends=line_ends
        )
        prefix_jobs.append(
            {
                "text": {**text.manifest(), "whitespace": WHITESPACE},
                "vocabulary": "".join(f"{token}\n" for token in vocabulary),
                "samples": PREFIXES,
            }
        )
        prefix_ids.append([language_model_ids(text, prefix, vocabulary) for prefix in PREFIXES])
    decoding = {
        "max_length": 6,
        "beam_width": 4,
        "decode_step_rows": 4,
        "length_penalty_alpha": 0.75,
        "never_emit": [3],
        "num_steps": 8,
    }
    job = {
        "cleaning": jobs,
        "prefixes": prefix_jobs,
        "search": {"decoding": decoding, "rows": 4, "cases": SEARCH_CASES},
    }
    done = subprocess.run(
        ["node", str(CONTRACT_CHECK)], input=json.dumps(job), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert found["cleaning"] == expected
    assert found["prefixes"] == prefix_ids

    client = object.__new__(load_client().Translator)
    client.decoding, client.carried, client.rows = decoding, ["state_0"], 4
    client.target_special = {"<pad>": 0, "<bos>": 1, "<eos>": 2, "<unk>": 3}
    client.step = fake_decode_step
    searches = [
        client.search({"state_0": np.asarray([case["state"]], np.float32)}, case["beam"])
        for case in SEARCH_CASES
    ]
    assert found["searches"] == searches
    assert len({tuple(ids) for ids in searches}) > 5  # the cases do not all agree trivially


# ---------------------------------------------------------------- zoo serve


def fake_web_export(folder: Path) -> Path:
    folder.mkdir()
    (folder / "export.json").write_text(json.dumps({"web": {"page": "index.html"}}))
    for name, content in [
        ("index.html", "<!doctype html>"),
        ("app.js", "export {};"),
        ("runtime.wasm", "\0asm"),
        ("model.tflite", "TFL3"),
        ("manifest.webmanifest", "{}"),
    ]:
        (folder / name).write_text(content)
    return folder


def test_serve_gives_the_types_a_browser_needs(tmp_path):
    server = make_server(fake_web_export(tmp_path / "web"), port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}/"
        types = {}
        for name in ("", "app.js", "runtime.wasm", "model.tflite", "manifest.webmanifest"):
            with urllib.request.urlopen(base + name) as response:
                types[name] = response.headers["Content-Type"]
    finally:
        server.shutdown()
        server.server_close()
    assert types == {
        "": "text/html",
        "app.js": "text/javascript",
        "runtime.wasm": "application/wasm",
        "model.tflite": "application/octet-stream",
        "manifest.webmanifest": "application/manifest+json",
    }


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda path: path, "no such folder"),
        (lambda path: path.mkdir() or path, "no readable export.json"),
        (
            lambda path: path.mkdir() or (path / "export.json").write_text("{}") and path,
            "has no web page",
        ),
    ],
    ids=["missing", "empty", "an export without a page"],
)
def test_serve_refuses_a_folder_that_is_not_a_web_export_in_one_line(tmp_path, make, words):
    folder = make(tmp_path / "folder")
    result = CliRunner().invoke(cli, ["serve", str(folder), "--port", "0"])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("zoo: error: ") and words in lines[0]


def test_serve_refuses_a_port_in_use_in_one_line(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(
            cli, ["serve", str(fake_web_export(tmp_path / "web")), "--port", str(port)]
        )
    assert result.exit_code == 2
    assert (
        result.output
        == f"zoo: error: --port {port}: cannot listen on 127.0.0.1 (Address already in use)\n"
    )


def test_serve_stops_cleanly_on_ctrl_c(tmp_path):
    folder = fake_web_export(tmp_path / "web")
    process = subprocess.Popen(
        [sys.executable, "-m", "zoo.cli.main", "serve", str(folder), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=ctrl_c_as_from_a_terminal,
    )
    try:
        line = process.stdout.readline()
        assert line.startswith(f"serving {folder} at http://127.0.0.1:")
        url = line.split(" at ")[1].split()[0]
        with urllib.request.urlopen(url + "index.html") as response:
            assert response.read() == b"<!doctype html>"
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
    finally:
        process.kill()
        process.wait()
    assert process.stderr.read() == ""


# ---------------------------------------------------------------- export, gallery, runtime


def test_web_is_asked_for_by_name_only():
    assert "web" not in default_formats()
    assert {"saved_model", "tflite"} <= set(default_formats())


def test_two_first_web_exports_at_once_install_the_runtime_once(tmp_path, monkeypatch):
    """A fake npm that takes its time: the second export waits for the first's install
    and uses it, instead of running npm ci into the same folder."""
    monkeypatch.setattr(runtime, "HERE", tmp_path / "package")
    (tmp_path / "package").mkdir()
    for name in ("package.json", "package-lock.json"):
        shutil.copy(WEB / name, tmp_path / "package" / name)
    monkeypatch.setenv("ZOO_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(runtime.shutil, "which", lambda name: "/usr/bin/npm")
    calls = []

    def fake_npm(command, cwd, **kwargs):
        calls.append(cwd)
        threading.Event().wait(0.5)  # the other export arrives meanwhile
        modules = Path(cwd) / "node_modules"
        package = modules / "@litertjs" / "core"
        package.mkdir(parents=True)
        version = runtime.locked_version()
        (package / "package.json").write_text(json.dumps({"version": version}))
        for source in runtime.RUNTIME_FILES.values():
            (modules / source).parent.mkdir(parents=True, exist_ok=True)
            (modules / source).write_text("runtime")
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(runtime.subprocess, "run", fake_npm)
    found = []
    threads = [
        threading.Thread(target=lambda: found.append(runtime.node_modules())) for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(calls) == 1 and len(found) == 2 and found[0] == found[1]
    assert runtime.installed(found[0])


def test_without_npm_a_web_export_is_refused_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr(runtime, "HERE", tmp_path / "package")
    (tmp_path / "package").mkdir()
    for name in ("package.json", "package-lock.json"):
        shutil.copy(WEB / name, tmp_path / "package" / name)
    monkeypatch.setenv("ZOO_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(runtime.shutil, "which", lambda name: None)
    with pytest.raises(ExportError, match=r"--format web: npm is needed once .*@litertjs/core"):
        runtime.node_modules()


class FakeTaskExport:
    def __init__(self, task, tokenizer=None, litert_class=LiteRTTranslator):
        self.recipe = {"task": task, "name": "recipe"}
        self.tokenizer = tokenizer
        self.litert_class = litert_class

    def manifest(self):
        return {"text": {"tokenizer": self.tokenizer}}


@pytest.mark.parametrize(
    ("task_export", "words"),
    [
        (FakeTaskExport("autoregressive", litert_class=None), "and translators, not autoregr"),
        (FakeTaskExport("translator", "subword"), "this model's text.tokenizer is subword"),
        (FakeTaskExport("translator", "nltk"), "this model's text.tokenizer is nltk"),
    ],
    ids=["a series model", "subwords", "nltk words"],
)
def test_a_model_the_page_cannot_run_is_refused_before_a_file_is_written(
    tmp_path, task_export, words
):
    with pytest.raises(ExportError, match=f"^--format web: .*{words}"):
        write_web(task_export, tmp_path, ("dynamic",))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (
            ["a", "b", "--format", "tflite", "--out", "{tmp}/g"],
            "a gallery is made with --format web",
        ),
        (["a", "b", "--format", "web"], "give the gallery's folder as --out"),
        (["a", "a", "--format", "web", "--out", "{tmp}/g"], "each is named once, got a twice"),
    ],
    ids=["not web", "no --out", "twice"],
)
def test_a_gallery_asked_wrongly_is_one_line_and_writes_nothing(tmp_path, args, words):
    args = [arg.replace("{tmp}", str(tmp_path)) for arg in args]
    result = CliRunner().invoke(cli, ["export", *args])
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines() == [f"zoo: error: several models: {words}"]
    assert list(tmp_path.iterdir()) == []


def fake_gallery(folder: Path) -> Path:
    """A gallery as export_gallery leaves it, whose one model folder is a zoo export (two
    files of a shipped export: the others it lists may be missing)."""
    folder.mkdir()
    (folder / "index.html").write_text("<ul></ul>")
    model = folder / "m"
    model.mkdir()
    for name in ("export.json", "card.md"):
        shutil.copyfile(
            ROOT / "zoo" / "saved_models" / "lm-gru-timemachine" / "export" / name, model / name
        )
    files = [{"path": "index.html", "size": 9, "sha256": gallery.sha256_of(folder / "index.html")}]
    document = {"format": gallery.GALLERY_FORMAT, "models": [{"folder": "m"}], "files": files}
    (folder / gallery.GALLERY_MANIFEST).write_text(json.dumps(document))
    return folder


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda folder: None, None),
        (lambda folder: (folder / "notes.txt").write_text("mine"), "notes.txt is not listed"),
        (lambda folder: (folder / "index.html").write_text("edited"), "index.html differs"),
        (lambda folder: (folder / "m" / "x.txt").write_text("mine"), "m: x.txt is not listed"),
        (lambda folder: (folder / "gallery.json").write_text("{"), "no readable gallery.json"),
    ],
    ids=["whole", "a file of the user's", "an edited page", "a file in a model", "broken"],
)
def test_a_gallery_is_replaced_only_when_zoo_wrote_all_of_it(tmp_path, change, problem):
    folder = fake_gallery(tmp_path / "g")
    change(folder)
    found = gallery.gallery_problem(folder)
    if problem is None:
        assert found is None
        gallery.check_gallery_target(folder)
    else:
        assert problem in found
        with pytest.raises(ExportError, match="is not a zoo gallery"):
            gallery.check_gallery_target(folder)


# ---------------------------------------------------------------- in Chromium (slow)


def require_browser():
    require("Chromium", Path(CHROMIUM).is_file(), "apt-get install -y chromium")
    require(
        "playwright-core",
        (WEB / "node_modules" / "playwright-core").is_dir(),
        "npm ci --prefix zoo/export/web",
    )


def zoo(*args, stdin=None) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "zoo.cli.main", *args],
        input=stdin,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def web_exports(tmp_path_factory):
    """The two shipped models' web exports, made as README says."""
    require_browser()
    folder = tmp_path_factory.mktemp("web")
    for name in (TRANSLATOR, LANGUAGE_MODEL):
        zoo("export", name, "--format", "web", "--no-measure", "--out", str(folder / name))
    return folder


@contextlib.contextmanager
def served(folder: Path):
    """``zoo serve FOLDER --port 0``: its address while it runs; stopped after."""
    process = subprocess.Popen(
        [sys.executable, "-m", "zoo.cli.main", "serve", str(folder), "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=ctrl_c_as_from_a_terminal,
    )
    try:
        line = process.stdout.readline()
        assert " at http://127.0.0.1:" in line, line
        yield process, line.split(" at ")[1].split()[0]
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)


def drive(job: dict, on_offline=None) -> dict:
    """tests/web/drive.cjs on ``job``; ``on_offline()`` runs when it asks, before it cuts
    the network."""
    process = subprocess.Popen(
        ["node", str(DRIVER)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "NODE_PATH": str(WEB / "node_modules")},
    )
    try:
        process.stdin.write(json.dumps(job) + "\n")
        process.stdin.flush()
        line = process.stdout.readline()
        if line == "offline?\n":
            on_offline()
            process.stdin.write("go\n")
            process.stdin.flush()
            line = process.stdout.readline()
        process.stdin.close()
        assert process.wait(timeout=600) == 0, process.stderr.read()
    finally:
        process.kill()
        process.wait()
    result = json.loads(line)
    assert result["state"] == "ready", result["messages"]
    # the page fetches nothing but its own folder's files (index.html, app.js, contract.js,
    # export.json, LiteRT.js, its WebAssembly, the model, a vocabulary at least)
    assert result["foreign"] == [] and result["requests"] >= 8
    return result


def log_probability(client, source: str, translation: str) -> float:
    """log P(translation + <eos> | source) by the Python runtime on the export's file."""
    ids = {token: index for index, token in enumerate(client.target_tokens)}
    eos, bos = client.target_special["<eos>"], client.target_special["<bos>"]
    targets = [ids[word] for word in translation.split(" ") if word] + [eos]
    carried = {
        name: value
        for name, value in client.encode(**client.source(source)).items()
        if name in client.carried
    }
    token, total = bos, 0.0
    for target in targets:
        outputs = client.step(np.asarray([token], np.int32), carried)
        total += float(outputs.pop("log_probs")[0, target])
        carried.update(outputs)
        token = target
    return total


@pytest.mark.slow
def test_the_translator_page_translates_as_zoo_translate(web_exports, tmp_path):
    """25 sentences (README's, an unknown word, 22 test sources) at beams 1 and 4, typed
    into the page; the page's translations are zoo translate's on the same file, but for
    near-ties; an empty sentence is refused as the CLI refuses it."""
    folder = web_exports / TRANSLATOR
    sentences = ["i'm home .", "zzqx est là .", "Hi!  I'm COLD."] + fra_eng_test_sources(22)
    beams = [1 if index % 3 == 0 else 4 for index in range(len(sentences))]
    with served(folder) as (_, url):
        job = {
            "url": url,
            "userDataDir": str(tmp_path / "profile"),
            "screenshot": str(tmp_path / "translator-desktop.png"),
            "translate": [
                {"sentence": sentence, "beam": beam}
                for sentence, beam in zip([*sentences, "  ", "go ."], [*beams, 1, 9], strict=True)
            ],
        }
        result = drive(job)
    *found, empty, too_wide = result["translations"]
    assert empty["error"] == "empty sentence" and empty["output"] == ""
    assert too_wide["error"] == (
        "this export's decode_step takes at most 8 rows (its beam width); 9 asked"
    )
    assert found[0]["output"] == "je suis chez moi ."
    assert result["name"] == "seq2seq-attn-fra-eng"
    from zoo.pretrained.catalog import load_catalog

    bleu = load_catalog().get("seq2seq-attn-fra-eng").metrics["bleu"]  # what the page shows
    assert "model.tflite, 35.4 MB" in result["about"] and f"test bleu {bleu:.3f}" in result["about"]
    assert all("per sentence" in translation["timing"] for translation in found)
    expected = {}
    for beam in (1, 4):
        chosen = [sentence for sentence, b in zip(sentences, beams, strict=True) if b == beam]
        lines = zoo("translate", str(folder), "--beam", str(beam), stdin="\n".join(chosen) + "\n")
        expected.update(zip(chosen, lines.splitlines(), strict=True))
    client = load_client().Translator(str(folder))
    assert -5 < log_probability(client, sentences[0], found[0]["output"]) < 0
    for sentence, translation in zip(sentences, found, strict=True):
        if translation["output"] == expected[sentence]:
            continue
        page = log_probability(client, sentence, translation["output"])
        python = log_probability(client, sentence, expected[sentence])
        assert abs(page - python) < 0.01, (sentence, translation["output"], expected[sentence])
    assert (tmp_path / "translator-desktop.png").stat().st_size > 0


@pytest.mark.slow
def test_the_language_model_page_continues_as_zoo_generate(web_exports, tmp_path):
    """Greedy continuations, streamed token by token, character for character those of
    zoo generate --greedy on the same file; an unknown letter is <unk> in both; a prefix
    with nothing left after cleaning is refused."""
    folder = web_exports / LANGUAGE_MODEL
    prefixes = ["time traveller", "The Machine", "it was a café"]
    with served(folder) as (_, url):
        job = {
            "url": url,
            "userDataDir": str(tmp_path / "profile"),
            "screenshot": str(tmp_path / "language-model-desktop.png"),
            "generate": [{"prefix": prefix, "length": 50, "greedy": True} for prefix in prefixes]
            + [{"prefix": "1984", "length": 5, "greedy": True}],
        }
        result = drive(job)
    assert result["name"] == LANGUAGE_MODEL and "test perplexity 3.359" in result["about"]
    *found, refused = result["continuations"]
    assert refused["error"] == "nothing left of '1984' after cleaning"
    for prefix, continuation in zip(prefixes, found, strict=True):
        expected = zoo("generate", str(folder), "--prefix", prefix, "--greedy", "--length", "50")
        assert continuation["output"] == expected.removesuffix("\n")
        assert continuation["updates"] >= 50  # one change of the box per token at least
        assert "per token" in continuation["timing"]
    assert found[0]["output"].startswith("time traveller")
    assert found[2]["note"] == "the model never saw 'é' in the prefix; read as <unk>"
    assert found[0]["note"] == ""
    assert (tmp_path / "language-model-desktop.png").stat().st_size > 0


@pytest.mark.slow
def test_the_pages_work_on_a_phone_and_offline_after_the_first_visit(web_exports, tmp_path):
    """At 412 x 915 with touch: the language model's page generates; the translator's,
    its server stopped and the network cut after the first load, reloads from its
    service worker and translates "i'm home ." as zoo translate does."""
    with served(web_exports / LANGUAGE_MODEL) as (_, url):
        job = {
            "url": url,
            "userDataDir": str(tmp_path / "lm-profile"),
            "phone": True,
            "screenshot": str(tmp_path / "language-model-phone.png"),
            "generate": [{"prefix": "time traveller", "length": 30, "greedy": True}],
        }
        generated = drive(job)["continuations"][0]["output"]
    assert generated.startswith("time traveller ") and len(generated) > len("time traveller ")
    with served(web_exports / TRANSLATOR) as (server, url):

        def stop_server():
            server.send_signal(signal.SIGINT)
            server.wait(timeout=30)

        job = {
            "url": url,
            "userDataDir": str(tmp_path / "translator-profile"),
            "phone": True,
            "offline": True,
            "screenshot": str(tmp_path / "translator-phone.png"),
            "translate": [{"sentence": "i'm home .", "beam": 4}],
        }
        result = drive(job, on_offline=stop_server)
        assert server.poll() is not None  # nothing served the reload but the service worker
    assert result["offline"]
    assert result["translations"][0]["output"] == "je suis chez moi ."
    assert zoo("translate", TRANSLATOR, "i'm home .") == "je suis chez moi .\n"
    screenshot = tmp_path / "translator-phone.png"
    assert screenshot.stat().st_size > 0
    if os.environ.get("ZOO_WEB_SCREENSHOT"):
        shutil.copyfile(screenshot, os.environ["ZOO_WEB_SCREENSHOT"])


def refused(*args) -> str:
    """The one stderr line of a zoo command that must fail with exit code 2."""
    done = subprocess.run(
        [sys.executable, "-m", "zoo.cli.main", *args], capture_output=True, text=True
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("zoo: error: "), done.stderr
    return lines[0]


@pytest.mark.slow
def test_several_models_make_a_gallery_that_zoo_serve_serves(tmp_path):
    """A gallery of two models, made twice (the second replaces the first); a file of the
    user's in it, or in a web export, makes the next export refuse in one line."""
    require_browser()
    out = tmp_path / "gallery"
    for _ in range(2):  # the second replaces the first: zoo wrote all of it
        zoo(
            "export",
            "lm-gru-timemachine",
            LANGUAGE_MODEL,
            "--format",
            "web",
            "--no-measure",
            "--out",
            str(out),
        )
    document = json.loads((out / "gallery.json").read_text())
    assert [model["folder"] for model in document["models"]] == [
        "lm-gru-timemachine",
        LANGUAGE_MODEL,
    ]
    assert gallery.gallery_problem(out) is None
    with served(out) as (_, url), urllib.request.urlopen(url) as response:
        page = response.read().decode()
    assert 'href="lm-gru-timemachine/"' in page and f'href="{LANGUAGE_MODEL}/"' in page
    assert math.isfinite(document["models"][1]["metrics"]["test perplexity"])

    (out / "notes.txt").write_text("mine")
    line = refused(
        "export", "lm-gru-timemachine", LANGUAGE_MODEL, "--format", "web", "--out", str(out)
    )
    assert "is not a zoo gallery (notes.txt is not listed in its gallery.json)" in line
    model = out / "lm-gru-timemachine"
    (model / "notes.txt").write_text("mine")
    line = refused("export", "lm-gru-timemachine", "--format", "web", "--out", str(model))
    assert "is not a zoo export (notes.txt is not listed in its export.json)" in line
    assert (out / "notes.txt").read_text() == (model / "notes.txt").read_text() == "mine"
