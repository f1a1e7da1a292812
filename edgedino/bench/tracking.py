"""Tracking evaluation on DAVIS-format sequences: the label-propagation tracker scored by J and F, the no-motion
baseline (first mask copied to every frame), and OpenCV's CSRT and KCF box trackers scored by box IoU against the
masks' boxes. Frames are scored as DAVIS does: every annotated frame but the first and the last."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from edgedino.errors import EdgeDinoError
from edgedino.track.davis import Sequence
from edgedino.track.metrics import box_iou, f_measure, jaccard
from edgedino.track.objects import mask_box, object_box

STAGES = ("decode", "preprocess", "backbone", "propagate", "draw")


@dataclass
class SequenceScore:
    """One method on one sequence: means over its objects (J, F, box IoU) and end-to-end frames per second."""

    name: str
    J: float | None
    F: float | None
    JF: float | None
    box_iou: float
    fps: float | None
    frames: int
    objects: int
    per_object: dict[int, dict[str, float]] = field(default_factory=dict)
    ms: dict[str, float] = field(default_factory=dict)  # mean per frame and stage


def scored_frames(seq: Sequence) -> list[int]:
    """Annotated frames but the first and the last (DAVIS); all annotated frames after the first if only two."""
    annotated = [i for i, m in enumerate(seq.masks) if m is not None and i > 0]
    if not annotated:
        raise EdgeDinoError(f"sequence {seq.name} has no annotation after its first frame: nothing to score")
    return annotated[:-1] if len(annotated) > 1 and annotated[-1] == len(seq.masks) - 1 else annotated


def score_masks(seq: Sequence, ids: list[int], labels: dict[int, np.ndarray]) -> dict[int, dict[str, float]]:
    """J, F and box IoU per object, averaged over the scored frames, from predicted id masks per frame."""
    out = {}
    frames = scored_frames(seq)
    gts = {i: seq.mask(i) for i in frames}
    for obj in ids:
        js, fs, bs = [], [], []
        for i in frames:
            pred, gt = labels[i] == obj, gts[i] == obj
            js.append(jaccard(pred, gt))
            fs.append(f_measure(pred, gt))
            bs.append(box_iou(object_box(pred), mask_box(gt)))
        out[obj] = {"J": float(np.mean(js)), "F": float(np.mean(fs)), "box_iou": float(np.mean(bs))}
    return out


def score_boxes(seq: Sequence, ids: list[int], boxes: dict[int, dict[int, tuple | None]]) -> dict[int, dict]:
    """Box IoU per object against the boxes of the annotated masks, averaged over the scored frames."""
    frames = scored_frames(seq)
    gts = {i: seq.mask(i) for i in frames}
    return {obj: {"box_iou": float(np.mean([box_iou(boxes[i][obj], mask_box(gts[i] == obj)) for i in frames]))}
            for obj in ids}


def _summary(name: str, n: int, per_object: dict, fps: float | None, ms: dict) -> SequenceScore:
    def mean(key: str) -> float | None:
        values = [v[key] for v in per_object.values() if key in v]
        return float(np.mean(values)) if values else None

    j, f = mean("J"), mean("F")
    return SequenceScore(name, j, f, None if j is None else (j + f) / 2, mean("box_iou"), fps, n, len(per_object),
                         per_object, ms)


def first_ids(seq: Sequence) -> tuple[np.ndarray, list[int]]:
    mask = seq.mask(0)
    return mask, [int(i) for i in np.unique(mask) if i != 0]


def run_tracker(seq: Sequence, tracker) -> SequenceScore:
    """The label-propagation tracker end to end per frame: decode, preprocess, backbone, propagate, draw."""
    from edgedino.track.draw import draw_tracks

    mask, ids = first_ids(seq)
    tracker.start(seq.frame(0), mask)
    labels, totals, wall = {}, dict.fromkeys(STAGES, 0.0), 0.0
    for i in range(1, len(seq.frames)):
        t0 = time.perf_counter()
        frame = seq.frame(i)
        t1 = time.perf_counter()
        result = tracker.step(frame)
        t2 = time.perf_counter()
        draw_tracks(np.ascontiguousarray(frame[..., ::-1]), result, ms=result.ms)
        t3 = time.perf_counter()
        wall += t3 - t0
        labels[i] = result.labels
        for stage, ms in {**result.ms, "decode": (t1 - t0) * 1e3, "draw": (t3 - t2) * 1e3}.items():
            totals[stage] += ms
    n = len(seq.frames) - 1
    per_object = score_masks(seq, ids, labels)
    return _summary(seq.name, n, per_object, n / wall if wall else None, {k: v / n for k, v in totals.items()})


def run_no_motion(seq: Sequence) -> SequenceScore:
    """The first mask copied to every frame."""
    mask, ids = first_ids(seq)
    labels = dict.fromkeys(range(1, len(seq.frames)), mask)
    return _summary(seq.name, len(seq.frames) - 1, score_masks(seq, ids, labels), None, {})


BOX_TRACKERS = {"CSRT": "TrackerCSRT_create", "KCF": "TrackerKCF_create"}


def run_box_tracker(seq: Sequence, kind: str) -> SequenceScore:
    """One OpenCV box tracker per object, started from the first mask's boxes; a lost track counts as no box."""
    import cv2

    mask, ids = first_ids(seq)
    first = np.ascontiguousarray(seq.frame(0)[..., ::-1])
    trackers = {}
    for obj in ids:
        trackers[obj] = getattr(cv2, BOX_TRACKERS[kind])()
        trackers[obj].init(first, mask_box(mask == obj))
    boxes, wall = {}, 0.0
    for i in range(1, len(seq.frames)):
        t0 = time.perf_counter()
        bgr = np.ascontiguousarray(seq.frame(i)[..., ::-1])
        boxes[i] = {}
        for obj, tracker in trackers.items():
            ok, box = tracker.update(bgr)
            boxes[i][obj] = tuple(int(v) for v in box) if ok and box[2] > 0 and box[3] > 0 else None
        wall += time.perf_counter() - t0
    n = len(seq.frames) - 1
    return _summary(seq.name, n, score_boxes(seq, ids, boxes), n / wall if wall else None, {})
