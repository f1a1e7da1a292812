"""DAVIS-format I/O, J and F against hand-computed cases, and the synthetic sequence generator."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest

from edgedino.errors import EdgeDinoError
from edgedino.track.davis import read_dataset, write_sequence
from edgedino.track.metrics import boundary, box_iou, f_measure, jaccard, tolerance
from edgedino.track.palette import davis_palette, read_indexed_png, write_indexed_png
from edgedino.track.synth import Scene, SynthConfig, make_sequence


def _png(path, rows: np.ndarray, width: int, depth: int, filters: list[int]) -> None:
    """A palette PNG from already-packed rows (one filter byte each), written by hand."""
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    raw = b"".join(bytes([f]) + r.tobytes() for f, r in zip(filters, rows, strict=True))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, len(rows), depth, 3, 0, 0, 0))
                     + chunk(b"PLTE", davis_palette()[:16].tobytes()) + chunk(b"IDAT", zlib.compress(raw))
                     + chunk(b"IEND", b""))


def test_palette_round_trip_and_opencv_sees_davis_colours(tmp_path):
    import cv2

    ids = np.random.default_rng(0).integers(0, 6, (37, 53)).astype(np.uint8)
    write_indexed_png(tmp_path / "m.png", ids)
    assert np.array_equal(read_indexed_png(tmp_path / "m.png"), ids)
    bgr = cv2.imread(str(tmp_path / "m.png"), cv2.IMREAD_COLOR)  # an independent decoder: colours, not ids
    assert np.array_equal(bgr, davis_palette()[ids][..., ::-1])
    assert davis_palette()[1].tolist() == [128, 0, 0] and davis_palette()[2].tolist() == [0, 128, 0]


def _filtered(rows: np.ndarray, kinds: list[int]) -> np.ndarray:
    """PNG filtering as the spec writes it (one byte per pixel): none, sub, up, average, paeth per row."""
    out, prev = np.zeros_like(rows), np.zeros(rows.shape[1], int)
    for y, (row, kind) in enumerate(zip(rows.astype(int), kinds, strict=True)):
        for x, v in enumerate(row):
            a, b, c = (row[x - 1] if x else 0), prev[x], (prev[x - 1] if x else 0)
            pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
            paeth = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
            out[y, x] = (v - (0, a, b, (a + b) // 2, paeth)[kind]) % 256
        prev = row
    return out


def test_reads_every_filter_and_low_bit_depths(tmp_path):
    values = (np.random.default_rng(2).integers(0, 16, (10, 13)) * 17).astype(np.uint8)
    kinds = [0, 1, 2, 3, 4, 4, 3, 2, 1, 0]
    _png(tmp_path / "filters.png", _filtered(values, kinds), 13, 8, kinds)
    assert np.array_equal(read_indexed_png(tmp_path / "filters.png"), values)
    ids = np.random.default_rng(1).integers(0, 4, (5, 11)).astype(np.uint8)
    packed = np.packbits(np.unpackbits(ids[..., None], axis=-1)[..., -2:].reshape(5, -1), axis=1)
    _png(tmp_path / "two_bit.png", packed, 11, 2, [0] * 5)
    assert np.array_equal(read_indexed_png(tmp_path / "two_bit.png"), ids)
    up = np.vstack([packed[:1], (packed[1:].astype(int) - packed[:-1]) % 256]).astype(np.uint8)
    _png(tmp_path / "up.png", up, 11, 2, [0, 2, 2, 2, 2])
    assert np.array_equal(read_indexed_png(tmp_path / "up.png"), ids)


def test_bad_pngs_are_clear_errors(tmp_path):
    import cv2

    cv2.imwrite(str(tmp_path / "rgb.png"), np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(EdgeDinoError, match="colour type 2"):
        read_indexed_png(tmp_path / "rgb.png")
    write_indexed_png(tmp_path / "m.png", np.ones((4, 4), np.uint8))
    data = bytearray((tmp_path / "m.png").read_bytes())
    data[40] ^= 0xFF
    (tmp_path / "bad.png").write_bytes(bytes(data))
    with pytest.raises(EdgeDinoError, match="corrupt"):
        read_indexed_png(tmp_path / "bad.png")
    with pytest.raises(EdgeDinoError, match="not found"):
        read_indexed_png(tmp_path / "missing.png")


def test_jaccard_and_box_iou_by_hand():
    a, b = np.zeros((20, 30), bool), np.zeros((20, 30), bool)
    a[5:15, 5:15], b[5:15, 10:20] = True, True
    assert jaccard(a, b) == pytest.approx(50 / 150)
    assert jaccard(np.zeros_like(a), np.zeros_like(a)) == 1.0
    assert box_iou((5, 5, 10, 10), (10, 5, 10, 10)) == pytest.approx(50 / 150)
    assert box_iou(None, None) == 1.0 and box_iou(None, (0, 0, 1, 1)) == 0.0


def test_f_measure_by_hand():
    """gt: a 20x20 square; pred: the same square 10 px wider, in a 100x100 image (tolerance ceil(0.008*141)=2 px).
    Boundary pixels (mask differs from its right/lower/lower-right neighbour): gt 80, pred 100. Within 2 px of the
    other boundary: pred 23 + 20 + 22 = 65 of 100, gt 21 + 20 + 20 + 4 = 65 of 80."""
    gt, pred = np.zeros((100, 100), bool), np.zeros((100, 100), bool)
    gt[20:40, 20:40], pred[20:40, 20:50] = True, True
    assert tolerance(gt.shape) == 2
    assert boundary(gt).sum() == 80 and boundary(pred).sum() == 100
    p, r = 65 / 100, 65 / 80
    assert f_measure(pred, gt) == pytest.approx(2 * p * r / (p + r))
    shifted = np.roll(gt, 2, axis=1)
    assert f_measure(shifted, gt) == 1.0 and f_measure(np.roll(gt, 3, axis=1), gt) < 1.0
    empty = np.zeros_like(gt)
    assert f_measure(empty, empty) == 1.0 and f_measure(empty, gt) == 0.0 and f_measure(gt, empty) == 0.0


def test_generated_masks_are_exact():
    """Leaving one object out changes exactly the pixels its mask claims (nearly all of them), nothing else."""
    config = SynthConfig(frames=8, objects=2, seed=3)
    scene = Scene(config)
    for t in (0, 4, 7):
        frame, mask = scene.render(t)
        for i in (1, 2):
            without, _ = scene.render(t, hide=frozenset({i}))
            changed = (frame != without).any(axis=-1)
            assert not (changed & (mask != i)).any()
            assert changed[mask == i].mean() > 0.9
        assert set(np.unique(mask)) <= {0, 1, 2} and (mask > 0).sum() > 500
    frames, masks = make_sequence(config)
    assert all(np.array_equal(a, b) for a, b in zip(make_sequence(config)[1], masks, strict=True))
    assert not np.array_equal(masks[0], masks[-1])  # the objects move


def test_occluder_covers_objects_partly():
    """Some frame has the bar in front of an object (its mask loses those pixels) without hiding it entirely."""
    scene = Scene(SynthConfig(frames=16, objects=1, seed=0))
    open_scene = Scene(SynthConfig(frames=16, objects=1, seed=0, occluder=False))
    partial = 0
    for t in range(16):
        occluded, clear = scene.render(t)[1] == 1, open_scene.render(t)[1] == 1
        assert not (occluded & ~clear).any()
        partial += 0 < occluded.sum() < clear.sum()
    assert partial >= 1


def test_dataset_round_trip_and_errors(tmp_path):
    frames, masks = make_sequence(SynthConfig(frames=4, objects=2, seed=1))
    write_sequence(tmp_path, "a", frames, masks)
    (seq,) = read_dataset(tmp_path)
    assert seq.name == "a" and len(seq.frames) == 4
    assert all(np.array_equal(seq.mask(i), masks[i]) for i in range(4))
    assert np.abs(seq.frame(2).astype(int) - frames[2]).mean() < 4  # JPEG quality 95
    with pytest.raises(EdgeDinoError, match="JPEGImages/480p"):
        read_dataset(tmp_path / "nowhere")
    with pytest.raises(EdgeDinoError, match="no sequence named b"):
        read_dataset(tmp_path, ["b"])
    from edgedino.bench.tracking import run_no_motion

    for i in (1, 2, 3):
        (tmp_path / "Annotations" / "480p" / "a" / f"{i:05d}.png").unlink()
    with pytest.raises(EdgeDinoError, match="nothing to score"):
        run_no_motion(read_dataset(tmp_path)[0])
    (tmp_path / "Annotations" / "480p" / "a" / "00000.png").unlink()
    with pytest.raises(EdgeDinoError, match="first frame's annotation"):
        read_dataset(tmp_path)
