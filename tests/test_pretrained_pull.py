"""`zoo models pull`: remote artifacts from an HTTP server on 127.0.0.1 into the cache,
checked; interrupted, trickling and silent downloads, hostile and oversized archives,
concurrent and killed pulls and offline mode end in one line and leave nothing.

No TensorFlow: the files are fetched and checked, never loaded. The download limits
are set low (``fast_limits``) so that the slow servers fail in about a second.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml
from click.testing import CliRunner

from zoo.cli.main import cli
from zoo.pretrained import artifacts
from zoo.pretrained.catalog import CatalogError, load_catalog
from zoo.pretrained.resolver import pull, resolve_model, verify_models

FILES = {
    "model.keras": b"not really a keras file, only bytes to fetch" * 100,
    "recipe.yaml": b"name: remote\n",
    "vocab.txt": b"<unk>\na\nb\n",
}


def tar_gz(members: dict[str, bytes], link: str | None = None) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as bundle:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            bundle.addfile(info, io.BytesIO(data))
        if link:
            info = tarfile.TarInfo(link)
            info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
            bundle.addfile(info)
    return buffer.getvalue()


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        for name, data in members.items():
            bundle.writestr(name, data)
    return buffer.getvalue()


class Server:
    """Serves ``files`` (path → bytes); a path in ``truncated`` announces its full
    length and closes the connection half way; one in ``trickled`` sends a byte every
    ``TRICKLE_SECONDS`` for as long as the client reads; one in ``delayed`` waits that
    many seconds before answering. Counts the requests it answers."""

    TRICKLE_SECONDS = 0.05

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.truncated: set[str] = set()
        self.trickled: set[str] = set()
        self.delayed: dict[str, float] = {}
        self.requests: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            timeout = 30

            def do_GET(self):  # noqa: N802 (http.server's name)
                outer.requests.append(self.path)
                time.sleep(outer.delayed.get(self.path, 0))
                data = outer.files.get(self.path)
                if data is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.path in outer.truncated:
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                try:
                    if self.path not in outer.trickled:
                        self.wfile.write(data)
                        return
                    for byte in data:
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                        time.sleep(outer.TRICKLE_SECONDS)
                except OSError:  # the client gave up
                    self.close_connection = True

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"


@pytest.fixture
def server():
    running = Server()
    running.thread.start()
    yield running
    running.httpd.shutdown()
    running.httpd.server_close()
    running.thread.join(timeout=10)


@pytest.fixture
def home(tmp_path, monkeypatch):
    """An empty shipped catalog, a user registry file and a cache, all under tmp_path."""
    monkeypatch.setenv("ZOO_SHIPPED_REGISTRY", str(tmp_path / "shipped.yaml"))
    monkeypatch.setenv("ZOO_SAVED_MODELS", str(tmp_path / "saved_models"))
    monkeypatch.setenv("ZOO_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ZOO_REGISTRY", str(tmp_path / "mine.yaml"))
    monkeypatch.setenv("ZOO_OFFLINE", "")
    return tmp_path


@pytest.fixture
def fast_limits(monkeypatch):
    """Downloads that may wait half a second and must reach 1,000 bytes a second."""
    monkeypatch.setenv("ZOO_DOWNLOAD_TIMEOUT", "0.5")
    monkeypatch.setenv("ZOO_DOWNLOAD_MIN_RATE", "1000")


def publish(server, home, files=FILES, extra=None, name="remote-lm", unpacked=None):
    """Serves ``files`` and writes the user's registry entry pointing at them;
    ``unpacked``: folder artifact path → its declared unpacked_size."""
    entries = {}
    for path, data in {**files, **(extra or {})}.items():
        served = "/" + (path.rstrip("/") + ".tar.gz" if path.endswith("/") else path)
        server.files[served] = data
        entries[path] = {
            "uri": server.url(served),
            "sha256": hashlib.sha256(data).hexdigest(),
            "size": len(data),
        }
        if path in (unpacked or {}):
            entries[path]["unpacked_size"] = unpacked[path]
    model = {
        "task": "language_model",
        "description": "served over HTTP",
        "recipe": {"name": "lm-gru", "sha256": "0" * 64},
        "licenses": {"data": "public domain", "model": "Apache-2.0"},
        "metrics": {"perplexity": 9.5},
        "artifacts": entries,
    }
    (home / "mine.yaml").write_text(yaml.safe_dump({"models": {name: model}}))
    return home / "home" / "models" / name


def leftovers(folder):
    """What a pull left in the cache beside the model's own files and its lock."""
    return sorted(
        path.name
        for path in folder.parent.rglob("*")
        if (path.name.startswith(".") or "part" in path.name) and not path.name.endswith(".lock")
    )


def pull_line():
    """`zoo models pull remote-lm` through the CLI: (exit code, its one stderr line)."""
    result = CliRunner().invoke(cli, ["models", "pull", "remote-lm"])
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    return result.exit_code, lines[0]


def test_pull_fetches_and_checks_every_file_into_the_cache(server, home):
    folder = publish(
        server, home, extra={"export/saved_model/": tar_gz({"a.pb": b"pb", "v/x": b"1"})}
    )
    result = CliRunner().invoke(cli, ["models", "pull", "remote-lm"])
    assert result.exit_code == 0, result.output
    for path, data in FILES.items():
        assert (folder / path).read_bytes() == data
    assert (folder / "export" / "saved_model" / "v" / "x").read_bytes() == b"1"
    assert resolve_model("remote-lm").path == folder
    # a second pull and a load fetch nothing: the cache is checked, not trusted blindly
    count = len(server.requests)
    assert pull("remote-lm") == []
    assert len(server.requests) == count
    assert leftovers(folder) == [".zoo-unpacked.json"]


def test_a_cached_file_that_changed_is_refused_on_load(server, home):
    folder = publish(server, home)
    pull("remote-lm")
    (folder / "vocab.txt").write_bytes(b"<unk>\nz\nb\n")  # same size, other bytes
    artifacts._hash_cache.clear()
    result = CliRunner().invoke(cli, ["models", "verify", "remote-lm"])
    assert result.exit_code == 1
    (line,) = result.output.strip().splitlines()
    assert "vocab.txt: sha256 " in line and hashlib.sha256(FILES["vocab.txt"]).hexdigest() in line


def test_a_wrong_checksum_keeps_nothing(server, home):
    folder = publish(server, home)
    server.files["/model.keras"] = b"X" * len(FILES["model.keras"])  # same size, other bytes
    with pytest.raises(
        CatalogError, match=r"model.keras: .* has sha256 [0-9a-f]{64}, the registry"
    ):
        pull("remote-lm")
    assert not (folder / "model.keras").exists()
    assert leftovers(folder) == []


def test_an_interrupted_download_leaves_nothing(server, home):
    folder = publish(server, home)
    server.truncated.add("/model.keras")
    with pytest.raises(CatalogError, match="model.keras: .*nothing kept"):
        pull("remote-lm")
    assert not (folder / "model.keras").exists()
    assert leftovers(folder) == []


def test_offline_mode_fails_at_once_naming_the_missing_artifact(server, home, monkeypatch):
    folder = publish(server, home)
    monkeypatch.setenv("ZOO_OFFLINE", "1")
    result = CliRunner().invoke(cli, ["models", "pull", "remote-lm"])
    assert result.exit_code == 2
    assert "remote-lm: " in result.output and "ZOO_OFFLINE=1" in result.output
    assert str(folder) in result.output
    assert server.requests == []


@pytest.mark.parametrize(
    ("archive", "reason"),
    [
        (tar_gz({"../evil.txt": b"x"}), "leaves its folder"),
        (tar_gz({"/tmp/evil.txt": b"x"}), "leaves its folder"),
        (tar_gz({"ok.txt": b"x"}, link="link"), "is a link"),
        (zip_bytes({"../../evil.txt": b"x"}), "leaves its folder"),
        (tar_gz({"a" * 300: b"x"}), "is not a file name"),
    ],
    ids=["tar-dotdot", "tar-absolute", "tar-link", "zip-dotdot", "tar-long-name"],
)
def test_hostile_archives_are_refused_and_leave_nothing(server, home, archive, reason):
    folder = publish(server, home, extra={"export/saved_model/": archive})
    if archive.startswith(b"PK"):  # a zip: serve it under a .zip name
        entry = yaml.safe_load((home / "mine.yaml").read_text())
        spec = entry["models"]["remote-lm"]["artifacts"]["export/saved_model/"]
        spec["uri"] = spec["uri"].replace(".tar.gz", ".zip")
        server.files["/export/saved_model.zip"] = archive
        (home / "mine.yaml").write_text(yaml.safe_dump(entry))
    with pytest.raises(CatalogError, match=reason):
        pull("remote-lm")
    assert not (folder / "export" / "saved_model").exists()
    assert not (home / "home" / "models" / "evil.txt").exists()
    assert not list(home.rglob("evil.txt"))
    assert [name for name in leftovers(folder) if "unpack" in name or "tar" in name] == []


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("../elsewhere/model.keras", "not a relative path inside the model folder"),
        ("/etc/model.keras", "not a relative path inside the model folder"),
        ("other-model/model.keras", "a relative uri is 'mine/model.keras'"),
    ],
)
def test_an_entry_pointing_outside_its_root_is_refused(home, uri, message):
    entry = {
        "task": "autoregressive",
        "recipe": {"name": "ar-mlp-sine", "sha256": "0" * 64},
        "licenses": {"data": "synthetic", "model": "Apache-2.0"},
        "artifacts": {
            "model.keras": {"uri": uri, "sha256": "0" * 64, "size": 1},
            "recipe.yaml": {"uri": "mine/recipe.yaml", "sha256": "0" * 64, "size": 1},
        },
    }
    (home / "mine.yaml").write_text(yaml.safe_dump({"models": {"mine": entry}}))
    with pytest.raises(CatalogError, match=message) as raised:
        load_catalog()
    assert "models.mine.artifacts.model.keras" in str(raised.value)
    assert "\n" not in str(raised.value)


def test_a_local_file_linked_outside_its_root_is_refused(home, tmp_path):
    root = home / "user-models"
    (root / "mine").mkdir(parents=True)
    outside = tmp_path / "outside.keras"
    outside.write_bytes(b"x")
    (root / "mine" / "model.keras").symlink_to(outside)
    (root / "mine" / "recipe.yaml").write_bytes(b"x")
    digest = hashlib.sha256(b"x").hexdigest()
    entry = {
        "task": "autoregressive",
        "recipe": {"name": "ar-mlp-sine", "sha256": "0" * 64},
        "licenses": {"data": "synthetic", "model": "Apache-2.0"},
        "artifacts": {
            name: {"uri": f"mine/{name}", "sha256": digest, "size": 1}
            for name in ("model.keras", "recipe.yaml")
        },
    }
    (root / "registry.yaml").write_text(yaml.safe_dump({"models": {"mine": entry}}))
    result = CliRunner().invoke(
        cli, ["--registry", str(root / "registry.yaml"), "models", "verify"]
    )
    assert result.exit_code == 2
    assert "mine: model.keras" in result.output and "leaves" in result.output


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"task": "poetry"}, "models.bad.task: expected one of"),
        ({"licenses": {"data": "x"}}, "models.bad.licenses.model: missing"),
        ({"metrics": {"bleu": "high"}}, "models.bad.metrics.bleu: expected a number"),
        ({"colour": "red"}, "models.bad.colour: unknown field"),
        ({"artifacts": {}}, "models.bad.artifacts.model.keras: missing"),
    ],
)
def test_schema_errors_are_one_line_naming_the_field(home, change, message):
    entry = {
        "task": "autoregressive",
        "recipe": {"name": "ar-mlp-sine", "sha256": "0" * 64},
        "licenses": {"data": "synthetic", "model": "Apache-2.0"},
        "artifacts": {
            name: {"uri": f"bad/{name}", "sha256": "0" * 64, "size": 1}
            for name in ("model.keras", "recipe.yaml")
        },
        **change,
    }
    (home / "mine.yaml").write_text(yaml.safe_dump({"models": {"bad": entry}}))
    result = CliRunner().invoke(cli, ["models", "list"])
    assert result.exit_code == 2
    (line,) = result.output.strip().splitlines()
    assert message in line and line.startswith("zoo: error: ")


# ----------------------------------------------------------------------------- slow servers


def test_a_trickling_server_fails_the_minimum_rate_in_one_line(server, home, fast_limits):
    folder = publish(server, home)
    server.trickled.add("/model.keras")  # 4,400 bytes at 20 a second: 220 s
    code, line = pull_line()
    assert code == 1  # the network's doing, not the input's
    assert "model.keras: " in line and "slower than ZOO_DOWNLOAD_MIN_RATE=1000" in line
    assert "nothing kept" in line
    assert not (folder / "model.keras").exists()
    assert leftovers(folder) == []


def test_a_server_that_answers_nothing_fails_the_timeout_in_one_line(server, home, fast_limits):
    folder = publish(server, home)
    server.delayed["/model.keras"] = 5
    code, line = pull_line()
    assert code == 1 and "sent nothing for 0.5 s (ZOO_DOWNLOAD_TIMEOUT)" in line
    assert leftovers(folder) == []


def test_a_dropped_connection_is_one_line_and_leaves_nothing(server, home, fast_limits):
    folder = publish(server, home)
    server.truncated.add("/model.keras")
    code, line = pull_line()
    assert code == 1 and "gave 2200 bytes, the registry says 4400" in line
    assert not (folder / "model.keras").exists()
    assert leftovers(folder) == []


@pytest.mark.parametrize("setting", ["ZOO_DOWNLOAD_TIMEOUT", "ZOO_DOWNLOAD_MIN_RATE"])
@pytest.mark.parametrize("value", ["abc", "0", "-1", "nan", "inf"])
def test_a_bad_download_limit_is_one_line_before_any_connection(
    server, home, monkeypatch, setting, value
):
    publish(server, home)
    monkeypatch.setenv(setting, value)
    code, line = pull_line()
    assert code == 2 and f"{setting}: expected a positive number" in line
    assert server.requests == []


def test_a_file_uri_to_a_fifo_is_refused_without_waiting(home, tmp_path):
    fifo = tmp_path / "model.fifo"
    os.mkfifo(fifo)
    model = {
        "task": "autoregressive",
        "recipe": {"name": "ar-mlp-sine", "sha256": "0" * 64},
        "licenses": {"data": "synthetic", "model": "Apache-2.0"},
        "artifacts": {
            name: {"uri": fifo.as_uri(), "sha256": "0" * 64, "size": 10}
            for name in ("model.keras", "recipe.yaml")
        },
    }
    (home / "mine.yaml").write_text(yaml.safe_dump({"models": {"remote-lm": model}}))
    code, line = pull_line()
    assert code == 2 and f"{fifo.as_uri()} is not a regular file; refused" in line


# ----------------------------------------------------------------------------- archives


def test_an_archive_that_unpacks_past_its_declared_size_is_refused_while_unpacking(server, home):
    members = {"variables/a.bin": bytes(3000), "variables/b.bin": bytes(3000)}
    folder = publish(
        server,
        home,
        extra={"export/saved_model/": tar_gz(members)},
        unpacked={"export/saved_model/": 5000},
    )
    code, line = pull_line()
    assert code == 2
    assert "unpacks to more than 5,000 bytes, the registry's unpacked_size" in line
    assert not (folder / "export").exists()
    assert leftovers(folder) == []


def test_an_archive_without_a_declared_size_is_bounded_by_its_own_size(server, home):
    bomb = tar_gz({"zeros.bin": bytes(5_000_000)})  # 5 MB of zeros in about 5 KB
    folder = publish(server, home, extra={"export/saved_model/": bomb})
    code, line = pull_line()
    assert code == 2
    assert f"unpacks to more than {20 * len(bomb):,} bytes, 20 times its size" in line
    assert not (folder / "export").exists()
    assert leftovers(folder) == []


def test_an_archive_of_its_declared_size_unpacks_and_a_smaller_one_is_refused(server, home):
    members = {"a.pb": b"x" * 100, "variables/v.bin": b"y" * 50}
    publish(
        server,
        home,
        extra={"export/saved_model/": tar_gz(members)},
        unpacked={"export/saved_model/": 150},
    )
    assert "export/saved_model/" in pull("remote-lm")
    assert (
        json.loads(CliRunner().invoke(cli, ["models", "info", "remote-lm", "--json"]).output)[
            "artifacts"
        ]["export/saved_model/"]["unpacked_size"]
        == 150
    )
    publish(
        server,
        home,
        extra={"export/saved_model/": tar_gz(members)},
        unpacked={"export/saved_model/": 151},
    )
    with pytest.raises(CatalogError, match="unpacks to 150 bytes, the registry's unpacked_size"):
        pull("remote-lm")


@pytest.mark.parametrize(
    "members",
    [
        {"a": b"file", "a/b": b"under a file"},
        {"a/b": b"in a folder", "a": b"a file over the folder"},
    ],
    ids=["file-then-folder", "folder-then-file"],
)
def test_archive_members_that_collide_are_one_line(server, home, members):
    folder = publish(server, home, extra={"export/saved_model/": tar_gz(members)})
    code, line = pull_line()
    assert code == 2 and "archive members collide: 'a' is both a file and a folder" in line
    assert not (folder / "export").exists()
    assert leftovers(folder) == []


def test_a_zip_member_twice_is_one_line(server, home):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        bundle.writestr("a.pb", b"1")
        with pytest.warns(UserWarning, match="Duplicate name"):
            bundle.writestr("a.pb", b"2")
    publish(server, home, extra={"export/saved_model/": buffer.getvalue()})
    entry = yaml.safe_load((home / "mine.yaml").read_text())
    spec = entry["models"]["remote-lm"]["artifacts"]["export/saved_model/"]
    spec["uri"] = spec["uri"].replace(".tar.gz", ".zip")
    server.files["/export/saved_model.zip"] = buffer.getvalue()
    (home / "mine.yaml").write_text(yaml.safe_dump(entry))
    code, line = pull_line()
    assert code == 2 and "archive member 'a.pb' appears twice" in line


def test_unpacked_size_belongs_to_folder_artifacts_only(server, home):
    publish(server, home, unpacked={"vocab.txt": 10})
    with pytest.raises(CatalogError, match=r"vocab.txt.unpacked_size: only a folder artifact"):
        load_catalog()


# ----------------------------------------------------------------------------- two processes


def zoo_process(*args):
    return subprocess.Popen(
        [sys.executable, "-m", "zoo.cli.main", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_two_pulls_of_one_model_at_once_fetch_each_file_once(server, home):
    folder = publish(server, home)
    server.delayed["/model.keras"] = 1  # the first pull holds the lock a while
    first, second = (
        zoo_process("models", "pull", "remote-lm"),
        zoo_process("models", "pull", "remote-lm"),
    )
    outputs = [process.communicate(timeout=120) for process in (first, second)]
    assert [process.returncode for process in (first, second)] == [0, 0], outputs
    assert all(stderr == "" for _, stderr in outputs), outputs
    said = sorted(stdout.strip() for stdout, _ in outputs)
    assert said == [
        "remote-lm: 0 file(s) fetched, all verified",
        "remote-lm: 3 file(s) fetched, all verified",
    ]
    assert sorted(server.requests) == sorted(f"/{name}" for name in FILES)
    assert verify_models("remote-lm") == []
    assert leftovers(folder) == []


def test_a_pull_waits_for_another_at_most_as_long_as_that_one_may_take(server, home, monkeypatch):
    publish(server, home)
    monkeypatch.setenv("ZOO_DOWNLOAD_TIMEOUT", "0.1")
    monkeypatch.setenv("ZOO_DOWNLOAD_MIN_RATE", "1000000")
    (home / "home" / "models").mkdir(parents=True)
    with open(home / "home" / "models" / ".remote-lm.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        code, line = pull_line()
    assert code == 1 and "another zoo process has been pulling it" in line
    assert server.requests == []


def test_a_killed_pull_is_reported_by_verify_and_cleaned_by_the_next_pull(server, home):
    folder = publish(server, home)
    server.trickled.add("/model.keras")
    staging = home / "home" / "models" / ".remote-lm.pull"
    killed = zoo_process("models", "pull", "remote-lm")
    deadline = time.monotonic() + 60
    while not list(staging.glob("*.part")) and time.monotonic() < deadline:
        time.sleep(0.05)
    killed.send_signal(signal.SIGKILL)
    killed.communicate(timeout=60)
    assert list(staging.glob("model.keras.*.part"))  # what kill -9 leaves
    stray = folder / ".vocab.txt.x1y2.part"  # as an older zoo left them: zoo's by name only
    folder.mkdir()
    stray.write_bytes(b"partial")

    found = verify_models("remote-lm")
    assert f"an interrupted pull left {staging}" in " ".join(found)
    assert any(".vocab.txt.x1y2.part: not in the registry" in line for line in found)

    server.trickled.clear()
    assert sorted(pull("remote-lm")) == sorted(FILES)
    assert not staging.exists()
    assert stray.read_bytes() == b"partial"  # reported, never removed
    assert verify_models("remote-lm") == [
        f"remote-lm: .vocab.txt.x1y2.part: not in the registry ({stray}); "
        "zoo neither uses nor removes it"
    ]


def test_a_folder_in_the_pulls_place_that_zoo_did_not_make_is_left_alone(server, home):
    publish(server, home)
    staging = home / "home" / "models" / ".remote-lm.pull"
    staging.mkdir(parents=True)
    (staging / "notes.txt").write_text("mine")
    code, line = pull_line()
    assert code == 2 and f"{staging}: in the way of `zoo models pull remote-lm`" in line
    assert (staging / "notes.txt").read_text() == "mine"
    assert server.requests == []
    assert "is not a folder of zoo's" in " ".join(verify_models("remote-lm"))
