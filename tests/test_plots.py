"""The benchmark pictures: made from small results JSON, every label off every marker and every other label (as the
renderer draws them), plain-number log ticks, and the random-weights note where the weights were random."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from edgedino.bench import plots


def _row(model, target, precision, ms, cos, mb):
    return {"model": model, "target": target, "precision": precision, "imgsz": "224x224", "threads": 2, "batch": 1,
            "status": "measured", "latency_ms": {"median": ms, "p90": ms * 1.2, "min": ms * 0.9}, "parity_cos": cos,
            "size_mb": mb}


@pytest.fixture
def latency_report(tmp_path):
    """A small results file with a crowded corner: five fp32 points within 10% of each other on the top line."""
    rows = [_row("vits16", "torch", "fp32", 290.0, 1.0, 86), _row("convnext_tiny", "torch", "fp32", 144.0, 1.0, 111),
            *(_row(m, t, "fp32", ms, 1 - 1e-12, mb) for m, t, ms, mb in (
                ("vits16", "onnx", 59.0, 87), ("vits16", "openvino", 49.5, 87), ("vits16", "tflite", 56.2, 87),
                ("convnext_tiny", "openvino", 47.6, 111), ("convnext_tiny", "onnx", 52.0, 111))),
            _row("vits16", "onnx", "int8", 41.6, 0.99964, 23), _row("vits16", "openvino", "int8", 19.0, 0.99985, 23),
            _row("convnext_tiny", "tflite", "int8", 51.6, 0.99936, 30),
            {**_row("vits16", "coreml", "fp32", 0, 0, 0), "status": "export-failed", "latency_ms": None,
             "parity_cos": None}]
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"machine": {"cpu": {"model": "Test CPU", "cores": 2}}, "rows": rows}))
    return json.loads(path.read_text())


@pytest.fixture
def tracking_report():
    def method(model, side, fps, jf):
        return {"method": f"{model} openvino int8", "kind": "label propagation", "artifact": f"/x/{model}.xml",
                "short_side": side, "input_hw": [side, side * 4 // 3], "fps": fps, "JF_mean": jf}

    return {"data": "synth:4", "machine": {"cpu": {"model": "Test CPU", "cores": 2}}, "threads": 2,
            "weights": "random (seed 0) for presets: these features are not DINOv3's",
            "methods": [method("vits16", 224, 12.1, 0.123), method("vits16", 448, 3.0, 0.32),
                        method("convnext_tiny", 224, 17.8, 0.041), method("convnext_tiny", 448, 5.8, 0.123),
                        method("vitb16", 224, 2.4, 0.176)],  # on the no-motion line, under its text
            "baselines": [{"method": "no-motion", "kind": "first mask copied", "JF_mean": 0.174, "fps": None},
                          {"method": "CSRT", "kind": "OpenCV box tracker", "JF_mean": None, "fps": 17.4}]}


def _assert_readable(fig, ax, labels, markers, n_points):
    """No label's text overlaps a marker or another label, every label is inside the figure, log ticks are
    plain numbers."""
    from matplotlib.text import Text

    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    assert len(labels) == len(markers) == n_points
    marker_boxes = [m.get_window_extent(renderer) for m in markers]
    text_boxes = [Text.get_window_extent(a, renderer) for a in labels]
    assert all(b.width > 1 and b.height > 1 for b in marker_boxes + text_boxes)
    for i, t in enumerate(text_boxes):
        hits = [labels[j].get_text() for j, m in enumerate(marker_boxes) if t.overlaps(m)]
        assert not hits, f"label {labels[i].get_text()!r} sits on the markers of {hits}"
        others = [labels[j].get_text() for j, o in enumerate(text_boxes) if j != i and t.overlaps(o)]
        assert not others, f"label {labels[i].get_text()!r} covers {others}"
        assert fig.bbox.contains(t.x0, t.y0) and fig.bbox.contains(t.x1, t.y1)
    ticks = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    assert ticks and all(t.replace(".", "").isdigit() for t in ticks), ticks


def test_latency_plot_labels_clear_of_markers(latency_report, tmp_path):
    fig, ax, labels, markers = plots.latency_figure(latency_report)
    _assert_readable(fig, ax, labels, markers, 10)
    # parity 0.9996 and 0.9999 sit a visible distance apart; PyTorch and fp32 exports share the top line
    y = {(r["target"], r["precision"]): xy[1] for r, xy in zip(
        [r for r in latency_report["rows"] if r["latency_ms"]], [m.get_xydata()[0] for m in markers], strict=True)}
    ax_y = ax.transData.transform
    assert ax_y((1, y["openvino", "int8"]))[1] - ax_y((1, y["onnx", "int8"]))[1] > 20
    assert y["torch", "fp32"] == y["onnx", "fp32"] == plots.GAP_FLOOR
    assert [t.get_text() for t in ax.get_yticklabels()][-1].startswith("≥0.99999")
    plots.pyplot().close(fig)
    out = plots.plot(latency_report, tmp_path / "p.png")
    assert cv2.imread(str(out)).shape[1] > 800


def test_tracking_plot_labels_and_random_note(tracking_report, tmp_path):
    from matplotlib.text import Text

    fig, ax, labels, markers = plots.tracking_figure(tracking_report)
    _assert_readable(fig, ax, labels, markers, 5)
    assert sorted(a.get_text() for a in labels) == ["convnext_tiny 224", "convnext_tiny 448", "vitb16 224",
                                                    "vits16 224", "vits16 448"]
    (baseline,) = [t for t in ax.texts if "no-motion" in t.get_text()]
    renderer = fig.canvas.get_renderer()
    assert not any(Text.get_window_extent(a, renderer).overlaps(baseline.get_window_extent(renderer)) for a in labels)
    plots.pyplot().close(fig)
    noted = cv2.imread(str(plots.tracking_plot(tracking_report, tmp_path / "random.png")))
    trained = cv2.imread(str(plots.tracking_plot({**tracking_report, "weights": "w.pth"}, tmp_path / "w.png")))
    # the note is a band under the picture: the same picture above it, dark text box pixels in its right corner
    band = noted[trained.shape[0]:]
    assert noted.shape[1] == trained.shape[1] and 10 < band.shape[0] < 60
    assert np.array_equal(noted[:trained.shape[0]], trained)
    assert (band[:, -band.shape[1] // 3:] < 100).mean() > 0.3 and (band[:, :band.shape[1] // 3] == 255).all()
