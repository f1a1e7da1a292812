"""The distillation step: one frozen teacher pass per batch, several students learning from it, an EMA each.

Targets are the teacher's Sinkhorn-centred DINO/iBOT prototype scores when its checkpoint has heads (the DINOv3
recipe), else its CLS and patch tokens (feature targets, losses/feature.py). With distill.teacher_scale = 2 the
teacher sees the same global views at twice the side (the loader's "global_hr" crops) and its patch grid is
aligned to each student's. Each student's EMA is what `export` writes, as `<out>/<student>.pth`.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from edgedino.models import create_model
from edgedino.train import distributed
from edgedino.train.checkpoint import export_backbone
from edgedino.train.config import fraction
from edgedino.train.distill_config import DistillConfig
from edgedino.train.ema import ema_update, frozen_copy
from edgedino.train.losses import DINOLoss, IBOTLoss, koleo_loss, sinkhorn_knopp
from edgedino.train.losses.feature import align_grid, feature_loss, projection
from edgedino.train.masking import masks_for_batch
from edgedino.train.optim import param_groups
from edgedino.train.ssl import SSLModel, crop_major
from edgedino.train.teacher import Teacher


class FeatureStudent(nn.Module):
    """A student backbone with the projections onto the teacher's width (identity when the widths agree)."""

    def __init__(self, backbone: nn.Module, teacher_dim: int):
        super().__init__()
        self.backbone = backbone
        self.cls_proj = projection(backbone.embed_dim, teacher_dim)
        self.patch_proj = projection(backbone.embed_dim, teacher_dim)

    def forward(self, globals_: torch.Tensor, locals_=None, masks=None) -> dict[str, torch.Tensor]:
        f = self.backbone.forward_features(globals_)
        return {"cls": f["cls"], "cls_p": self.cls_proj(f["cls"]), "patches_p": self.patch_proj(f["patch_tokens"])}


class Students(nn.Module):
    """Every student in one module, so that one DDP wrapper sees one forward per step."""

    def __init__(self, nets: dict[str, nn.Module]):
        super().__init__()
        self.nets = nn.ModuleDict(nets)

    def forward(self, globals_: torch.Tensor, locals_: torch.Tensor | None, masks: dict) -> dict[str, dict]:
        return {name: net(globals_, locals_, masks.get(name)) for name, net in self.nets.items()}


def build_student(name: str, cfg: DistillConfig, teacher: Teacher, kind: str) -> nn.Module:
    """Student `name` (a preset) with projections (feature targets) or fresh heads, each shaped as the teacher's
    head it learns from (DINO from DINO, iBOT from iBOT: their sizes may differ)."""
    backbone = create_model(name, drop_path=cfg.model.drop_path)
    if kind == "features":
        return FeatureStudent(backbone, teacher.backbone.embed_dim)
    ibot = cfg.loss.ibot if backbone.cfg.family == "vit" else 0.0  # ConvNeXt has no mask token: no iBOT
    heads = replace(cfg.heads, ibot_separate=teacher.ibot_head is not None)
    patch = teacher.ibot_head.shape if teacher.ibot_head is not None else None
    return SSLModel(backbone, replace(cfg, heads=heads, loss=replace(cfg.loss, ibot=ibot)),
                    teacher.dino_head.shape, patch)


class DistillStep:
    """Distillation as a loop `Step`: students and their EMAs are trained and saved; the teacher stays frozen."""

    def __init__(self, cfg: DistillConfig, teacher: Teacher, kind: str, d: distributed.Dist):
        self.cfg, self.teacher, self.kind, self.d = cfg, teacher, kind, d
        torch.manual_seed(cfg.run.seed)
        names = list(cfg.distill.students)
        self.students = Students({n: build_student(n, cfg, teacher, kind) for n in names}).to(d.device)
        self.emas = {n: frozen_copy(self.students.nets[n]) for n in names}
        self.ddp = distributed.wrap(self.students, d)
        self.dino_loss, self.ibot_loss = DINOLoss(cfg.loss.student_temp), IBOTLoss(cfg.loss.student_temp)
        parts = ("cls", "patch", "koleo") if kind == "features" else ("dino", "ibot", "koleo")
        self.terms = [f"{n}.{p}" for n in names for p in parts if self._uses(n, p)]

    def _uses(self, name: str, part: str) -> bool:
        if part == "ibot":
            return self.cfg.loss.ibot > 0 and self.students.nets[name].backbone.cfg.family == "vit"
        return part != "koleo" or self.cfg.loss.koleo > 0

    def modules(self) -> dict[str, nn.Module]:
        return ({f"student.{n}": m for n, m in self.students.nets.items()}
                | {f"ema.{n}": m for n, m in self.emas.items()})

    def param_groups(self) -> list[dict]:
        decay = self.cfg.optim.layer_decay
        return [g for net in self.students.nets.values() for g in param_groups(net, "backbone.", net.backbone, decay)]

    def teacher_input(self, batch: dict, globals_: torch.Tensor) -> torch.Tensor:
        """The global crops the teacher sees: the same views at teacher_scale x the side (the loader's "global_hr")."""
        if "global_hr" not in batch:  # teacher_scale 1: the transform made no larger crops
            return globals_
        return crop_major(batch["global_hr"]).to(self.d.device)

    def masks(self, step: int, n_images: int, globals_: torch.Tensor) -> dict[str, torch.Tensor]:
        """iBOT masks per ViT student (its own grid), drawn for the global batch from (seed, step, student)."""
        out = {}
        for i, (name, net) in enumerate(self.students.nets.items()):
            if self.kind == "features" or not self._uses(name, "ibot"):
                continue
            rng = np.random.default_rng([self.cfg.run.seed, step, 2 + i])
            world = n_images * self.d.world
            grid = net.backbone.grid(*globals_.shape[-2:])
            m = masks_for_batch(2 * world, grid, self.cfg.loss.mask_prob, self.cfg.loss.mask_ratio, rng=rng)
            m = m.reshape(2, world, -1)[:, self.d.rank * n_images:(self.d.rank + 1) * n_images]
            out[name] = m.flatten(0, 1).to(self.d.device)
        return out

    def loss(self, batch: dict, step: int, sched) -> dict[str, torch.Tensor]:
        n = batch["global"].shape[0]
        globals_ = crop_major(batch["global"]).to(self.d.device)
        use_locals = self.kind == "heads" and batch["local"].shape[1] > 0
        locals_ = crop_major(batch["local"]).to(self.d.device) if use_locals else None
        masks = self.masks(step, n, globals_)
        with torch.no_grad():
            t = self.teacher.backbone.forward_features(self.teacher_input(batch, globals_))
        outs = self.ddp(globals_, locals_, masks)
        terms, total, stds = {}, 0.0, []
        for name, s in outs.items():
            parts = (self.features(s, t) if self.kind == "features"
                     else self.heads(s, t, masks.get(name), n, locals_, sched))
            if self.cfg.loss.koleo > 0:
                parts["koleo"] = sum(koleo_loss(c) for c in s["cls"].chunk(2))
            weights = self.weights()
            total = total + sum(weights[p] * v for p, v in parts.items())
            terms.update({f"{name}.{p}": v for p, v in parts.items()})
            cls = nn.functional.normalize(s["cls"].detach().float(), dim=-1)
            stds.append(cls.std(0).mean() * cls.shape[-1] ** 0.5)
        return {"loss": total, **terms, "feature_std": torch.stack(stds).min(), **self.entropy(t, sched)}

    def weights(self) -> dict[str, float]:
        dc, lc = self.cfg.distill, self.cfg.loss
        return {"cls": dc.cls_weight, "patch": dc.patch_weight, "dino": lc.dino, "ibot": lc.ibot, "koleo": lc.koleo}

    def features(self, s: dict, t: dict) -> dict[str, torch.Tensor]:
        dc = self.cfg.distill
        return feature_loss(s["cls_p"], s["patches_p"], t["cls"], t["patch_tokens"], dc.cosine, dc.smooth_l1)

    def heads(self, s: dict, t: dict, masks, n: int, locals_, sched) -> dict[str, torch.Tensor]:
        """DINO on every student crop against the teacher's two globals (same view included: the teacher is fixed),
        iBOT on the masked patches against the teacher's patch scores on the student's grid."""
        temp, iters = sched.teacher_temp, self.cfg.loss.sinkhorn_iterations
        with torch.no_grad():
            t_probs = sinkhorn_knopp(self.teacher.dino_head(t["cls"]), temp, iters)
        logits = list(s["global_logits"].chunk(2))
        logits += list(s["local_logits"].chunk(locals_.shape[0] // n)) if locals_ is not None else []
        out = {"dino": self.dino_loss(logits, t_probs.chunk(2), ignore_diagonal=False)}
        if masks is not None:
            with torch.no_grad():
                grid = align_grid(t["patch_tokens"], tuple(s["patches"].shape[1:3])).flatten(1, 2)
                t_patch = sinkhorn_knopp(self.teacher.patch_head()(grid[masks]), temp, iters)
            out["ibot"] = self.ibot_loss(s["masked_logits"], t_patch, masks)
        return out

    @torch.no_grad()
    def entropy(self, t: dict, sched) -> dict[str, torch.Tensor]:
        """Normalised entropy of the teacher's softmax (head targets): near 1 means its targets say nothing."""
        if self.kind != "heads":
            return {}
        logits = self.teacher.dino_head(t["cls"]).float() / sched.teacher_temp
        p = logits.softmax(-1)
        return {"teacher_entropy": -(p * logits.log_softmax(-1)).sum(-1).mean() / np.log(p.shape[-1])}

    def after_backward(self, step: int) -> None:
        """Head targets: the students' prototypes stay frozen for heads.freeze_prototypes of the run, as in SSL."""
        if self.kind != "heads" or step >= fraction(self.cfg.heads.freeze_prototypes, self.cfg.run.total_steps):
            return
        for net in self.students.nets.values():
            for head in (net.dino_head, net.ibot_head):
                if head is not None:
                    head.last_layer.weight.grad = None

    def update(self, step: int, sched) -> None:
        for name, ema in self.emas.items():
            ema_update(ema, self.students.nets[name], sched.momentum)

    def export(self, out: Path) -> list[Path]:
        return [export_backbone(ema.backbone, Path(out) / f"{name}.pth") for name, ema in self.emas.items()]
