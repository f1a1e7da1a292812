"""Outputs appear whole or not at all, and nothing the user had is destroyed: edgedino.atomic, and re-exports
watched by readers in other processes (an OpenVINO .xml/.bin pair, a Core ML package folder)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from edgedino.atomic import atomic_path, check_output, exchange, remove_stale_staging, staging
from edgedino.errors import EdgeDinoError

POLLER = Path(__file__).with_name("publish_poller.py")


def test_a_file_is_never_written_over_a_folder(tmp_path):
    (tmp_path / "victim").mkdir()
    (tmp_path / "victim" / "a.txt").write_text("precious")
    with pytest.raises(EdgeDinoError, match="is a folder: give a file name"):
        with atomic_path(tmp_path / "victim") as tmp:
            tmp.write_text("{}")
    assert (tmp_path / "victim" / "a.txt").read_text() == "precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["victim"], "no staging folder left"


def test_a_folder_is_replaced_only_when_ours(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "theirs.txt").write_text("theirs")
    with pytest.raises(EdgeDinoError, match="not written by edgedino"):
        with atomic_path(tmp_path / "pkg", is_dir=True, ours=lambda p: (p / "ours.txt").exists()):
            pass
    assert (tmp_path / "pkg" / "theirs.txt").exists()
    with pytest.raises(EdgeDinoError, match="is not a folder"):
        check_output(tmp_path / "pkg" / "theirs.txt", is_dir=True)
    with pytest.raises(EdgeDinoError, match="also an input"):
        check_output(tmp_path / "pkg" / "theirs.txt", inputs=[None, str(tmp_path / "pkg" / "theirs.txt")])


def test_replacing_our_folder_leaves_no_moment_without_it(tmp_path):
    """A reader polling the folder while it is replaced 200 times always finds it whole (atomic exchange)."""
    target = tmp_path / "pkg"
    ours = lambda p: (p / "ours.txt").exists()  # noqa: E731
    with atomic_path(target, is_dir=True, ours=ours) as tmp:
        (tmp / "ours.txt").write_text("0")
    seen, stop = [], threading.Event()

    def poll():
        while not stop.is_set():
            try:
                seen.append((target / "ours.txt").read_text())
            except FileNotFoundError:
                seen.append(None)

    reader = threading.Thread(target=poll)
    reader.start()
    for i in range(1, 201):
        with atomic_path(target, is_dir=True, ours=ours) as tmp:
            (tmp / "ours.txt").write_text(str(i))
    stop.set()
    reader.join()
    assert len(seen) > 200 and None not in seen and "" not in seen
    assert (target / "ours.txt").read_text() == "200"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pkg"]


def test_exchange_swaps_two_folders(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "x").write_text("a")
    (tmp_path / "b" / "x").write_text("b")
    exchange(tmp_path / "a", tmp_path / "b")
    assert (tmp_path / "a" / "x").read_text() == "b" and (tmp_path / "b" / "x").read_text() == "a"


def test_a_failed_write_removes_the_folders_it_made(tmp_path):
    with pytest.raises(RuntimeError):
        with atomic_path(tmp_path / "new" / "deeper" / "r.json") as tmp:
            tmp.write_text("half")
            raise RuntimeError("the work failed")
    assert list(tmp_path.iterdir()) == []


def _killed_in_staging(folder: Path, name: str, files: list[str]) -> Path:
    """What SIGKILL leaves while an output is staged: a process builds `files` in staging(folder, name) and is
    killed before publishing. The staging folder it left."""
    code = ("import os, signal, sys\nfrom pathlib import Path\nfrom edgedino.atomic import staging\n"
            "with staging(Path(sys.argv[1]), sys.argv[2]) as tmp:\n"
            "    for f in sys.argv[3:]:\n        (tmp / f).write_bytes(b'partial')\n"
            "    os.kill(os.getpid(), signal.SIGKILL)\n")
    before = set(folder.iterdir())
    proc = subprocess.run([sys.executable, "-c", code, str(folder), name, *files], timeout=60)
    assert proc.returncode == -9
    (left,) = set(folder.iterdir()) - before
    return left


def test_a_killed_exports_staging_is_removed_by_the_next_export_and_nothing_else(tmp_path):
    """SIGKILL mid-export leaves `.<name>.XXXXXXXX`; the next export of that name removes it and says so. A staging
    folder a live process holds, a look-alike holding a file of the user's, and another name's debris stay."""
    from edgedino.export import export

    name = "vit_test_64_fp32"
    debris = _killed_in_staging(tmp_path, name, [f"{name}.xml", f"{name}.bin"])
    other = _killed_in_staging(tmp_path, "vit_test_64_int8", ["fp32_vit_test_64_int8.onnx"])
    mine = tmp_path / f".{name}.notes123"  # named like a staging folder, but no lock file: the user's
    (mine / f"{name}.xml").mkdir(parents=True)
    (mine / "todo.txt").write_text("keep")
    lines: list[str] = []
    with staging(tmp_path, name) as live:
        assert remove_stale_staging(tmp_path, [name]) == [debris]  # the debris only: `live` is locked
        assert live.is_dir()
        debris = _killed_in_staging(tmp_path, name, [f"{name}.xml"])  # debris again, for the export to find
        result = export(targets="openvino", model="vit_test", imgsz=64, out=tmp_path, verify_outputs=False,
                        log=lines.append)
        assert result.artifacts[0].status == "unverified" and live.is_dir()
    assert not debris.exists() and other.exists() and (mine / "todo.txt").read_text() == "keep"
    assert any(f"removed {debris.name}" in line and "killed" in line for line in lines), lines
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([other.name, mine.name, f"{name}.xml", f"{name}.bin"])


def test_a_killed_atomic_writes_staging_is_locked_only_while_it_lives(tmp_path):
    """A live write's staging stays, a killed one's goes (whatever it holds: the int8 exports stage an fp32_ file);
    an unreadable or missing folder has nothing to clean."""
    with atomic_path(tmp_path / "r.json") as tmp:
        assert remove_stale_staging(tmp_path, ["r.json"]) == [] and tmp.parent.exists()
        tmp.write_text("{}")
    left = _killed_in_staging(tmp_path, "r.json", ["r.json", "fp32_r.json"])
    assert remove_stale_staging(tmp_path, ["r.json"]) == [left] and not left.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]
    assert remove_stale_staging(tmp_path / "missing", ["r.json"]) == []


@pytest.fixture(scope="module")
def two_weights(tmp_path_factory):
    """Two vit_test weights files (A, B) and, for each, its SHA-256 -> the patch-embedding weight's bytes."""
    from edgedino import create_model, save_backbone
    from edgedino.digest import weights_sha256

    folder = tmp_path_factory.mktemp("two_weights")
    paths, expected = [], {}
    for seed in (1, 2):
        model = create_model("vit_test").reset_parameters(seed=seed)
        path = save_backbone(model, folder / f"w{seed}.pt", "edgedino")
        paths.append(path)
        expected[weights_sha256(str(path))] = model.patch_embed.proj.weight.detach().numpy().tobytes().hex()
    (folder / "expected.json").write_text(json.dumps(expected))
    return paths, folder / "expected.json"


def re_export_while_polling(target: str, kinds: list[str], two_weights, out: Path, rounds: int) -> list[dict]:
    """Export A, then re-export B, A, B, ... while each poller kind reads the artifact; the pollers' counts."""
    from edgedino.export import export

    paths, expected = two_weights
    suffix = {"openvino": ".xml", "coreml": ".mlpackage"}[target]
    artifact, stop = out / f"vit_test_64_fp32{suffix}", out / "stop"

    def once(i: int) -> None:
        result = export(targets=target, weights=str(paths[i % 2]), imgsz=64, out=out, verify_outputs=False,
                        log=lambda line: None)
        assert result.artifacts[0].status == "unverified", result.artifacts[0].message

    once(0)
    pollers = [subprocess.Popen([sys.executable, str(POLLER), kind, str(artifact), str(stop), str(expected)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for kind in kinds]
    try:
        for i in range(1, rounds + 1):
            once(i)
    finally:
        stop.touch()
        results = [p.communicate(timeout=120) for p in pollers]
    stop.unlink()
    counts = []
    for (stdout, stderr), kind in zip(results, kinds, strict=True):
        assert stdout.strip(), f"{kind} poller printed nothing: {stderr[-2000:]}"
        counts.append({"kind": kind, **json.loads(stdout.strip().splitlines()[-1])})
    return counts


def test_openvino_readers_see_the_old_pair_or_the_new_one(two_weights, tmp_path):
    """While the .xml/.bin pair is re-exported with other weights, a slow reader (the .xml, a pause, the .bin) and
    the plain OpenVINO reader only ever see metadata and weights of one export: never a mix, never nothing."""
    counts = re_export_while_polling("openvino", ["slow-ir", "openvino"], two_weights, tmp_path, rounds=5)
    for c in counts:
        assert c["mixed"] == 0 and c["missing"] == 0 and not c["other"], counts
        assert c["consistent"] > 20, counts
    from edgedino.export.openvino_pair import ir_size, ranges

    xml = tmp_path / "vit_test_64_fp32.xml"
    bin_size = xml.with_suffix(".bin").stat().st_size
    model_bytes = sum(end - start for start, end in ranges(xml.read_text()))
    assert model_bytes < bin_size <= 2 * model_bytes + 4096, "the .bin keeps the previous weights, no more"
    assert ir_size(xml) == xml.stat().st_size + model_bytes


def test_reexporting_the_same_weights_keeps_one_copy(two_weights, tmp_path):
    from edgedino.export import export
    from edgedino.export.openvino_pair import ranges

    paths, _ = two_weights
    for _ in range(2):
        export(targets="openvino", weights=str(paths[0]), imgsz=64, out=tmp_path, verify_outputs=False,
               log=lambda line: None)
    xml = tmp_path / "vit_test_64_fp32.xml"
    assert xml.with_suffix(".bin").stat().st_size == sum(end - start for start, end in ranges(xml.read_text()))


def test_a_coreml_package_is_never_missing_while_replaced(two_weights, tmp_path):
    counts = re_export_while_polling("coreml", ["mlpackage"], two_weights, tmp_path, rounds=4)
    (c,) = counts
    assert c["mixed"] == 0 and c["missing"] == 0 and not c["other"] and c["consistent"] > 20, counts
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vit_test_64_fp32.mlpackage"]
