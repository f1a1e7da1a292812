"""`edgedino compare A B` and `edgedino embed`: real artifacts and checkpoints run on real images."""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    """vit_test (seeded random weights) as ONNX and OpenVINO at 64 px and ONNX at 112 px; the same weights and other
    weights as checkpoints."""
    from edgedino.checkpoints import load_backbone, save_backbone
    from edgedino.export import export

    out = tmp_path_factory.mktemp("compare")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        small = export(targets=["onnx", "openvino"], model="vit_test", imgsz=64, out=out, verify_outputs=False,
                       log=lambda m: None)
        big = export(targets=["onnx"], model="vit_test", imgsz=112, out=out / "big", verify_outputs=False,
                     log=lambda m: None)
        same = save_backbone(load_backbone(None, "vit_test"), out / "same.pth")
        other = save_backbone(load_backbone(None, "vit_test", seed=123), out / "other.pth")
    paths = {Path(a.path).suffix: Path(a.path) for a in small.artifacts}
    return {"onnx": paths[".onnx"], "openvino": paths[".xml"], "onnx112": Path(big.artifacts[0].path),
            "same": same, "other": other}


def test_same_model_in_two_runtimes_agrees(models, tmp_path, capsys):
    from edgedino.cli import main

    out = tmp_path / "c.json"
    assert main(["compare", str(models["openvino"]), str(models["onnx"]), "--json", str(out)]) == 0
    table = capsys.readouterr().out
    assert "(openvino) against" in table and "patch_tokens" in table
    report = json.loads(out.read_text())
    assert report["schema_version"] == 1 and report["imgsz"] == [64, 64] and report["images"] == 8
    parity = {p["output"]: p for p in report["parity"]}
    assert {"cls", "patch_tokens"} <= set(parity) and all(p["cosine_min"] > 0.999 for p in parity.values())


def test_a_checkpoint_against_an_artifact_tells_same_from_other_weights(models, tmp_path):
    from edgedino.cli import main

    cos = {}
    for name in ("same", "other"):
        out = tmp_path / f"{name}.json"
        assert main(["compare", str(models["onnx"]), str(models[name]), "--json", str(out)]) == 0
        cos[name] = {p["output"]: p["cosine_mean"] for p in json.loads(out.read_text())["parity"]}
    assert cos["same"]["patch_tokens"] > 0.9999 and cos["other"]["patch_tokens"] < 0.9


def test_models_of_other_sizes_are_refused(models, tmp_path, capsys):
    from edgedino.cli import main

    out = tmp_path / "c.json"
    assert main(["compare", str(models["onnx"]), str(models["onnx112"]), "--json", str(out)]) == 2
    assert "patch grids differ" in capsys.readouterr().err and not out.exists()


def test_embed_a_folder_and_a_video(models, tmp_path, capsys):
    """`edgedino embed`: every image's tokens as the runtime gives them, names in order; a video's frames pooled."""
    import cv2
    import numpy as np

    from edgedino.cli import main
    from edgedino.runtime import load
    from edgedino.runtime.frames import read_image, sample_images

    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    photos = sample_images()[:3]
    for i, p in enumerate(photos):
        cv2.imwrite(str(folder / ("sub" if i else "") / f"{i}.png"), cv2.imread(str(p)))
    out = tmp_path / "feats.npz"
    assert main(["embed", str(folder), "--model", str(models["onnx"]), "--save", str(out)]) == 0
    assert "embedded 3/3 images" in capsys.readouterr().err
    feats = np.load(out)
    assert list(feats["names"]) == ["0.png", "sub/1.png", "sub/2.png"]
    direct = load(models["onnx"]).features([read_image(folder / n) for n in feats["names"]])
    np.testing.assert_allclose(feats["cls"], direct.cls, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(feats["patch_tokens"], direct.patch_tokens, rtol=1e-5, atol=1e-6)

    video = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (160, 120))
    for i in range(10):
        writer.write(np.roll(cv2.resize(cv2.imread(str(photos[0])), (160, 120)), 8 * i, axis=1))
    writer.release()
    out = tmp_path / "video.npz"
    assert main(["embed", str(video), "--model", str(models["same"]), "--pooled", "--limit", "4", "--save",
                 str(out)]) == 0
    feats = np.load(out)
    assert set(feats) == {"names", "cls", "patch_mean"} and feats["patch_mean"].shape == feats["cls"].shape
    assert len(feats["names"]) == 4 and np.isfinite(feats["patch_mean"]).all()
    assert not np.allclose(feats["patch_mean"][0], feats["patch_mean"][-1])  # frames differ, so do their vectors
    assert main(["embed", str(folder), "--model", "vits16", "--save", str(tmp_path / "x.npz")]) == 2
    assert "needs a model file" in capsys.readouterr().err and not (tmp_path / "x.npz").exists()


def test_embed_to_parquet_reads_back_as_the_npz(models, tmp_path, capsys, monkeypatch):
    """`--save x.parquet`: the same names, cls and patch tokens as the .npz (float32, shapes restored); without
    pyarrow a one-line error naming it, exit 2, nothing written."""
    import numpy as np
    import pyarrow.parquet as pq

    from edgedino import embeddings_file
    from edgedino.cli import main
    from edgedino.runtime.frames import sample_images

    folder = tmp_path / "photos"
    folder.mkdir()
    for p in sample_images()[:2]:
        (folder / p.name).write_bytes(p.read_bytes())
    npz, parquet = tmp_path / "f.npz", tmp_path / "f.parquet"
    for out in (npz, parquet):
        assert main(["embed", str(folder), "--model", str(models["onnx"]), "--save", str(out)]) == 0
    a, b = embeddings_file.read(npz), embeddings_file.read(parquet)
    assert set(a) == set(b) == {"names", "cls", "patch_tokens"} and list(a["names"]) == list(b["names"])
    for key in ("cls", "patch_tokens"):
        assert b[key].dtype == np.float32 and b[key].shape == a[key].shape and np.array_equal(a[key], b[key])
    table = pq.read_table(parquet)  # a plain table any Parquet reader opens: one row per image
    assert table.num_rows == 2 and table.column_names == ["names", "cls", "patch_tokens"]
    assert table.column("cls")[0].as_py() == a["cls"][0].tolist()
    capsys.readouterr()
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    out = tmp_path / "none.parquet"
    assert main(["embed", str(folder), "--model", str(models["onnx"]), "--save", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "pyarrow" in err and "\n" not in err and "Traceback" not in err and not out.exists()
