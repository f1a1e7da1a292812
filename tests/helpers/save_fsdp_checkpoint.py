"""Run under torchrun (2 processes, gloo, CPU): write a sharded DCP checkpoint laid out as an official DINOv3
training run writes one (`{"iteration", "model": student.* + teacher.*, "optimizer"}`, FSDP2-sharded), plus the
teacher's full tensors beside it (<out>.teacher.pt) for the test to compare with.

    python -m torch.distributed.run --nproc_per_node 2 tests/helpers/save_fsdp_checkpoint.py OUT
"""

from __future__ import annotations

import sys

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from torch import nn
from torch.distributed.checkpoint.state_dict import get_model_state_dict, get_optimizer_state_dict
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import fully_shard

from edgedino.models import create_model
from edgedino.train.projection_heads import DINOHead, HeadShape

DINO, IBOT = HeadShape(48, 40, 16, 3), HeadShape(24, 32, 8, 2)


def one_model() -> nn.ModuleDict:
    return nn.ModuleDict({"backbone": create_model("vit_test"), "dino_head": DINOHead(64, DINO),
                          "ibot_head": DINOHead(64, IBOT)})


def main(out: str) -> None:
    dist.init_process_group("gloo")
    mesh = init_device_mesh("cpu", (dist.get_world_size(),))
    torch.manual_seed(0)
    model = nn.ModuleDict({"student": one_model(), "teacher": one_model()})
    for part in model.values():
        for block in part.backbone.blocks:
            fully_shard(block, mesh=mesh)
        for module in part.values():
            fully_shard(module, mesh=mesh)
    optimizer = torch.optim.AdamW(model.student.parameters())
    state = get_model_state_dict(model)
    dcp.save({"iteration": 99, "model": state, "optimizer": get_optimizer_state_dict(model, optimizer)},
             checkpoint_id=out)
    full = {k: v.full_tensor() if hasattr(v, "full_tensor") else v for k, v in state.items()}
    if dist.get_rank() == 0:
        torch.save({k[len("teacher."):]: v for k, v in full.items() if k.startswith("teacher.")}, f"{out}.teacher.pt")
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
