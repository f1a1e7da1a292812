"""Hostile and careless inputs to export, verify, benchmark, features, eval and the apps, as a table: each case's
exit code, its one-line message, no traceback, and nothing created, changed or deleted in its folder (see
bad_input.py). The cases a table cannot hold (Ctrl-C, a full disk) are in test_export_interrupted.py."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from bad_input import Case, check, frames, huge_png_header, png, then, truncate, victim, video, write

ART: dict[str, Path] = {}  # the shared artifacts, filled by the `artifacts` fixture
SUFFIXES = {"onnx": ".onnx", "openvino": ".xml", "tflite": ".tflite", "coreml": ".mlpackage"}
NAME = "vit_test_64_fp32"


@pytest.fixture(scope="module", autouse=True)
def artifacts(tmp_path_factory):
    """vit_test (seeded) at 64x64, fp32, in every target, exported from a weights file named w.pt."""
    from edgedino import create_model, save_backbone
    from edgedino.export import export

    out = tmp_path_factory.mktemp("bad_inputs")
    save_backbone(create_model("vit_test").reset_parameters(seed=1), out / "w.pt", "edgedino")
    result = export(targets="all", weights=str(out / "w.pt"), imgsz=64, out=out, log=lambda line: None)
    assert result.ok, [(a.target, a.message) for a in result.artifacts]
    ART.update({"dir": out, **{t: out / (NAME + s) for t, s in SUFFIXES.items()}})
    return ART


def copy(target: str, weights: bool = True):
    """Setup: the target's artifact (and its .bin, or its package folder) and w.pt, into the case's folder."""
    def setup(folder: Path) -> None:
        src = ART[target]
        if src.is_dir():
            shutil.copytree(src, folder / src.name)
        else:
            shutil.copy(src, folder)
        if target == "openvino":
            shutil.copy(src.with_suffix(".bin"), folder)
        if weights:
            shutil.copy(ART["dir"] / "w.pt", folder)
    return setup


def metadata(target: str, change):
    """Setup: rewrite the copied artifact's metadata: `change` maps its JSON text to new text."""
    def setup(folder: Path) -> None:
        path = folder / ART[target].name
        if target == "onnx":
            import onnx

            model = onnx.load(str(path))
            entry = next(p for p in model.metadata_props if p.key == "edgedino")
            entry.value = change(entry.value)
            onnx.save(model, str(path))
        elif target == "openvino":
            import openvino as ov

            model = ov.Core().read_model(str(path))  # maps the .bin: write a new pair, then rename it over
            model.set_rt_info(change(model.get_rt_info(["edgedino"]).astype(str)), ["edgedino"])
            ov.save_model(model, str(folder / "edited.xml"), compress_to_fp16=False)
            del model
            os.replace(folder / "edited.bin", path.with_suffix(".bin"))
            os.replace(folder / "edited.xml", path)
    return setup


def edit(**changes):
    """A metadata change: these keys set to these values in the JSON."""
    return lambda text: json.dumps({**json.loads(text), **changes})


def nan_weight(target: str):
    """Setup: write NaN into the first value of the copied artifact's largest float32 weight."""
    def setup(folder: Path) -> None:
        path = folder / ART[target].name
        if target == "onnx":
            import onnx
            from onnx import numpy_helper

            model = onnx.load(str(path))
            init = max((t for t in model.graph.initializer if t.data_type == onnx.TensorProto.FLOAT),
                       key=lambda t: int(np.prod(t.dims)))
            values = numpy_helper.to_array(init).copy()
            values.flat[0] = np.nan
            init.CopyFrom(numpy_helper.from_array(values, init.name))
            onnx.save(model, str(path))
        else:  # Core ML: blob records of (sentinel, type, size, data offset) in weights/weight.bin
            blob = next(path.rglob("weight.bin"))
            data = np.fromfile(blob, np.uint8)
            records, offset = [], 64
            while offset + 64 <= data.size and data[offset:offset + 4].view(np.uint32)[0] == 0xDEADBEEF:
                size, start = (int(v) for v in data[offset + 8:offset + 24].view(np.uint64))
                records.append((size, start))
                offset = (start + size + 63) // 64 * 64
            _, start = max(records)
            data[start:start + 4] = np.frombuffer(np.float32(np.nan).tobytes(), np.uint8)
            data.tofile(blob)
    return setup


def weights(name: str, change):
    """Setup: a weights file `name` with vit_test's seeded weights after `change(model)`."""
    def setup(folder: Path) -> None:
        import torch

        from edgedino import create_model, save_backbone

        model = create_model("vit_test").reset_parameters(seed=1)
        with torch.no_grad():
            change(model)
        save_backbone(model, folder / name, "edgedino")
    return setup


ONNX, XML, TFLITE, MLPACKAGE = (f"{{dir}}/{NAME}{s}" for s in (".onnx", ".xml", ".tflite", ".mlpackage"))
EXPORT = ["export", "--model", "vit_test", "--imgsz", "64", "--out", "{dir}/out"]
TRACK = ["apps/track.py", "--model", ONNX, "--source", "{dir}/frames", "--box", "8,8,32,32", "--headless"]
BENCH = ["benchmark", "--model", "vit_test", "--imgsz", "64", "--target", "torch", "--iters", "1"]
FOLDER = "is a folder: give a file name"
NOT_PLAIN = "which is not a plain file name"
CORRUPT = r"cannot load .*not a valid .* artifact \(truncated or corrupt\?\)"


def at_size(base: list[str], size: str) -> list[str]:
    """The base command at another --imgsz (one setting given twice with different values is refused)."""
    i = base.index("--imgsz")
    return [*base[:i + 1], size, *base[i + 2:]]


CASES = [
    # 1. An output path naming a folder (or an input) is refused; nothing is deleted.
    Case("verify --json FOLDER", ["verify", ONNX, "--json", "{dir}/victim"], then(copy("onnx"), victim()),
         message=FOLDER),
    Case("verify --json ARTIFACT", ["verify", ONNX, "--json", ONNX], copy("onnx"), message="also an input"),
    Case("export --json FOLDER", [*EXPORT, "--json", "{dir}/victim"], victim(), message=FOLDER),
    Case("export over a folder named like the artifact", [*EXPORT, "--target", "onnx"],
         victim(f"out/{NAME}.onnx"), message=FOLDER),
    Case("export over a folder named like the .bin", [*EXPORT, "--target", "openvino"],
         victim(f"out/{NAME}.bin"), message=FOLDER),
    Case("export over a foreign .mlpackage", [*EXPORT, "--target", "coreml"],
         victim(f"out/{NAME}.mlpackage"), message="not written by edgedino: refusing to replace it"),
    Case("eval --json FOLDER", ["eval", "knn", "--model", "vit_test", "--data", "{dir}", "--json", "{dir}/victim"],
         victim(), message=FOLDER),
    Case("benchmark --json FOLDER", [*BENCH, "--json", "{dir}/victim"], victim(), message=FOLDER),
    Case("benchmark --md FOLDER", [*BENCH, "--md", "{dir}/victim"], victim(), message=FOLDER),
    Case("benchmark --plot FOLDER", [*BENCH, "--plot", "{dir}/victim"], victim(), message=FOLDER),
    Case("features --out FOLDER", ["features", "{dir}/a.png", "--model", "vit_test", "--save", "{dir}/victim.png"],
         then(png("a.png", 64, 64), victim("victim.png")), message=FOLDER),
    Case("track --json FOLDER", [*TRACK, "--json", "{dir}/victim"], then(copy("onnx"), frames(), victim()),
         message=FOLDER),
    Case("track --save FOLDER", [*TRACK, "--save", "{dir}/victim.mp4"],
         then(copy("onnx"), frames(), victim("victim.mp4")), message=FOLDER),
    Case("track --save SOURCE", ["apps/track.py", "--model", ONNX, "--source", "{dir}/clip.mp4", "--box",
                                 "8,8,32,32", "--headless", "--save", "{dir}/clip.mp4"],
         then(copy("onnx"), video("clip.mp4")), message="also an input"),
    # 2. NaN or inf anywhere fails closed, naming the output.
    Case("verify ONNX with a NaN weight", ["verify", ONNX], then(copy("onnx"), nan_weight("onnx")), code=1,
         message=r"patch_tokens has non-finite values \(NaN or inf\) in the onnxruntime"),
    Case("verify Core ML with a NaN weight", ["verify", MLPACKAGE], then(copy("coreml"), nan_weight("coreml")),
         code=1, message=r"patch_tokens has non-finite values \(NaN or inf\) in the reference interpreter"),
    Case("export fp16 whose outputs overflow", [*EXPORT, "--weights", "{dir}/big.pt", "--target", "onnx",
                                                "--precision", "fp16"],
         weights("big.pt", lambda m: m.norm.weight.fill_(6e4)), code=1, keeps=r"out|out/.*_fp16\.onnx",
         message=r"❎ onnx fp16: .*patch_tokens has non-finite values \(NaN or inf\) in the onnxruntime"),
    Case("export NaN weights", [*EXPORT, "--weights", "{dir}/nan.pt"],
         weights("nan.pt", lambda m: m.blocks[0].attn.qkv.weight[0, 0].fill_(float("nan"))),
         message=r"non-finite values \(NaN or inf\) in blocks.0.attn.qkv.weight"),
    # 3. The weights file named in metadata: a plain name of a regular file, or an error (never a hang).
    *[Case(f"verify, metadata weights {name!r}", ["verify", ONNX], then(copy("onnx"), metadata("onnx",
           edit(weights=name))), message=NOT_PLAIN, timeout=120)
      for name in ("/dev/zero", ".", "..", "/etc/passwd", "../w.pt")],
    Case("verify, metadata weights name a FIFO", ["verify", ONNX],
         then(copy("onnx"), metadata("onnx", edit(weights="w.fifo")), lambda d: os.mkfifo(d / "w.fifo")),
         message="w.fifo is not a regular file", timeout=120),
    Case("verify --weights /dev/zero", ["verify", ONNX, "--weights", "/dev/zero"], copy("onnx"),
         message="/dev/zero is not a regular file", timeout=120),
    # 4. Metadata the runtime uses must agree with the weights; precision with what the artifact stores.
    Case("verify, edited mean", ["verify", ONNX], then(copy("onnx"), metadata("onnx", edit(mean=[0.5, 0.5, 0.5]))),
         code=1, message=r"metadata mean is \[0.5, 0.5, 0.5\], but \[0.485"),
    Case("verify, std 0", ["verify", XML], then(copy("openvino"), metadata("openvino", edit(std=[0, 0, 0]))),
         code=1, message=r"patch_tokens has non-finite values .*metadata std is \[0, 0, 0\]|metadata std is"),
    Case("verify, precision claimed int8", ["verify", ONNX], then(copy("onnx"), metadata("onnx",
         edit(precision="int8"))), code=1, message="metadata precision is 'int8', but the artifact stores fp32"),
    # 11. Corrupt artifacts and settings files: one line, exit 2.
    Case("verify truncated .onnx", ["verify", ONNX], then(copy("onnx"), truncate(f"{NAME}.onnx", 0.5)),
         message=CORRUPT),
    Case("verify truncated .xml", ["verify", XML], then(copy("openvino"), truncate(f"{NAME}.xml", 0.5)),
         message=CORRUPT),
    Case("verify truncated .bin", ["verify", XML], then(copy("openvino"), truncate(f"{NAME}.bin", 0.5)),
         message=CORRUPT),
    Case("verify truncated .tflite", ["verify", TFLITE], then(copy("tflite"), truncate(f"{NAME}.tflite", 0.5)),
         message=CORRUPT),
    Case("verify, ONNX metadata not JSON", ["verify", ONNX], then(copy("onnx"), metadata("onnx", lambda t: t[:-5])),
         message="metadata is not valid JSON"),
    Case("verify, OpenVINO metadata a list", ["verify", XML], then(copy("openvino"), metadata("openvino",
         lambda t: "[1, 2]")), message="metadata is a JSON list, not an object"),
    Case("track, truncated .onnx", TRACK, then(copy("onnx"), frames(), truncate(f"{NAME}.onnx", 0.3)),
         message=CORRUPT),
    Case("track, truncated .tflite", [*TRACK[:2], TFLITE, *TRACK[3:]],
         then(copy("tflite"), frames(), truncate(f"{NAME}.tflite", 0.3)), message=CORRUPT),
    Case("recipe, calib_size not a number", ["export", "--recipe", "{dir}/r.yaml", "--out", "{dir}/out"],
         write("r.yaml", "target: onnx\ncalib_size: abc\n"), message="calib_size must be a count, not 'abc'"),
    Case("recipe, target a number", ["export", "--recipe", "{dir}/r.yaml", "--out", "{dir}/out"],
         write("r.yaml", "target: 5\n"), message="target must be a texts, not 5"),
    Case("recipe, malformed YAML", ["export", "--recipe", "{dir}/r.yaml", "--out", "{dir}/out"],
         write("r.yaml", "target: [onnx\nprecision: fp32\n"), message="not valid YAML at line"),
    Case("recipe, !!python tag", ["export", "--recipe", "{dir}/r.yaml", "--out", "{dir}/out"],
         write("r.yaml", "target: !!python/object/apply:os.system ['touch {dir}/pwned']\n"),
         message="not valid YAML.*python/object/apply:os.system"),
    Case("suite, malformed YAML", ["benchmark", "--suite", "{dir}/s.yaml"], write("s.yaml", "models: [a\n"),
         message="suite .* is not valid YAML at line"),
    Case("suite, !!python tag", ["benchmark", "--suite", "{dir}/s.yaml"],
         write("s.yaml", "models: !!python/name:os.system\n"), message="not valid YAML.*python/name:os.system"),
    Case("suite, threads [0]", ["benchmark", "--suite", "{dir}/s.yaml"], write("s.yaml", "threads: [0]\n"),
         message="threads must be a counts, not \\[0\\]"),
    Case("benchmark --threads a", [*BENCH, "--threads", "a"], message="give comma-separated whole numbers"),
    # 13. Sizes that would allocate gigabytes are refused before anything is allocated or created.
    Case("export --imgsz 22400", at_size(EXPORT, "22400"), message="22400x22400 is 501.8 megapixels"),
    Case("benchmark --imgsz 22400", at_size(BENCH, "22400"), message="megapixels, over edgedino's limit"),
    Case("export, recipe a target cannot do", ["export", "--model", "vit_test", "--recipe", "{dir}/r.yaml",
                                               "--out", "{dir}/out"],
         write("r.yaml", "target: coreml\nimgsz: 64\noptions: {minimum_deployment_target: iOS99}\n"), code=1,
         message="minimum_deployment_target 'iOS99' is not supported"),
    Case("features, a 1x4000 PNG", ["features", "{dir}/tall.png", "--model", "vit_test", "--save", "{dir}/p.png"],
         png("tall.png", 4000, 1), message="aspect ratio over 16:1"),
    Case("features, a 20000x20000 PNG", ["features", "{dir}/huge.png", "--model", "vit_test", "--save",
                                         "{dir}/p.png"], huge_png_header("huge.png", 20000, 20000),
         message="20000x20000 image .* over edgedino's limit of 100 megapixels"),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_bad_input(case, tmp_path):
    check(case, tmp_path)
    assert not (tmp_path / "pwned").exists()
