"""The DINOv3 self-supervised step: DINO + iBOT + KoLeo + Gram anchoring, student against an EMA teacher.

Crops are arranged crop-major ([crop 0 of every image, crop 1 of every image, ...]). iBOT masks are drawn for
the GLOBAL batch from (seed, step) and each process takes its rows, so N processes see the masks one would.
"""

from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from edgedino.models import Backbone, create_model, get_config
from edgedino.train import distributed, parallel
from edgedino.train.config import TrainConfig
from edgedino.train.ema import ema_update, frozen_copy
from edgedino.train.losses import DINOLoss, IBOTLoss, gram_loss, koleo_loss, resize_grid, sinkhorn_knopp
from edgedino.train.masking import masks_for_batch
from edgedino.train.optim import param_groups
from edgedino.train.projection_heads import DINOHead, HeadShape
from edgedino.train.run_state import export_backbone, require_finite


def build_backbone(cfg: TrainConfig) -> Backbone:
    """The model the config names: a preset, or a preset with `model.arch` fields replaced."""
    arch = get_config(cfg.model.name)
    if cfg.model.arch:
        arch = replace(arch, name="custom", **cfg.model.arch)
    return create_model(arch, drop_path=cfg.model.drop_path)


class SSLModel(nn.Module):
    """Backbone + DINO head (+ iBOT head): one forward over all crops, so DDP sees one call per step.

    The heads' sizes come from `cfg.heads.dino` / `cfg.heads.ibot` unless given (distillation sizes each from the
    teacher's own head)."""

    def __init__(self, backbone: Backbone, cfg: TrainConfig, dino: HeadShape | None = None,
                 ibot: HeadShape | None = None):
        super().__init__()
        h = cfg.heads
        self.backbone = backbone
        self.dino_head = DINOHead(backbone.embed_dim, dino or HeadShape(**asdict(h.dino)), h.norm_last_layer)
        self.ibot_head = (DINOHead(backbone.embed_dim, ibot or HeadShape(**asdict(h.ibot)), h.norm_last_layer)
                          if cfg.loss.ibot > 0 and h.ibot_separate else None)

    def patch_head(self) -> nn.Module:
        return self.ibot_head if self.ibot_head is not None else self.dino_head

    def forward(self, globals_: torch.Tensor, locals_: torch.Tensor | None, masks: torch.Tensor | None,
                picked: torch.Tensor | None = None) -> dict:
        """Scores for every crop; iBOT scores for the patches `masks` hides from the student (pretraining), or for
        the patches `picked` selects on an unmasked student (distillation)."""
        g = self.backbone.forward_features(globals_, masks=masks)
        out = {"cls": g["cls"], "patches": g["patch_tokens"], "global_logits": self.dino_head(g["cls"])}
        if locals_ is not None:
            out["local_logits"] = self.dino_head(self.backbone.forward_features(fit_stride(locals_, self.backbone),
                                                                                local=True)["cls"])
        chosen = masks if masks is not None else picked
        if chosen is not None:
            out["masked_logits"] = self.patch_head()(g["patch_tokens"].flatten(1, 2)[chosen])
        return out


def fit_stride(x: torch.Tensor, backbone: Backbone) -> torch.Tensor:
    """Crops whose side is not a multiple of the stride lose their last rows and columns, as the official patch
    embedding (a stride-16 convolution) drops them: the high-res stage's 168 px local crops give 10 x 10 patches."""
    s = backbone.stride
    h, w = x.shape[-2:]
    return x[..., :h - h % s, :w - w % s] if h % s or w % s else x


def crop_major(x: torch.Tensor) -> torch.Tensor:
    """(B, C, 3, H, W) per image -> (C * B, 3, H, W) crop-major."""
    return x.transpose(0, 1).flatten(0, 1)


def dino_terms(loss: DINOLoss, s: dict, t_probs: torch.Tensor, n: int, local_weight: float,
               ignore_diagonal: bool = True) -> torch.Tensor:
    """The official DINO objective: the global (student global vs other teacher global) and local (student local vs
    teacher globals) cross-entropies, each weighted by its share of the crop pairs, the local one by local_weight."""
    teacher = t_probs.chunk(2)
    glob = loss(list(s["global_logits"].chunk(2)), teacher, ignore_diagonal=ignore_diagonal)
    n_global = 2 if ignore_diagonal else 4
    if "local_logits" not in s:
        return glob
    locals_ = list(s["local_logits"].chunk(s["local_logits"].shape[0] // n))
    n_local = 2 * len(locals_)
    local = loss(locals_, teacher, ignore_diagonal=False)
    return (n_global * glob + n_local * local_weight * local) / (n_global + n_local)


def iteration_masks(cfg: TrainConfig, step: int, stream: int, n_images: int, grid: tuple[int, int],
                    d: distributed.Dist) -> torch.Tensor:
    """This process's rows of the iBOT masks drawn for the global batch at `step` (crop-major)."""
    rng = np.random.default_rng([cfg.run.seed, step, stream])
    world_images = n_images * d.world
    m = masks_for_batch(2 * world_images, grid, cfg.loss.mask_prob, cfg.loss.mask_ratio, rng=rng)
    m = m.reshape(2, world_images, -1)[:, d.rank * n_images:(d.rank + 1) * n_images]
    return m.flatten(0, 1).to(d.device)


class SSLStep:
    """The pretraining recipe as a loop `Step`."""

    def __init__(self, cfg: TrainConfig, d: distributed.Dist, init: str | None = None):
        self.cfg, self.d = cfg, d
        torch.manual_seed(cfg.run.seed)
        self.student = SSLModel(build_backbone(cfg), cfg).to(d.device)
        if init:
            self.init_from(init)
        self.teacher = frozen_copy(self.student)
        self.gram_teacher = frozen_copy(self.teacher.backbone) if cfg.gram.weight > 0 else None
        self.ddp = parallel.prepare(self.student, d, cfg.run, trained=True)
        for frozen in (self.teacher, self.gram_teacher):
            if frozen is not None:
                parallel.prepare(frozen, d, cfg.run, trained=False)
        self.dino_loss, self.ibot_loss = DINOLoss(cfg.loss.student_temp), IBOTLoss(cfg.loss.student_temp)
        self.terms = [t for t, w in (("dino", 1), ("ibot", cfg.loss.ibot), ("koleo", cfg.loss.koleo),
                                     ("gram", cfg.gram.weight)) if w]

    @property
    def trained(self) -> nn.Module:
        return self.student

    def modules(self) -> dict[str, nn.Module]:
        mods = {"student": self.student, "teacher": self.teacher}
        return mods | ({"gram_teacher": self.gram_teacher} if self.gram_teacher is not None else {})

    def param_groups(self) -> list[dict]:
        o = self.cfg.optim
        return param_groups(self.student, "backbone.", self.student.backbone, o.layer_decay, o.patch_embed_lr)

    def loss(self, batch: dict, step: int, sched) -> dict[str, torch.Tensor]:
        lc = self.cfg.loss
        dev = self.d.device
        n = batch["global"].shape[0]
        globals_ = crop_major(batch["global"]).to(dev)
        locals_ = crop_major(batch["local"]).to(dev) if batch["local"].shape[1] else None
        grid = self.student.backbone.grid(*globals_.shape[-2:])
        masks = iteration_masks(self.cfg, step, 1, n, grid, self.d) if lc.ibot > 0 else None
        s = self.ddp(globals_, locals_, masks)
        with torch.no_grad():
            t = self.teacher.backbone.forward_features(globals_)
            t_logits = self.teacher.dino_head(t["cls"])
            t_probs = sinkhorn_knopp(t_logits, sched.teacher_temp, lc.sinkhorn_iterations)
        terms = {"dino": dino_terms(self.dino_loss, s, t_probs, n, sched.local_weight)}
        total = lc.dino * terms["dino"]
        if masks is not None:
            with torch.no_grad():
                t_masked = self.teacher.patch_head()(t["patch_tokens"].flatten(1, 2)[masks])
                t_patch_probs = sinkhorn_knopp(t_masked, sched.teacher_temp, lc.sinkhorn_iterations)
            terms["ibot"] = self.ibot_loss(s["masked_logits"], t_patch_probs, masks)
            total = total + lc.ibot * terms["ibot"]
        if lc.koleo > 0:
            terms["koleo"] = sum(koleo_loss(c, lc.koleo_group) for c in s["cls"].chunk(2))
            total = total + lc.koleo * terms["koleo"]
        if self.gram_teacher is not None:
            terms["gram"] = self.gram(batch, globals_, s["patches"])
            total = total + sched.gram_weight * terms["gram"]
        return {"loss": total, **terms, **self.monitors(t["cls"], t_logits, t_probs, sched.teacher_temp)}

    def gram(self, batch: dict, globals_: torch.Tensor, student_patches: torch.Tensor) -> torch.Tensor:
        """Gram anchoring against the frozen snapshot; it sees the larger crops ("global_hr") when the Gram teacher
        has its own scale, its patch grid resized to the student's (bicubic, no antialiasing: official)."""
        with torch.no_grad():
            x = crop_major(batch["global_hr"]).to(self.d.device) if "global_hr" in batch else globals_
            target = self.gram_teacher.forward_features(x)["patch_tokens"]
            target = resize_grid(target, tuple(student_patches.shape[1:3]), antialias=False)
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
        """Start a new run from an earlier stage's weights: a training checkpoint (its teacher, heads included) or
        any backbone file. Called before the teacher and Gram teacher are copied: all three start there."""
        from edgedino.checkpoints import load_checked, read_state_dict
        from edgedino.readers import torch_load
        from edgedino.train.run_state import FORMAT

        obj = torch_load(Path(path)) if Path(path).is_file() else None
        if isinstance(obj, dict) and obj.get("format") == FORMAT:
            self.student.load_state_dict(obj["teacher"])
        else:
            load_checked(self.student.backbone, read_state_dict(path)[0])
        require_finite(self.student, f"init={path}")

    def continued(self, loaded: set[str]) -> None:
        """After `continue_from` restored the earlier run's modules: a Gram teacher that run did not have starts
        as the teacher it continues from."""
        if self.gram_teacher is not None and "gram_teacher" not in loaded:
            parallel.copy_weights(self.gram_teacher, self.teacher.backbone)

    def update(self, step: int, sched) -> None:
        from edgedino.train.schedules import gram_refresh

        ema_update(self.teacher, self.student, sched.momentum)
        nxt = step + 1
        if self.gram_teacher is not None and nxt < self.cfg.run.total_steps and gram_refresh(self.cfg, nxt):
            parallel.copy_weights(self.gram_teacher, self.teacher.backbone)

    def export(self, out: Path) -> list[Path]:
        """backbone.pth: the teacher backbone (every process gathers its shards; the main one writes)."""
        state = parallel.full_state(self.teacher.backbone)
        if not self.d.main:
            return []
        net = build_backbone(self.cfg)
        net.load_state_dict(state)
        return [export_backbone(net, Path(out) / "backbone.pth")]
