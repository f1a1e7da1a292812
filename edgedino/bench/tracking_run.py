"""`edgedino benchmark tracking`: resolve the data (a DAVIS folder or generated sequences) and each model (an
artifact file, or a preset exported through the artifact cache), run every tracker and the baselines on every
sequence, and collect one report."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from edgedino.bench.tracking import BOX_TRACKERS, SequenceScore, run_box_tracker, run_no_motion, run_tracker
from edgedino.errors import EdgeDinoError

SYNTH_PREFIX = "synth:"
SYNTH_SIZE = (480, 640)  # what a webcam gives


@dataclass
class TrackingSetup:
    """What to evaluate: data, models (artifacts or presets), and for presets how to export them."""

    data: str
    models: list[str]
    weights: str | None = None
    targets: list[str] = field(default_factory=lambda: ["openvino"])
    precisions: list[str] = field(default_factory=lambda: ["int8"])
    short_sides: list[int] | None = None  # None: 224 for presets, an artifact's own size
    threads: int = 2
    calib: str | None = None
    baselines: bool = True
    protocols: list[str] = field(default_factory=lambda: ["edgedino"])  # keys of edgedino.track.protocol.PROTOCOLS


def resolve_data(data: str, log) -> Path:
    """A DAVIS folder as given, or `synth:N`: N generated 640x480 sequences (two objects each), made once and
    cached."""
    if not data.startswith(SYNTH_PREFIX):
        return Path(data)
    from edgedino.bench.cache import cache_dir
    from edgedino.track.synth import SynthConfig, write_dataset

    count = data[len(SYNTH_PREFIX):]
    if not count.isdigit() or int(count) < 1:
        raise EdgeDinoError(f"--data {data!r}: write synth:N with N >= 1 sequences, e.g. synth:4")
    root = cache_dir() / "tracking" / f"synth-{count}-{SYNTH_SIZE[0]}x{SYNTH_SIZE[1]}"
    if not root.exists():
        from edgedino.atomic import atomic_path

        log(f"generating {count} sequences into {root}")
        with atomic_path(root, is_dir=True) as tmp:
            write_dataset(tmp, int(count), SynthConfig(size=SYNTH_SIZE, objects=2))
    return root


def open_runtime(model: str, setup: TrackingSetup, target: str, precision: str, side: int | None,
                 frame_hw: tuple[int, int], log):
    """(Runtime, label): an artifact file loaded as it is, or a preset exported (or reused) through the cache at
    the frames' aspect ratio with the given short side."""
    from edgedino.runtime import load

    if Path(model).exists():
        return load(model, setup.threads), Path(model).name
    from edgedino.bench.cache import artifact, seeded_weights
    from edgedino.models.config import get_config
    from edgedino.runtime.preprocess import fit_size

    imgsz = fit_size(frame_hw, side or 224, get_config(model).stride)
    weights = Path(setup.weights) if setup.weights else seeded_weights(model)
    result, hit = artifact(model, weights, target, precision, imgsz, 1, setup.calib, 32, log=lambda s: log("  " + s))
    if result.status == "export-failed" or not result.path:
        raise EdgeDinoError(f"exporting {model} to {target} {precision} failed: {result.message}")
    log(f"  {'reused' if hit else 'exported'} {result.path}")
    return load(result.path, setup.threads), f"{model} {target} {precision}"


def _entry(label: str, kind: str, scores: list[SequenceScore], extra: dict) -> dict:
    def mean(key):
        values = [v[key] for s in scores for v in s.per_object.values() if key in v]
        return sum(values) / len(values) if values else None

    frames = sum(s.frames for s in scores)
    seconds = sum(s.frames / s.fps for s in scores if s.fps)
    stages = {k: sum(s.ms[k] * s.frames for s in scores) / frames for k in (scores[0].ms if scores else {})}
    j, f = mean("J"), mean("F")
    return {"method": label, "kind": kind, **extra,
            "sequences": [{k: v for k, v in asdict(s).items() if k != "per_object"} for s in scores],
            "J_mean": j, "F_mean": f, "JF_mean": None if j is None else (j + f) / 2, "box_iou_mean": mean("box_iou"),
            "fps": frames / seconds if seconds else None, "ms": stages}


def jobs(setup: TrackingSetup) -> list[tuple[str, str | None, str | None, int | None]]:
    """(model, target, precision, short side) to evaluate: an artifact file once per short side (its own size when
    none is given), a preset for every target x precision x short side (224 when none is given)."""
    from itertools import product

    out = []
    for model in setup.models:
        if Path(model).exists():
            out += [(model, None, None, side) for side in (setup.short_sides or [None])]
        else:
            out += [(model, *rest) for rest in product(setup.targets, setup.precisions, setup.short_sides or [224])]
    return out


def evaluate(runtime, label: str, side: int | None, protocol: str, sequences, setup: TrackingSetup, log) -> dict:
    """The label-propagation tracker following one protocol on every sequence with one runtime."""
    from edgedino.track import Tracker, TrackParams

    frame_hw = sequences[0].frame(0).shape[:2]
    tracker = Tracker(runtime, TrackParams(protocol=protocol), short_side=side)
    scores = []
    for seq in sequences:
        scores.append(run_tracker(seq, tracker))
        log(f"  {protocol} {seq.name}: J {scores[-1].J:.3f} F {scores[-1].F:.3f} {scores[-1].fps:.1f} FPS")
    meta = runtime.metadata
    return _entry(label, "label propagation", scores, {
        "protocol": protocol, "artifact": str(runtime.path), "target": meta.get("target"),
        "precision": meta.get("precision"), "random_weights": runtime.random_weights, "short_side": side,
        "input_hw": list(runtime.input_hw(frame_hw, side)), "threads": setup.threads})


def _weights_note(setup: TrackingSetup) -> str:
    if setup.weights:
        return setup.weights
    if all(Path(m).exists() for m in setup.models):
        return "as stored in each artifact (see its metadata)"
    return "random (seed 0) for presets: these features are not DINOv3's, their J&F says nothing about DINOv3"


def run(setup: TrackingSetup, log=print) -> dict:
    """Every tracker, then the baselines, on every sequence; J/F/box IoU means over all objects (as DAVIS)."""

    from edgedino.bench.load import busy_warnings
    from edgedino.bench.machine import describe, load_average, versions
    from edgedino.track import TrackParams
    from edgedino.track.davis import read_dataset

    load_before = load_average()
    sequences = read_dataset(resolve_data(setup.data, log))
    hw = sequences[0].frame(0).shape[:2]
    log(f"{len(sequences)} sequences, {sum(len(s.frames) for s in sequences)} frames, first {hw[1]}x{hw[0]}")
    entries = []
    for model, target, precision, side in jobs(setup):
        log(f"{model} {target or ''} {precision or ''} short side {side or 'as exported'}")
        runtime, label = open_runtime(model, setup, target, precision, side, hw, log)
        entries += [evaluate(runtime, label, side, protocol, sequences, setup, log) for protocol in setup.protocols]
    baselines = []
    if setup.baselines:
        log("baselines: no-motion, " + ", ".join(BOX_TRACKERS))
        baselines.append(_entry("no-motion", "first mask copied", [run_no_motion(s) for s in sequences], {}))
        for kind in BOX_TRACKERS:
            baselines.append(_entry(kind, "OpenCV box tracker", [run_box_tracker(s, kind) for s in sequences], {}))
    primary = entries[0] if entries else baselines[0]
    machine, load = describe(), {"start": load_before, "end": load_average()}
    return {"data": setup.data, "sequences": primary["sequences"],
            **{k: primary[k] for k in ("J_mean", "F_mean", "JF_mean", "box_iou_mean", "fps", "ms")},
            "methods": entries, "baselines": baselines,
            "params": {k: v for k, v in asdict(TrackParams()).items() if k != "protocol"},  # protocol: per method
            "threads": setup.threads, "weights": _weights_note(setup),
            "machine": machine, "load_average": load,
            "warnings": busy_warnings(load, machine["cpu"]["cores"], setup.threads, {}), "versions": versions()}
