"""The benchmark pictures, made from small results JSON: latency against parity as one panel per model and setting,
each row one marker of its target's colour and its precision's shape; tracking with every label off every marker and
every other label (as the renderer draws them); plain-number log ticks; the random-weights note where the weights
were random."""

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


def test_latency_plot_has_a_panel_per_model_and_setting(latency_report, tmp_path):
    """Each measured row is one marker in its model's panel for its setting, coloured by target and shaped by
    precision; parity 0.9996 and 0.9999 sit a visible distance apart; PyTorch and fp32 exports share the top line."""
    more = [{**r, "threads": 1, "latency_ms": {k: 2 * v for k, v in r["latency_ms"].items()}}
            for r in latency_report["rows"] if r["latency_ms"]]
    report = {**latency_report, "rows": latency_report["rows"] + more}
    fig, panels = plots.latency_figure(report)
    fig.canvas.draw()
    assert [(setting, model) for _, setting, model, _ in panels] == [
        (f"224x224, {t}, batch 1", m) for t in ("2 threads", "1 thread") for m in ("vits16", "convnext_tiny")]
    measured = [r for r in report["rows"] if r["latency_ms"]]
    for ax, setting, model, markers in panels:
        mine = [r for r in measured if r["model"] == model and setting.startswith(f"224x224, {r['threads']} thread")]
        assert len(markers) == len(mine) > 0
        drawn = sorted((m.get_color(), m.get_marker(), round(m.get_xydata()[0][0], 3)) for m in markers)
        assert drawn == sorted((plots.COLOURS[r["target"]], plots.MARKERS[r["precision"]],
                                round(r["latency_ms"]["median"], 3)) for r in mine)
        ticks = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
        assert ticks and all(t.replace(".", "").isdigit() for t in ticks), ticks
    ax, _, _, markers = panels[0]
    y = {(m.get_color(), m.get_marker()): m.get_xydata()[0][1] for m in markers}
    onnx, openvino = plots.COLOURS["onnx"], plots.COLOURS["openvino"]
    ax_y = ax.transData.transform
    assert ax_y((1, y[openvino, "D"]))[1] - ax_y((1, y[onnx, "D"]))[1] > 10  # pixels
    assert y[plots.COLOURS["torch"], "o"] == y[onnx, "o"] == plots.GAP_FLOOR
    assert [t.get_text() for t in ax.get_yticklabels()][-1].startswith("≥0.99999")
    plots.pyplot().close(fig)
    out = plots.plot(report, tmp_path / "p.png")
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
