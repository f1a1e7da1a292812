"""Pictures people look at: those made with random weights say so in a corner (and those of the shipped demo model
do not); segmentation pictures title their columns and leave the background class unpainted."""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgedino.caption import RANDOM_WEIGHTS, TextStyle, corner

DEMO = Path(__file__).parents[1] / "edgedino" / "assets" / "demo" / "demo-vit8-dense.pth"
IMAGE = Path(__file__).parents[1] / "edgedino" / "assets" / "butterfly.jpg"


def _only_in_corner(noted: np.ndarray, plain: np.ndarray) -> None:
    """`noted` equals `plain` except in the bottom right note box, which holds white text on a dark box."""
    assert noted.shape == plain.shape
    x, y, w, h = corner(RANDOM_WEIGHTS, TextStyle.for_frame(plain.shape[:2]), plain.shape[:2], []).rect
    outside = np.ones(plain.shape[:2], bool)
    outside[y:y + h, x:x + w] = False
    assert np.array_equal(noted[outside], plain[outside])
    box = noted[y:y + h, x:x + w].max(-1)
    assert x + w > plain.shape[1] * 0.9 and y + h > plain.shape[0] * 0.9  # bottom right
    assert np.median(box) < 128 and box.max() > 230


@pytest.fixture(scope="module")
def random_artifact(tmp_path_factory) -> Path:
    from edgedino.export import export

    out = tmp_path_factory.mktemp("random")
    result = export(targets="onnx", model="vit_test", imgsz=64, out=out, verify_outputs=False, log=lambda line: None)
    return Path(result.artifacts[0].path)


def test_runtime_knows_random_weights(random_artifact):
    from edgedino.runtime import load

    assert load(random_artifact).random_weights
    assert not load(DEMO).random_weights  # the demo model: trained weights from a file


@pytest.mark.parametrize("random", [True, False])
def test_features_command_notes_random_weights(random, tmp_path):
    """`edgedino features`: with --model (random weights) the picture has the note, with the demo model it has not;
    everything else is the PCA picture as it was."""
    from edgedino.cli import features, main
    from edgedino.viz import pca_rgb, side_by_side

    flags = ["--model", "vit_test"] if random else []
    out = tmp_path / "pca.png"
    assert main(["features", str(IMAGE), "--imgsz", "64", "--save", str(out), *flags]) == 0
    args = argparse.Namespace(model="vit_test" if random else None, weights=None, imgsz="64")
    rgb = cv2.imread(str(IMAGE))[..., ::-1].copy()
    size, tokens, _, is_random = features._features(args, rgb)
    assert is_random == random
    shown = cv2.resize(rgb, (size[1], size[0]), interpolation=cv2.INTER_AREA)
    plain = cv2.cvtColor(side_by_side(shown, pca_rgb(tokens)), cv2.COLOR_RGB2BGR)
    written = cv2.imread(str(out))
    if random:
        _only_in_corner(written, plain)
    else:
        assert np.array_equal(written, plain)


def test_feature_app_and_segment_overlay_note(random_artifact):
    from edgedino.apps import features, segment
    from edgedino.runtime import load
    from edgedino.runtime.task_head import palette

    runtime = load(random_artifact)
    rgb = cv2.imread(str(IMAGE))[..., ::-1].copy()
    view, ms = features.feature_view(runtime, rgb, None)
    plain, noted = view.copy(), view.copy()
    features.caption(plain, 20.0, ms)
    features.caption(noted, 20.0, ms, RANDOM_WEIGHTS if runtime.random_weights else None)
    _only_in_corner(noted, plain)
    classes, mask = ("background", "leaf"), np.zeros(rgb.shape[:2], np.uint8)
    mask[:50] = 1
    args = (rgb, mask, classes, palette(2), 0.5, 20.0, {"backbone": 30.0})
    _only_in_corner(segment.draw(*args, note=RANDOM_WEIGHTS), segment.draw(*args))


def test_segment_pictures_titled_background_unpainted_and_noted(tmp_path):
    from edgedino.heads.evaluate import Evaluation
    from edgedino.heads.pictures import confusion_png, overlay_pngs

    rgb = cv2.resize(cv2.imread(str(IMAGE)), (160, 120))
    cv2.imwrite(str(tmp_path / "a.png"), rgb)
    truth = np.zeros((120, 160), np.uint8)
    truth[30:90, 40:120] = 1
    cv2.imwrite(str(tmp_path / "a_mask.png"), truth)
    pred = np.roll(truth, 10, axis=1)
    classes = ("background", "shape")
    (plain,) = overlay_pngs([tmp_path / "a.png"], [tmp_path / "a_mask.png"], [pred], classes, tmp_path / "plain")
    (noted,) = overlay_pngs([tmp_path / "a.png"], [tmp_path / "a_mask.png"], [pred], classes, tmp_path / "noted",
                            note=RANDOM_WEIGHTS)
    picture, with_note = cv2.imread(str(plain)), cv2.imread(str(noted))
    top = picture.shape[0] - 120  # the legend bar and the title row
    title = picture[22:top]
    for c in range(3):  # each column has its title: dark text on white, centred over the column
        cols = title[:, c * 166:c * 166 + 160]
        assert (cols < 100).any() and (cols == 255).mean() > 0.7
        middle = np.nonzero((cols < 100).any((0, 2)))[0]
        assert 30 < middle.mean() < 130
    image, truth_col, pred_col = (picture[top:, c * 166:c * 166 + 160] for c in range(3))
    assert np.array_equal(image, rgb)
    assert np.array_equal(truth_col[truth == 0], rgb[truth == 0])  # background: the photo as it is
    assert np.array_equal(pred_col[pred == 0], rgb[pred == 0])
    assert (np.abs(truth_col[truth == 1].astype(int) - rgb[truth == 1]).sum(-1) > 20).mean() > 0.9  # painted
    assert np.array_equal(with_note[:picture.shape[0]], picture) and with_note.shape[0] > picture.shape[0]
    assert (with_note[picture.shape[0]:, -60:] < 100).any()  # the note's dark box at the right of the band
    conf = np.array([[40, 2], [3, 30]])
    ev = Evaluation("segment", classes, 1, 0.8, 0.5, [0.9, 0.7], conf)
    a, b = (cv2.imread(str(confusion_png(ev, tmp_path / f"c{i}.png", note))) for i, note in ((0, None),
                                                                                          (1, RANDOM_WEIGHTS)))
    assert np.array_equal(b[:a.shape[0]], a) and b.shape[0] > a.shape[0]
