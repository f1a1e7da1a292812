"""Hostile and careless command lines for the flag vocabulary (key=value, aliases, old spellings, -V), --model and
--weights (presets, files, Hub ids, links), `compare`, `models`, `info`, export's recipes and int8 flags, and the
apps' arguments, as a table: each case's exit code, its one-line message, no traceback and nothing left behind in
its folder (bad_input.check). Offline: no case reaches the network (Hub ids and links are refused before it)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from bad_input import Case, check, frames, then, victim, write

TINY: dict[str, Path] = {}  # filled by the `tiny` fixture
ONNX = "{dir}/a.onnx"
EXPORT = ["export", "--model", "vit_test", "--imgsz", "64", "--out", "{dir}/out"]
TRACK = ["apps/track.py", "--model", ONNX, "--source", "{dir}/frames", "--box", "8,8,32,32", "--headless"]
APP = ["--model", ONNX, "--source", "{dir}/frames", "--headless"]
OFFLINE = {"HF_HUB_OFFLINE": "1"}
TWICE = "the same setting twice with different values; give it once"
CALIBRATE = "is for the precisions that calibrate \\(int8, palettize4\\), and --precision is fp32"


@pytest.fixture(scope="module", autouse=True)
def tiny(tiny_onnx, tmp_path_factory):
    """The session's tiny ONNX file (vit_test at 64), vit_test at 32 and a convnext_test checkpoint."""
    from edgedino import create_model, save_backbone
    from edgedino.export import export

    out = tmp_path_factory.mktemp("bad_inputs_cli")
    result = export(targets=["onnx"], model="vit_test", imgsz=32, out=out, verify_outputs=False,
                    log=lambda line: None)
    assert result.ok, [a.message for a in result.artifacts]
    save_backbone(create_model("convnext_test").reset_parameters(seed=1), out / "convnext.pt", "edgedino")
    TINY.update(onnx=tiny_onnx, onnx32=Path(result.artifacts[0].path), convnext=out / "convnext.pt")
    return TINY


def put(key: str, name: str):
    """Setup: a shared file, under `name` in the case's folder."""
    return lambda folder: shutil.copy(TINY[key], folder / name)


def fifo(name: str):
    return lambda folder: os.mkfifo(folder / name)


def folder(name: str):
    return lambda folder: (folder / name).mkdir()


def link_loop(folder: Path) -> None:
    (folder / "loop1").symlink_to("loop2")
    (folder / "loop2").symlink_to("loop1")


def unreadable(name: str):
    def setup(folder: Path) -> None:
        (folder / name).write_bytes(b"PK\x03\x04")
        (folder / name).chmod(0)
    return setup


CASES = [
    # the flag vocabulary: key=value, aliases and old spellings, -V
    Case("key= with no value", ["info", "model="], message="--model is empty: give it a value"),
    Case("=value", ["info", "=vit_test"], message="unrecognized arguments: =vit_test"),
    Case("unknown key", ["info", "colour=red"], message="unrecognized arguments: colour=red"),
    Case("repeated key", ["info", "model=vit_test", "model=vits16"],
         message=f"--model vit_test and --model vits16: {TWICE}"),
    Case("key and flag disagree", ["info", "model=vit_test", "--model", "convnext_test"], message=TWICE),
    Case("alias and canonical disagree", [*EXPORT, "--target", "onnx", "--format", "openvino"],
         message=f"--target onnx and --format openvino: {TWICE}"),
    Case("old spelling and canonical disagree", [*EXPORT, "--targets", "onnx", "--target", "openvino"],
         message=f"--targets onnx and --target openvino: {TWICE}"),
    Case("int8 and half switches", [*EXPORT, "int8=True", "half=True"], message=f"--precision int8 and --precision "
                                                                                f"fp16: {TWICE}"),
    Case("switch not true or false", [*EXPORT, "int8=maybe"], message="int8 is a switch: give int8=True or int8=False"),
    Case("switch with no value", [*EXPORT, "dynamic="], message="dynamic is a switch"),
    Case("-V before a command", ["-V", "info", "--model", "nope"], code=0, message=r"^edgedino \d"),
    Case("-V after a command", ["info", "-V"], message="unrecognized arguments: -V"),
    Case("models takes no flags", ["models", "--model", "vits16"], message="unrecognized arguments: --model vits16"),
    Case("models takes no argument", ["models", "vits16"], message="unrecognized arguments: vits16"),
    # --model and --weights
    Case("--model misspelled", ["info", "--model", "vit_tset"], message="unknown model 'vit_tset'; did you mean "
                                                                        "'vit_test'\\?"),
    Case("--model a preset name that is also a folder here", ["info", "--model", "vit_test"], folder("vit_test"),
         message="--model vit_test is both a preset and a file here: give ./vit_test for the file"),
    Case("--model a text file", ["info", "--model", "{dir}/notes.pth"], write("notes.pth", "not weights\n"),
         message="notes.pth is not a PyTorch checkpoint \\(neither a zip archive nor a pickle\\)"),
    Case("--model an artifact with a space and é in its name", ["info", "--model", "{dir}/mod èle.onnx"],
         put("onnx", "mod èle.onnx"), code=0, message="mod èle.onnx \\(onnx"),
    Case("--model file and --weights file", ["info", "--weights", "{dir}/a.pt", "--model", "{dir}/b.pt"],
         message="give the model file once"),
    Case("--model file, then --weights file", ["info", "--model", "{dir}/a.pt", "--weights", "{dir}/b.pt"],
         message=f"--model .*a.pt and --weights .*b.pt: {TWICE}"),
    Case("--weights empty", ["info", "--weights", ""], message="--weights is empty"),
    Case("--weights an empty folder", ["info", "--weights", "{dir}/empty"], folder("empty"),
         message="empty has no model.safetensors"),
    Case("--weights a FIFO", ["info", "--weights", "{dir}/w.pth"], fifo("w.pth"), timeout=60,
         message="w.pth is not a regular file"),
    Case("--weights a symlink loop", ["info", "--weights", "{dir}/loop1"], link_loop,
         message="loop1 is a symbolic link to nothing \\(broken, or a loop\\)"),
    Case("--weights missing", ["info", "--weights", "{dir}/gone.pth"], message="weights not found: .*gone.pth$"),
    Case("Hub id with bad characters", ["info", "--weights", "face book/dino!v3"], env=OFFLINE,
         message="as a Hub id owner/name\\[@revision\\]: only letters, digits"),
    Case("Hub id with nothing after @", ["info", "--weights", "facebook/dinov3-vits16@"], env=OFFLINE,
         message="nothing after '@': give a revision, facebook/dinov3-vits16@main, or drop the '@'"),
    Case("ftp:// link", ["info", "--weights", "ftp://127.0.0.1/dinov3.pth"],
         message="ftp:// links are not supported: give an http\\(s\\) link or a local path"),
    Case("file:// link", ["info", "--weights", "file://{dir}/w.pth"], write("w.pth", "x"),
         message="file:// links are not supported"),
    Case("link naming no weights file", ["info", "--weights", "http://127.0.0.1:9/"],
         message="the link does not name a weights file"),
    # compare
    Case("compare a file with itself", ["compare", ONNX, "./a.onnx"], put("onnx", "a.onnx"),
         message="are the same file: compare two different models"),
    Case("compare different input sizes", ["compare", ONNX, "{dir}/b.onnx"],
         then(put("onnx", "a.onnx"), put("onnx32", "b.onnx")), message="runs at 64x64, b.onnx at 32x32"),
    Case("compare outputs of other shapes", ["compare", ONNX, "{dir}/convnext.pt"],
         then(put("onnx", "a.onnx"), put("convnext", "convnext.pt")),
         message=r"give outputs of other shapes \(cls \(64,\) / \(128,\)"),
    Case("compare a missing file", ["compare", ONNX, "{dir}/gone.onnx"], put("onnx", "a.onnx"),
         message="artifact not found: .*gone.onnx"),
    Case("compare a folder", ["compare", ONNX, "{dir}/empty"], then(put("onnx", "a.onnx"), folder("empty")),
         message="empty is a folder, not a model file"),
    Case("compare a FIFO named .onnx", ["compare", ONNX, "{dir}/b.onnx"], then(put("onnx", "a.onnx"), fifo("b.onnx")),
         timeout=60, message="b.onnx is not a regular file"),
    Case("compare an empty name", ["compare", "", ONNX], put("onnx", "a.onnx"), message="argument a is empty"),
    Case("compare --threads 0", ["compare", ONNX, "{dir}/b.onnx", "--threads", "0"], message="must be at least 1"),
    Case("compare --json FOLDER", ["compare", ONNX, "{dir}/b.onnx", "--json", "{dir}/victim"],
         then(put("onnx", "a.onnx"), put("onnx", "b.onnx"), victim()), message="is a folder: give a file name"),
    # recipes
    Case("--recipe empty", [*EXPORT, "--recipe", ""], message="--recipe is empty"),
    Case("recipe YAML empty", [*EXPORT, "--recipe", "{dir}/r.yaml"], write("r.yaml", "# nothing\n"),
         message="r.yaml is empty: it sets nothing"),
    Case("recipe YAML a list", [*EXPORT, "--recipe", "{dir}/r.yaml"], write("r.yaml", "- onnx\n"),
         message="must be a mapping of settings, not a list"),
    Case("recipe unknown key", [*EXPORT, "--recipe", "{dir}/r.yaml"], write("r.yaml", "targets: onnx\n"),
         message="unknown key 'targets'"),
    Case("recipe wrong type", [*EXPORT, "--recipe", "{dir}/r.yaml"], write("r.yaml", "imgsz: [1, 2]\n"),
         message="imgsz must be a size, not \\[1, 2\\]"),
    Case("recipe name that is also a file here", [*EXPORT, "--recipe", "iphone"], write("iphone", "target: onnx\n"),
         message="recipe iphone is both a shipped recipe and a file here: give ./iphone"),
    Case("recipe a folder", [*EXPORT, "--recipe", "{dir}/r"], folder("r"), message="recipe .*r is a folder"),
    Case("recipe a FIFO", [*EXPORT, "--recipe", "{dir}/r.yaml"], fifo("r.yaml"), timeout=60,
         message="r.yaml is not a regular file"),
    Case("recipe name misspelled", [*EXPORT, "--recipe", "iphon"], message="did you mean 'iphone'\\?"),
    # export's int8 flags and lists
    Case("--int8-policy with fp32 only", [*EXPORT, "--int8-policy", "strict"], message=f"--int8-policy {CALIBRATE}"),
    Case("--calib with fp32 only", [*EXPORT, "--calib", "{dir}/frames"], frames(), message=f"--calib {CALIBRATE}"),
    Case("--calib-size with fp32 only", [*EXPORT, "--calib-size", "8"], message=f"--calib-size {CALIBRATE}"),
    Case("--calib-size 0", [*EXPORT, "--precision", "int8", "--calib-size", "0"], message="must be at least 1"),
    Case("--int8-policy unknown", [*EXPORT, "--int8-policy", "lax"], message="invalid choice: 'lax'"),
    Case("--verify-images missing", [*EXPORT, "--verify-images", "{dir}/gone"], message="not an image folder"),
    Case("--verify-images an empty folder", [*EXPORT, "--verify-images", "{dir}/empty"], folder("empty"),
         message="empty has no readable images"),
    Case("--calib a FIFO", [*EXPORT, "--precision", "int8", "--calib", "{dir}/c"], fifo("c"), timeout=60,
         message="not an image folder, an image or a video"),
    Case("--target empty", [*EXPORT, "--target", ""], message="--target is empty"),
    Case("--target only commas", [*EXPORT, "--target", ",,"], message="--target ',,' names no target"),
    Case("--precision empty", [*EXPORT, "--precision", " "], message="--precision is empty"),
    Case("--option with no key", [*EXPORT, "--option", "=iOS18"], message="--option '=iOS18' is not KEY=VALUE"),
    Case("--out a file", [*EXPORT[:-1], "{dir}/notes.txt"], write("notes.txt", "mine\n"),
         message="notes.txt is not writable: it is a file, not a folder"),
    # the apps' arguments
    Case("app -V", ["apps/track.py", "-V", "--model", "nope"], code=0, message=r"edgedino-track \(edgedino \d"),
    Case("app --model empty", ["apps/track.py", "--model", "", "--headless"], message="--model is empty"),
    Case("app --source empty", [*TRACK[:4], "", *TRACK[5:]], message="--source is empty"),
    Case("app --source and --images disagree", [*TRACK, "--images", "{dir}/other"],
         message=f"--source .*frames and --images .*other: {TWICE}"),
    Case("app --model a folder", [*TRACK[:2], "{dir}/frames", *TRACK[3:]], frames(),
         message="frames is a folder, not a model file"),
    Case("app --model a FIFO", TRACK, then(fifo("a.onnx"), frames()), timeout=60,
         message="a.onnx is not a regular file"),
    Case("app key=value", ["apps/track.py", f"model={ONNX}", "source={dir}/frames", "box=8,8,32,32", "headless=True"],
         then(put("onnx", "a.onnx"), frames()), code=0, message="tracked 2 frames after the first"),
    Case("app switch not true or false", [*TRACK, "headless=maybe"], message="headless is a switch"),
    Case("app --threads 0", ["apps/features.py", *APP, "--threads", "0"], message="must be at least 1, got 0"),
    Case("app --top 0", ["apps/classify.py", *APP, "--top", "0"], message="must be at least 1, got 0"),
    Case("app --alpha 5", ["apps/segment.py", *APP, "--alpha", "5"], then(put("onnx", "a.onnx"), frames()),
         message="--alpha must be between 0 and 1"),
]
ROOT_READS_ALL = pytest.mark.skipif(os.geteuid() == 0, reason="root reads a chmod 000 file")
UNREADABLE = [
    Case("--weights unreadable", ["info", "--weights", "{dir}/w.pth"], unreadable("w.pth"),
         message="cannot read .*w.pth: Permission denied"),
    Case("recipe unreadable", [*EXPORT, "--recipe", "{dir}/r.yaml"], unreadable("r.yaml"),
         message="cannot read recipe .*r.yaml"),
]


@pytest.mark.parametrize("case", [*CASES, *(pytest.param(c, marks=ROOT_READS_ALL) for c in UNREADABLE)], ids=str)
def test_bad_cli_input(case, tmp_path):
    check(case, tmp_path)
