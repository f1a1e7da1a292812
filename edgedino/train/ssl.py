"""The DINOv3 self-supervised step: DINO + iBOT + KoLeo + Gram anchoring, student against an EMA teacher.

Crops are arranged crop-major ([crop 0 of every image, crop 1 of every image, ...]). iBOT masks are drawn for
the GLOBAL batch from (seed, step) and each process takes its rows, so N processes see the masks one would.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from edgedino.models import Backbone, create_model, get_config
from edgedino.train import distributed
from edgedino.train.checkpoint import export_backbone, require_finite
from edgedino.train.config import TrainConfig, fraction
from edgedino.train.ema import ema_update, frozen_copy
from edgedino.train.heads import DINOHead, HeadShape
from edgedino.train.losses import DINOLoss, IBOTLoss, gram_loss, koleo_loss, resize_grid, sinkhorn_knopp
from edgedino.train.masking import masks_for_batch
from edgedino.train.optim import param_groups
from edgedino.train.schedules import at as schedule_at


def build_backbone(cfg: TrainConfig) -> Backbone:
    """The model the config names: a preset, or a preset with `model.arch` fields replaced."""
    arch = get_config(cfg.model.name)
    if cfg.model.arch:
        arch = replace(arch, name="custom", **cfg.model.arch)
    return create_model(arch, drop_path=cfg.model.drop_path)


class SSLModel(nn.Module):
    """Backbone + DINO head (+ iBOT head): one forward over all crops, so DDP sees one call per step.

    The heads' sizes come from `cfg.heads` unless given (distillation sizes each from the teacher's own head)."""

    def __init__(self, backbone: Backbone, cfg: TrainConfig, dino: HeadShape | None = None,
                 ibot: HeadShape | None = None):
        super().__init__()
        h = cfg.heads
        config_shape = HeadShape(h.out_dim, h.hidden, h.bottleneck, h.layers)
        self.backbone = backbone
        self.dino_head = DINOHead(backbone.embed_dim, dino or config_shape, h.norm_last_layer)
        self.ibot_head = (DINOHead(backbone.embed_dim, ibot or dino or config_shape, h.norm_last_layer)
                          if cfg.loss.ibot > 0 and h.ibot_separate else None)

    def patch_head(self) -> nn.Module:
        return self.ibot_head if self.ibot_head is not None else self.dino_head

    def forward(self, globals_: torch.Tensor, locals_: torch.Tensor | None, masks: torch.Tensor | None) -> dict:
        g = self.backbone.forward_features(globals_, masks=masks)
        out = {"cls": g["cls"], "patches": g["patch_tokens"], "global_logits": self.dino_head(g["cls"])}
        if locals_ is not None:
            out["local_logits"] = self.dino_head(self.backbone.forward_features(locals_, local=True)["cls"])
        if masks is not None:
            out["masked_logits"] = self.patch_head()(g["patch_tokens"].flatten(1, 2)[masks])
        return out


def crop_major(x: torch.Tensor) -> torch.Tensor:
    """(B, C, 3, H, W) per image -> (C * B, 3, H, W) crop-major."""
    return x.transpose(0, 1).flatten(0, 1)


class SSLStep:
    """The pretraining recipe as a loop `Step`."""

    def __init__(self, cfg: TrainConfig, d: distributed.Dist):
        self.cfg, self.d = cfg, d
        torch.manual_seed(cfg.run.seed)
        self.student = SSLModel(build_backbone(cfg), cfg).to(d.device)
        self.teacher = frozen_copy(self.student)
        self.gram_teacher = frozen_copy(self.teacher.backbone) if cfg.gram.weight > 0 else None
        self.ddp = distributed.wrap(self.student, d)
        self.dino_loss, self.ibot_loss = DINOLoss(cfg.loss.student_temp), IBOTLoss(cfg.loss.student_temp)
        self.terms = [t for t, w in (("dino", 1), ("ibot", cfg.loss.ibot), ("koleo", cfg.loss.koleo),
                                     ("gram", cfg.gram.weight)) if w]

    def modules(self) -> dict[str, nn.Module]:
        mods = {"student": self.student, "teacher": self.teacher}
        return mods | ({"gram_teacher": self.gram_teacher} if self.gram_teacher is not None else {})

    def param_groups(self) -> list[dict]:
        return param_groups(self.student, "backbone.", self.student.backbone, self.cfg.optim.layer_decay)

    def masks(self, step: int, n_images: int, grid: tuple[int, int]) -> torch.Tensor | None:
        """This process's rows of the masks drawn for the global batch at `step` (crop-major)."""
        if self.cfg.loss.ibot <= 0:
            return None
        rng = np.random.default_rng([self.cfg.run.seed, step, 1])
        world_images = n_images * self.d.world
        m = masks_for_batch(2 * world_images, grid, self.cfg.loss.mask_prob, self.cfg.loss.mask_ratio, rng=rng)
        m = m.reshape(2, world_images, -1)[:, self.d.rank * n_images:(self.d.rank + 1) * n_images]
        return m.flatten(0, 1).to(self.d.device)

    def loss(self, batch: dict, step: int, sched) -> dict[str, torch.Tensor]:
        lc = self.cfg.loss
        dev = self.d.device
        n = batch["global"].shape[0]
        globals_ = crop_major(batch["global"]).to(dev)
        locals_ = crop_major(batch["local"]).to(dev) if batch["local"].shape[1] else None
        masks = self.masks(step, n, self.student.backbone.grid(*globals_.shape[-2:]))
        s = self.ddp(globals_, locals_, masks)
        with torch.no_grad():
            t = self.teacher.backbone.forward_features(globals_)
            t_logits = self.teacher.dino_head(t["cls"])
            t_probs = sinkhorn_knopp(t_logits, sched.teacher_temp, lc.sinkhorn_iterations)
        student_logits = list(s["global_logits"].chunk(2)) + (list(s["local_logits"].chunk(locals_.shape[0] // n))
                                                                if locals_ is not None else [])
        terms = {"dino": self.dino_loss(student_logits, t_probs.chunk(2))}
        total = lc.dino * terms["dino"]
        if masks is not None:
            with torch.no_grad():
                t_masked = self.teacher.patch_head()(t["patch_tokens"].flatten(1, 2)[masks])
                t_patch_probs = sinkhorn_knopp(t_masked, sched.teacher_temp, lc.sinkhorn_iterations)
            terms["ibot"] = self.ibot_loss(s["masked_logits"], t_patch_probs, masks)
            total = total + lc.ibot * terms["ibot"]
        if lc.koleo > 0:
            terms["koleo"] = sum(koleo_loss(c) for c in s["cls"].chunk(2))
            total = total + lc.koleo * terms["koleo"]
        if self.gram_teacher is not None:
            terms["gram"] = self.gram(batch, globals_, s["patches"])
            total = total + sched.gram_weight * terms["gram"]
        return {"loss": total, **terms, **self.monitors(t["cls"], t_logits, t_probs, sched.teacher_temp)}

    def gram(self, batch: dict, globals_: torch.Tensor, student_patches: torch.Tensor) -> torch.Tensor:
        """Gram anchoring against the frozen snapshot; its input is the 2x crops when gram.high_res is set."""
        with torch.no_grad():
            x = crop_major(batch["global_hr"]).to(self.d.device) if self.cfg.gram.high_res else globals_
            target = self.gram_teacher.forward_features(x)["patch_tokens"]
            target = resize_grid(target, tuple(student_patches.shape[1:3]))
        return gram_loss(student_patches, target)

    @torch.no_grad()
    def monitors(self, teacher_cls: torch.Tensor, logits: torch.Tensor, targets: torch.Tensor,
                 temp: float) -> dict[str, torch.Tensor]:
        """Collapse signals: normalised entropies of the teacher's softmax and of its Sinkhorn targets (1 = uniform:
        the DINO loss is then ln K whatever the student does), spread of its L2-normalised CLS."""
        logits = logits.float() / temp
        p = logits.softmax(-1)
        entropy = -(p * logits.log_softmax(-1)).sum(-1).mean() / np.log(p.shape[-1])
        q = targets.float()
        target_entropy = -(q * q.clamp_min(1e-30).log()).sum(-1).mean() / np.log(q.shape[-1])
        cls = nn.functional.normalize(teacher_cls.float(), dim=-1)
        return {"teacher_entropy": entropy, "target_entropy": target_entropy,
                "feature_std": cls.std(0).mean() * cls.shape[-1] ** 0.5}

    def init_from(self, path: str) -> None:
        """Start from an earlier stage: a training checkpoint (its teacher, heads included) or any backbone file."""
        from edgedino.checkpoints import load_checked, read_state_dict
        from edgedino.readers import torch_load
        from edgedino.train.checkpoint import FORMAT

        obj = torch_load(Path(path)) if Path(path).is_file() else None
        if isinstance(obj, dict) and obj.get("format") == FORMAT:
            self.student.load_state_dict(obj["teacher"])
        else:
            load_checked(self.student.backbone, read_state_dict(path)[0])
        require_finite(self.student, f"init={path}")
        self.teacher.load_state_dict(self.student.state_dict())
        if self.gram_teacher is not None:
            self.gram_teacher.load_state_dict(self.teacher.backbone.state_dict())

    def after_backward(self, step: int) -> None:
        """DINO's frozen last layer: no prototype update early on, while every image still looks alike to the
        backbone (the balanced targets are then uniform and would turn the prototypes away from all features)."""
        if step < fraction(self.cfg.heads.freeze_prototypes, self.cfg.run.total_steps):
            for head in (self.student.dino_head, self.student.ibot_head):
                if head is not None:
                    head.last_layer.weight.grad = None

    def update(self, step: int, sched) -> None:
        ema_update(self.teacher, self.student, sched.momentum)
        nxt = step + 1
        if self.gram_teacher is not None and nxt < self.cfg.run.total_steps and schedule_at(self.cfg, nxt).refresh_gram:
            self.gram_teacher.load_state_dict(self.teacher.backbone.state_dict())

    def export(self, out: Path) -> list[Path]:
        return [export_backbone(self.teacher.backbone, Path(out) / "backbone.pth")]

