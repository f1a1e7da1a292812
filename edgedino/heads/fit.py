"""One head from a labelled folder: features (cached), training, held-out evaluation, pictures, head file."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from edgedino.caption import RANDOM_WEIGHTS
from edgedino.checkpoints import Source
from edgedino.errors import EdgeDinoError
from edgedino.heads.cache import head_inputs
from edgedino.heads.data import load_dataset
from edgedino.heads.evaluate import Evaluation, evaluate_classify, evaluate_segment
from edgedino.heads.head import Head, HeadConfig
from edgedino.heads.pictures import confusion_png, overlay_pngs
from edgedino.heads.store import BackboneRecord, save_head
from edgedino.heads.train import TrainConfig, patch_targets, train_head
from edgedino.models import Backbone


@dataclass
class FitConfig:
    task: str
    data: Path
    out: Path  # the head file
    kind: str = "linear"
    hidden: int = 256
    imgsz: tuple[int, int] = (224, 224)
    val_fraction: float = 0.2
    cache_dir: Path | None = None  # feature cache; None computes features every run
    report_dir: Path | None = None  # pictures; None: beside the head file, <out stem>_eval/
    train: TrainConfig = field(default_factory=TrainConfig)

    @property
    def pictures_dir(self) -> Path:
        return self.report_dir or self.out.with_name(self.out.stem + "_eval")


@dataclass
class FitResult:
    evaluation: Evaluation
    head_path: Path
    pictures: list[Path]
    train_images: int
    loss: float
    seconds: dict[str, float]  # "features", "training", "evaluation"


def fit_head(cfg: FitConfig, backbone: Backbone, log: Callable[[str], None] = print) -> FitResult:
    """Train a head of cfg.kind for cfg.task on the frozen backbone; a random backbone is reseeded first, so
    export can rebuild it exactly."""
    if cfg.out.suffix not in (".pth", ".pt"):
        raise EdgeDinoError(f"--save {cfg.out}: a head file is a .pth (or .pt)")
    data = load_dataset(cfg.task, cfg.data, cfg.val_fraction, cfg.train.seed)
    torch.manual_seed(cfg.train.seed)  # the head's initial weights: the same features give the same head
    head = Head(HeadConfig(cfg.task, cfg.kind, backbone.embed_dim, data.classes, cfg.hidden))
    backbone.grid(*cfg.imgsz)
    random = getattr(backbone.source, "path", None) is None
    if random:
        backbone.reset_parameters(seed=cfg.train.seed)
        backbone.source = Source(None, "random", seed=cfg.train.seed)
    backbone.eval()
    record = BackboneRecord.of(backbone, cfg.imgsz, cfg.train.seed)
    log(f"{data.root}: {len(data.classes)} classes, {len(data.train.images)} training and "
        f"{len(data.val.images)} held-out images; backbone {record.describe()} at {cfg.imgsz[0]}x{cfg.imgsz[1]}")
    t0 = time.perf_counter()
    x_train = head_inputs(backbone, record.digest, cfg.task, data.train.images, cfg.imgsz, cfg.cache_dir, log)
    x_val = head_inputs(backbone, record.digest, cfg.task, data.val.images, cfg.imgsz, cfg.cache_dir, log)
    t1 = time.perf_counter()
    if cfg.task == "classify":
        y = np.asarray(data.train.targets)
    else:
        y = patch_targets(data.train.targets, x_train.shape[1:3], len(data.classes))
    log(f"training a {cfg.kind} {cfg.task} head ({cfg.train.steps} steps)")
    loss = train_head(head, x_train, y, cfg.train, log)
    t2 = time.perf_counter()
    out_dir, note = cfg.pictures_dir, RANDOM_WEIGHTS if random else None
    if cfg.task == "classify":
        ev = evaluate_classify(head, x_val, data.val.targets)
        pictures = []
    else:
        ev, preds = evaluate_segment(head, x_val, data.val.targets)
        pictures = overlay_pngs(data.val.images, data.val.targets, preds, data.classes, out_dir, note=note)
    pictures.insert(0, confusion_png(ev, out_dir / "confusion.png", note))
    t3 = time.perf_counter()
    metrics = {**{k: v for k, v in ev.to_dict().items() if k != "confusion"}, "loss": loss,
               "train_images": len(data.train.images), "data": str(data.root)}
    save_head(cfg.out, head, record, metrics)
    return FitResult(ev, cfg.out, pictures, len(data.train.images), loss,
                     {"features": t1 - t0, "training": t2 - t1, "evaluation": t3 - t2})
