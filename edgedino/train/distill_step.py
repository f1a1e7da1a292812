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
from edgedino.train import distributed, parallel
from edgedino.train.distill_config import DistillConfig
from edgedino.train.ema import ema_update, frozen_copy
from edgedino.train.losses import DINOLoss, IBOTLoss, koleo_loss, sinkhorn_knopp
from edgedino.train.losses.feature import align_grid, feature_loss, projection
from edgedino.train.optim import param_groups
from edgedino.train.pretrain_step import SSLModel, crop_major, dino_terms, iteration_masks
from edgedino.train.run_state import export_backbone
from edgedino.train.teacher import Teacher


class FeatureStudent(nn.Module):
    """A student backbone with the projections onto the teacher's width (identity when the widths agree)."""

    def __init__(self, backbone: nn.Module, teacher_dim: int):
        super().__init__()
        self.backbone = backbone
        self.cls_proj = projection(backbone.embed_dim, teacher_dim)
        self.patch_proj = projection(backbone.embed_dim, teacher_dim)

    def forward(self, globals_: torch.Tensor, locals_=None, masks=None, picked=None) -> dict[str, torch.Tensor]:
        f = self.backbone.forward_features(globals_)
        return {"cls": f["cls"], "cls_p": self.cls_proj(f["cls"]), "patches_p": self.patch_proj(f["patch_tokens"])}


class Students(nn.Module):
    """Every student in one module, so that one DDP wrapper sees one forward per step."""

    def __init__(self, nets: dict[str, nn.Module]):
        super().__init__()
        self.nets = nn.ModuleDict(nets)

    def forward(self, globals_: torch.Tensor, locals_: torch.Tensor | None, picks: dict) -> dict[str, dict]:
        """Every student on the same crops, unmasked; `picks` names the patches each one's iBOT term scores."""
        return {name: net(globals_, locals_, None, picks.get(name)) for name, net in self.nets.items()}


def build_student(name: str, cfg: DistillConfig, teacher: Teacher, kind: str) -> nn.Module:
    """Student `name` (a preset) with projections (feature targets) or fresh heads, each shaped as the teacher's
    head it learns from (DINO from DINO, iBOT from iBOT: their sizes may differ)."""
    backbone = create_model(name, drop_path=cfg.model.drop_path)
    if kind == "features":
        return FeatureStudent(backbone, teacher.backbone.embed_dim)
    heads = replace(cfg.heads, ibot_separate=teacher.ibot_head is not None)
    patch = teacher.ibot_head.shape if teacher.ibot_head is not None else None
    return SSLModel(backbone, replace(cfg, heads=heads), teacher.dino_head.shape, patch)


class DistillStep:
    """Distillation as a loop `Step`: students and their EMAs are trained and saved; the teacher stays frozen."""

    def __init__(self, cfg: DistillConfig, teacher: Teacher, kind: str, d: distributed.Dist):
        self.cfg, self.teacher, self.kind, self.d = cfg, teacher, kind, d
        torch.manual_seed(cfg.run.seed)
        names = list(cfg.distill.students)
        self.students = Students({n: build_student(n, cfg, teacher, kind) for n in names}).to(d.device)
        self.emas = {n: frozen_copy(self.students.nets[n]) for n in names}
        self.ddp = parallel.prepare(self.students, d, cfg.run, trained=True)
        for ema in self.emas.values():
            parallel.prepare(ema, d, cfg.run, trained=False)
        self.dino_loss, self.ibot_loss = DINOLoss(cfg.loss.student_temp), IBOTLoss(cfg.loss.student_temp)
        parts = ("cls", "patch", "koleo") if kind == "features" else ("dino", "ibot", "koleo")
        self.terms = [f"{n}.{p}" for n in names for p in parts if self._uses(n, p)]

    def _uses(self, name: str, part: str) -> bool:
        if part == "ibot":
            return self.cfg.loss.ibot > 0
        return part != "koleo" or self.cfg.loss.koleo > 0

    @property
    def trained(self) -> nn.Module:
        return self.students

    def continued(self, loaded: set[str]) -> None:
        """Nothing to derive: a continued distillation restores every student and EMA."""

    def modules(self) -> dict[str, nn.Module]:
        return ({f"student.{n}": m for n, m in self.students.nets.items()}
                | {f"ema.{n}": m for n, m in self.emas.items()})

    def param_groups(self) -> list[dict]:
        o = self.cfg.optim
        return [g for net in self.students.nets.values()
                for g in param_groups(net, "backbone.", net.backbone, o.layer_decay, o.patch_embed_lr)]

    def teacher_input(self, batch: dict, globals_: torch.Tensor) -> torch.Tensor:
        """The global crops the teacher sees: the same views at teacher_scale x the side (the loader's "global_hr")."""
        if "global_hr" not in batch:  # teacher_scale 1: the transform made no larger crops
            return globals_
        return crop_major(batch["global_hr"]).to(self.d.device)

    def picks(self, step: int, n_images: int, globals_: torch.Tensor) -> dict[str, torch.Tensor]:
        """The patches each student's iBOT term scores (its own grid), drawn as iBOT masks for the global batch from
        (seed, step, student); the students see every patch (official: distilled students are not masked)."""
        out = {}
        for i, (name, net) in enumerate(self.students.nets.items()):
            if self.kind == "heads" and self._uses(name, "ibot"):
                grid = net.backbone.grid(*globals_.shape[-2:])
                out[name] = iteration_masks(self.cfg, step, 2 + i, n_images, grid, self.d)
        return out

    def loss(self, batch: dict, step: int, sched) -> dict[str, torch.Tensor]:
        n = batch["global"].shape[0]
        globals_ = crop_major(batch["global"]).to(self.d.device)
        use_locals = self.kind == "heads" and batch["local"].shape[1] > 0
        locals_ = crop_major(batch["local"]).to(self.d.device) if use_locals else None
        picks = self.picks(step, n, globals_)
        with torch.no_grad():
            t = self.teacher.backbone.forward_features(self.teacher_input(batch, globals_))
        outs = self.ddp(globals_, locals_, picks)
        terms, total, stds = {}, 0.0, []
        for name, s in outs.items():
            parts = (self.features(s, t) if self.kind == "features"
                     else self.heads(s, t, picks.get(name), n, sched))
            if self.cfg.loss.koleo > 0:
                parts["koleo"] = sum(koleo_loss(c, self.cfg.loss.koleo_group) for c in s["cls"].chunk(2))
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

    def heads(self, s: dict, t: dict, picked, n: int, sched) -> dict[str, torch.Tensor]:
        """DINO on every student crop against the teacher's two globals (the same-view pairs of the global crops
        left out, as the official distillation does), iBOT on the picked patches against the teacher's patch
        scores on the student's grid."""
        temp, iters = sched.teacher_temp, self.cfg.loss.sinkhorn_iterations
        with torch.no_grad():
            t_probs = sinkhorn_knopp(self.teacher.dino_head(t["cls"]), temp, iters)
        out = {"dino": dino_terms(self.dino_loss, s, t_probs, n, sched.local_weight)}
        if picked is not None:
            with torch.no_grad():
                grid = align_grid(t["patch_tokens"], tuple(s["patches"].shape[1:3])).flatten(1, 2)
                t_patch = sinkhorn_knopp(self.teacher.patch_head()(grid[picked]), temp, iters)
            out["ibot"] = self.ibot_loss(s["masked_logits"], t_patch, picked)
        return out

    @torch.no_grad()
    def entropy(self, t: dict, sched) -> dict[str, torch.Tensor]:
        """Normalised entropy of the teacher's softmax (head targets): near 1 means its targets say nothing."""
        if self.kind != "heads":
            return {}
        logits = self.teacher.dino_head(t["cls"]).float() / sched.teacher_temp
        p = logits.softmax(-1)
        return {"teacher_entropy": -(p * logits.log_softmax(-1)).sum(-1).mean() / np.log(p.shape[-1])}

    def update(self, step: int, sched) -> None:
        for name, ema in self.emas.items():
            ema_update(ema, self.students.nets[name], sched.momentum)

    def export(self, out: Path) -> list[Path]:
        """<student>.pth: each student's EMA backbone (every process gathers its shards; the main one writes)."""
        paths = []
        for name, ema in self.emas.items():
            state = parallel.full_state(ema.backbone)
            if self.d.main:
                net = create_model(name)
                net.load_state_dict(state)
                paths.append(export_backbone(net, Path(out) / f"{name}.pth"))
        return paths
