"""`zoo models pull`: remote artifacts from an HTTP server on 127.0.0.1 into the cache,
checked; interrupted downloads, hostile archives and offline mode leave nothing.

No TensorFlow: the files are fetched and checked, never loaded.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml
from click.testing import CliRunner

from zoo.cli.main import cli
from zoo.pretrained import artifacts
from zoo.pretrained.catalog import CatalogError, load_catalog
from zoo.pretrained.resolver import pull, resolve_model

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
    length and closes the connection half way. Counts the requests it answers."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.truncated: set[str] = set()
        self.requests: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            timeout = 10

            def do_GET(self):  # noqa: N802 (http.server's name)
                outer.requests.append(self.path)
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
                self.wfile.write(data)

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


def publish(server, home, files=FILES, extra=None, name="remote-lm"):
    """Serves ``files`` and writes the user's registry entry pointing at them."""
    entries = {}
    for path, data in {**files, **(extra or {})}.items():
        served = "/" + (path.rstrip("/") + ".tar.gz" if path.endswith("/") else path)
        server.files[served] = data
        entries[path] = {
            "uri": server.url(served),
            "sha256": hashlib.sha256(data).hexdigest(),
            "size": len(data),
        }
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
    return sorted(
        path.name for path in folder.rglob("*") if path.name.startswith(".") or "part" in path.name
    )


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
    ],
    ids=["tar-dotdot", "tar-absolute", "tar-link", "zip-dotdot"],
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
