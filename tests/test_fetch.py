"""Weights by Hub id and by download link, tested with no internet: a Hub cache in huggingface_hub's snapshot
layout, a stand-in Hub on 127.0.0.1 (HF_ENDPOINT) that serves a transformers-written folder or answers as a gated
repo would, and a download server on 127.0.0.1 that drops connections, ignores ranges and serves wrong files."""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch

from edgedino import create_model, save_backbone
from edgedino.errors import CheckpointError
from edgedino.fetch import url as download

transformers = pytest.importorskip("transformers", reason="transformers writes the Hub folder (pip install -e .[dev])")

REPO = "facebook/dinov3-vits16-pretrain-lvd1689m"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
TINY_VIT = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128,
                num_register_tokens=4, use_gated_mlp=False)


def cli(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgedino", *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **env})


def one_line_error(r: subprocess.CompletedProcess, text: str) -> None:
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr and text in r.stderr, r.stderr
    assert len([line for line in r.stderr.splitlines() if line.startswith("edgedino")]) == 1, r.stderr


@pytest.fixture(scope="module")
def hf_folder(tmp_path_factory) -> Path:
    """A DINOv3 ViT folder written by transformers' own save_pretrained (config.json + model.safetensors)."""
    folder = tmp_path_factory.mktemp("hf") / "model"
    torch.manual_seed(0)
    transformers.DINOv3ViTModel(transformers.DINOv3ViTConfig(**TINY_VIT)).save_pretrained(folder)
    return folder


def test_hub_id_from_a_cache_built_in_the_snapshot_layout(hf_folder, tmp_path):
    snapshot = tmp_path / "hub" / f"models--{REPO.replace('/', '--')}" / "snapshots" / COMMIT
    snapshot.mkdir(parents=True)
    for f in hf_folder.iterdir():
        (snapshot / f.name).write_bytes(f.read_bytes())
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text(COMMIT)
    env = {"HF_HOME": str(tmp_path), "HF_HUB_OFFLINE": "1"}
    for spec in (REPO, f"{REPO}@{COMMIT}"):
        r = cli("info", "--weights", spec, env=env)
        assert r.returncode == 0, r.stderr
        assert f"weights              {spec} (hf layout)" in r.stdout and str(snapshot) in r.stdout
    one_line_error(cli("info", "--weights", f"{REPO}@v9", env=env), "HF_HUB_OFFLINE is set")
    one_line_error(cli("info", "--weights", "facebook/dinov3-vitb16-pretrain-lvd1689m", env=env),
                   "is not in the Hub cache")


class FakeHub(http.server.BaseHTTPRequestHandler):
    """Enough of the Hub's HTTP API for huggingface_hub's snapshot_download: one repo served from `folder`,
    "facebook/gated" answering as a gated repo does (401 without a token, 403 with one that has no access)."""

    folder: Path
    seen: list

    def log_message(self, *args) -> None:
        self.seen.append((self.command, self.path, self.headers.get("Authorization")))

    def send(self, code: int, body: bytes = b"", headers: dict | None = None) -> None:
        self.send_response(code)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        repo = "/".join(path.removeprefix("/api/models/").split("/")[:2]) if path.startswith("/api/") else \
            "/".join(path.strip("/").split("/")[:2])
        files = {f.name: f.read_bytes() for f in self.folder.iterdir()}
        if repo not in (REPO, "facebook/gated"):
            return self.send(404, b'{"error": "Repository not found"}', {"X-Error-Code": "RepoNotFound"})
        if path.startswith("/api/") and "/tree/" in path:
            tree = [{"type": "file", "path": n, "size": len(b), "oid": hashlib.sha1(b).hexdigest()}
                    for n, b in files.items()]
            return self.send(200, json.dumps(tree).encode(), {"Content-Type": "application/json"})
        if path.startswith("/api/"):
            info = {"id": repo, "sha": COMMIT, "siblings": [{"rfilename": n} for n in files]}
            return self.send(200, json.dumps(info).encode(), {"Content-Type": "application/json"})
        if repo == "facebook/gated":
            token = self.headers.get("Authorization")
            return self.send(403 if token else 401, b"gated", {"X-Error-Code": "GatedRepo"})
        body = files[path.rsplit("/", 1)[1]]
        self.send(200, body, {"X-Repo-Commit": COMMIT, "ETag": f'"{hashlib.sha256(body).hexdigest()}"'})


@pytest.fixture(scope="module")
def fake_hub(hf_folder):
    handler = type("Handler", (FakeHub,), {"folder": hf_folder, "seen": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}", handler.seen
    server.shutdown()


def test_hub_download_then_offline_from_its_cache(fake_hub, tmp_path):
    endpoint, seen = fake_hub
    env = {"HF_ENDPOINT": endpoint, "HF_HOME": str(tmp_path), "HF_HUB_DISABLE_XET": "1", "HF_TOKEN": "hf_ok"}
    r = cli("info", "--weights", REPO, env=env)
    assert r.returncode == 0 and "vit" in r.stdout, r.stderr
    assert any(auth == "Bearer hf_ok" for *_, auth in seen)  # HF_TOKEN is what the Hub is sent
    assert (tmp_path / "hub" / f"models--{REPO.replace('/', '--')}" / "snapshots" / COMMIT / "config.json").exists()
    seen.clear()
    r = cli("info", "--weights", REPO, env={**env, "HF_HUB_OFFLINE": "1", "HF_ENDPOINT": "http://127.0.0.1:9"})
    assert r.returncode == 0 and not seen, r.stderr


def test_hub_failures_are_one_line(fake_hub, tmp_path):
    endpoint, _ = fake_hub
    env = {"HF_ENDPOINT": endpoint, "HF_HOME": str(tmp_path), "HF_HUB_DISABLE_XET": "1", "HF_TOKEN": ""}
    one_line_error(cli("info", "--weights", "facebook/gated", env=env), "gated repo (HTTP 401): accept the DINOv3 "
                   "license")
    one_line_error(cli("info", "--weights", "facebook/gated", env={**env, "HF_TOKEN": "hf_no_access"}),
                   "gated repo (HTTP 403): your token has no access yet")
    one_line_error(cli("info", "--weights", "facebook/no-such-model", env=env), "no Hugging Face Hub repo")
    one_line_error(cli("info", "--weights", REPO, env={**env, "HF_ENDPOINT": "http://127.0.0.1:9"}),
                   "the Hub cannot be reached")
    one_line_error(cli("info", "--weights", "runs/no/backbone.pth", env=env), "weights not found: runs/no/backbone")


class Downloads(http.server.BaseHTTPRequestHandler):
    """Serves `files` by name; /drop/ closes the first connection half-way, /norange/ ignores Range, /page/ is
    HTML, /expired/ is 403."""

    files: dict
    seen: list
    dropped: set

    def log_message(self, *args) -> None:
        self.seen.append((self.path, self.headers.get("Range")))

    def do_GET(self) -> None:
        kind, name = self.path.split("?")[0].strip("/").split("/", 1)
        if kind == "expired":
            return self.send_error(403)
        if name not in self.files:
            return self.send_error(404)
        body, start = self.files[name], 0
        if kind == "page":
            body = b"<!DOCTYPE html><html><body>Sign in to download</body></html>"
        rng = self.headers.get("Range")
        if rng and kind != "norange":
            start = int(rng.split("=")[1].rstrip("-"))
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body) - start))
        self.send_header("Content-Type", "text/html" if kind == "page" else "application/octet-stream")
        self.end_headers()
        if kind == "drop" and name not in self.dropped:
            self.dropped.add(name)
            self.wfile.write(body[start:start + len(body) // 2])
            self.wfile.flush()
            self.connection.shutdown(2)
            return
        self.wfile.write(body[start:])


@pytest.fixture
def server(tmp_path):
    """(base URL, files it serves, requests seen): a release-named ViT file with the right hash prefix, one with
    a wrong prefix, and one with no prefix."""
    net = create_model("vit_test").reset_parameters(seed=1)
    raw = save_backbone(net, tmp_path / "w.pth", "official").read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    files = {f"dinov3_vit_test_pretrain_x-{digest[:8]}.pth": raw,
             f"dinov3_vit_test_pretrain_x-{'0' * 8 if digest[:8] != '0' * 8 else '1' * 8}.pth": raw,
             "plain.pth": raw}
    handler = type("Handler", (Downloads,), {"files": files, "seen": [], "dropped": set()})
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_port}", files, handler.seen
    srv.shutdown()


def test_link_downloads_once_into_the_torch_hub_cache(server, tmp_path, monkeypatch):
    base, files, seen = server
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    name = next(iter(files))
    path = download.download(f"{base}/ok/{name}?Policy=abc&Signature=xyz")
    assert path == tmp_path / "torch" / "hub" / "checkpoints" / name and path.read_bytes() == files[name]
    assert download.download(f"{base}/ok/{name}") == path and len(seen) == 1  # cached: no second request
    env = {"TORCH_HOME": str(tmp_path / "torch")}
    r = cli("info", "--weights", f"{base}/ok/{name}", env=env)
    assert r.returncode == 0 and f"local copy           {path}" in r.stdout and "SHA-256 starts with" in r.stdout


def test_dropped_connection_is_resumed_with_a_range_request(server, tmp_path):
    base, files, seen = server
    name = next(iter(files))
    path = download.download(f"{base}/drop/{name}", cache=tmp_path)
    assert path.read_bytes() == files[name]
    assert [r for _, r in seen] == [None, f"bytes={len(files[name]) // 2}-"]
    assert not list(tmp_path.glob("*.partial"))


def test_partial_file_of_an_interrupted_run_is_resumed(server, tmp_path):
    base, files, seen = server
    name = next(iter(files))
    (tmp_path / f"{name}.partial").write_bytes(files[name][:1000])
    assert download.download(f"{base}/ok/{name}", cache=tmp_path).read_bytes() == files[name]
    assert seen[0][1] == "bytes=1000-"
    (tmp_path / name).unlink()
    (tmp_path / f"{name}.partial").write_bytes(files[name][:1000])  # a server that ignores ranges: start over
    assert download.download(f"{base}/norange/{name}", cache=tmp_path).read_bytes() == files[name]


def test_bad_downloads_leave_nothing_in_the_cache(server, tmp_path):
    base, files, _ = server
    wrong, cache = list(files)[1], tmp_path / "cache"
    with pytest.raises(CheckpointError, match="incomplete or not the released one"):
        download.download(f"{base}/ok/{wrong}", cache=cache)
    with pytest.raises(CheckpointError, match="web page, not a weights file"):
        download.download(f"{base}/page/plain.pth", cache=cache)
    with pytest.raises(CheckpointError, match="HTTP 404"):
        download.download(f"{base}/ok/missing.pth", cache=cache)
    with pytest.raises(CheckpointError, match="Meta's download links expire"):
        download.download(f"{base}/expired/plain.pth", cache=cache)
    with pytest.raises(CheckpointError, match="does not name a weights file"):
        download.download(f"{base}/ok/", cache=cache)
    assert list(cache.iterdir()) == []
    r = cli("export", "--target", "onnx", "--weights", f"{base}/ok/{wrong}", "--out", str(tmp_path / "out"),
            env={"TORCH_HOME": str(tmp_path / "torch")})
    one_line_error(r, "incomplete or not the released one")
    assert not (tmp_path / "out").exists()
    assert not list((tmp_path / "torch" / "hub" / "checkpoints").iterdir())
