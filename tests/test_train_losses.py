"""DINOv3 losses against hand-computed values and exact properties, and their 2-process (gloo) equivalence."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from edgedino.train import DINOHead, DINOLoss, IBOTLoss, gram_loss, koleo_loss, resize_grid, sinkhorn_knopp
from edgedino.train.projection_heads import HeadShape


def test_sinkhorn_one_iteration_by_hand():
    # exp(logits) = [[1, 2], [1, 1]]; worked through one prototype step and one sample step on paper.
    probs = sinkhorn_knopp(torch.tensor([[0.0, math.log(2.0)], [0.0, 0.0]]), temperature=1.0, iterations=1)
    assert torch.allclose(probs, torch.tensor([[3 / 7, 4 / 7], [0.6, 0.4]]), atol=1e-6)


def test_sinkhorn_rows_and_columns():
    logits = torch.randn(64, 16, generator=torch.Generator().manual_seed(0))
    probs = sinkhorn_knopp(logits, temperature=0.5, iterations=3)
    assert torch.allclose(probs.sum(dim=1), torch.ones(64), atol=1e-5)  # every sample a distribution
    balanced = sinkhorn_knopp(logits, temperature=0.5, iterations=200)
    assert torch.allclose(balanced.sum(dim=0), torch.full((16,), 64 / 16), rtol=1e-3)  # prototypes equally used
    raw = torch.softmax(logits / 0.5, dim=1).sum(dim=0)
    assert probs.sum(dim=0).std() < raw.std() / 2  # 3 iterations already balance the prototypes a lot
    assert torch.allclose(sinkhorn_knopp(logits + 7.0, 0.5), probs, atol=1e-6)  # a constant shift changes nothing


def _ce(student: torch.Tensor, teacher: torch.Tensor, temp: float) -> torch.Tensor:
    return -(teacher * F.log_softmax(student / temp, dim=-1)).sum(-1)


def test_dino_loss_of_a_distribution_against_itself_is_its_entropy():
    p = torch.softmax(torch.randn(5, 11, generator=torch.Generator().manual_seed(1)), dim=-1)
    loss = DINOLoss(student_temp=0.1)(torch.log(p)[None] * 0.1, p[None], ignore_diagonal=False)
    entropy = -(p * p.log()).sum(-1).mean()
    assert torch.allclose(loss, entropy, atol=1e-5)


def test_dino_loss_pairs_exclude_same_view():
    g = torch.Generator().manual_seed(2)
    student = [torch.randn(4, 7, generator=g) for _ in range(3)]  # 2 globals, then 1 local
    teacher = [torch.softmax(torch.randn(4, 7, generator=g), -1) for _ in range(2)]
    pairs = [(0, 1), (1, 0), (2, 0), (2, 1)]
    expected = sum(_ce(student[s], teacher[t], 0.1).mean() for s, t in pairs) / len(pairs)
    assert torch.allclose(DINOLoss()(student, teacher), expected, atol=1e-5)
    everything = sum(_ce(student[s], teacher[t], 0.1).mean() for s in range(3) for t in range(2)) / 6
    assert torch.allclose(DINOLoss()(torch.stack(student), torch.stack(teacher), ignore_diagonal=False), everything)


def test_ibot_loss_normalised_per_image():
    mask = torch.zeros(3, 9, dtype=torch.bool)
    mask[0, 4] = True  # image 0: one masked patch
    mask[1, :4] = True  # image 1: four; image 2: none
    g = torch.Generator().manual_seed(3)
    student = torch.randn(5, 6, generator=g)
    teacher = torch.softmax(torch.randn(5, 6, generator=g), -1)
    ce = _ce(student, teacher, 0.1)
    expected = (ce[0] + ce[1:].mean() + 0.0) / 3  # each image's mean, averaged over all 3 images
    assert torch.allclose(IBOTLoss()(student, teacher, mask), expected, atol=1e-6)
    with pytest.raises(ValueError, match="masked patches"):
        IBOTLoss()(student[:4], teacher[:4], mask)


def test_gram_loss_zero_when_identical_and_grows_with_perturbation():
    g = torch.Generator().manual_seed(4)
    feats = torch.randn(2, 3, 4, 8, generator=g)
    assert gram_loss(feats, feats).item() == 0.0
    assert gram_loss(feats * 3.0, feats).item() < 1e-12  # features are L2-normalised first
    noise = torch.randn(feats.shape, generator=g)
    losses = [gram_loss(feats + s * noise, feats).item() for s in (0.01, 0.1, 0.5, 2.0)]
    assert 0 < losses[0] < losses[1] < losses[2] < losses[3]
    # tokens [1,0],[0,1] (Gram = I) against [1,0],[1,0] (Gram = all ones): two of four entries off by 1.
    assert gram_loss(torch.eye(2)[None], torch.tensor([[[1.0, 0.0], [1.0, 0.0]]])).item() == pytest.approx(0.5)


def test_resize_grid():
    grid = torch.randn(2, 8, 6, 5)
    assert resize_grid(grid, (8, 6)) is grid
    assert resize_grid(grid, (4, 3)).shape == (2, 4, 3, 5)
    constant = torch.full((1, 8, 8, 3), 0.7)
    assert torch.allclose(resize_grid(constant, (4, 4)), torch.full((1, 4, 4, 3), 0.7), atol=1e-5)


def test_koleo_by_hand_and_falls_as_points_spread():
    square = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])
    assert koleo_loss(square).item() == pytest.approx(-math.log(math.sqrt(2.0)), abs=1e-5)
    g = torch.Generator().manual_seed(5)
    base = torch.randn(1, 16, generator=g)
    noise = torch.randn(32, 16, generator=g)
    losses = [koleo_loss(base + s * noise).item() for s in (0.01, 0.1, 1.0, 10.0)]
    assert losses[0] > losses[1] > losses[2] > losses[3]


def test_dino_head_scores_and_frozen_prototype_norm():
    head = DINOHead(in_dim=12, shape=HeadShape(out_dim=40, hidden=16, bottleneck=8, layers=3), norm_last_layer=True)
    x = torch.randn(5, 12)
    scores = head(x)
    assert scores.shape == (5, 40) and scores.abs().max() <= 1.0 + 1e-6
    before = scores.detach().clone()
    with torch.no_grad():
        head.last_layer.weight.mul_(torch.rand(40, 1) * 5 + 0.1)  # prototype norms do not matter: frozen at 1
    assert torch.allclose(head(x), before, atol=1e-6)
    head(x).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in head.parameters())
    assert DINOHead(12, HeadShape(40, 16, 8, layers=1))(x).shape == (5, 40)


def test_dino_head_official_maths_and_keys():
    """The official head: mlp.0/2/4 with GELU between, L2-normalised bottleneck, then a free linear last layer
    (no bias, no row normalisation), under the official state_dict names."""
    head = DINOHead(in_dim=12, shape=HeadShape(out_dim=40, hidden=16, bottleneck=8, layers=3))
    assert list(head.state_dict()) == ["mlp.0.weight", "mlp.0.bias", "mlp.2.weight", "mlp.2.bias", "mlp.4.weight",
                                       "mlp.4.bias", "last_layer.weight"]
    sd = {k: torch.randn_like(v) for k, v in head.state_dict().items()}
    head.load_state_dict(sd)
    x = torch.randn(5, 12)
    h = torch.nn.functional.gelu(x @ sd["mlp.0.weight"].T + sd["mlp.0.bias"])
    h = torch.nn.functional.gelu(h @ sd["mlp.2.weight"].T + sd["mlp.2.bias"])
    z = h @ sd["mlp.4.weight"].T + sd["mlp.4.bias"]
    want = (z / z.norm(dim=-1, keepdim=True)) @ sd["last_layer.weight"].T
    assert torch.allclose(head(x), want, atol=1e-5)
    assert want.abs().max() > 1.0  # unconstrained: a free last layer is not bounded by the unit sphere
    assert HeadShape.read({f"ibot_head.{k}": v for k, v in sd.items()}, "ibot_head.") == HeadShape(40, 16, 8, 3)
    assert HeadShape.read(sd, "dino_head.") is None


SPLITS = ([4, 4], [3, 5])  # rows of the 8 teacher samples on rank 0 and rank 1: even, and uneven as iBOT's can be


def _distributed_worker(rank: int, world: int, init: str, out: str) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    logits, feats = _shared_inputs()
    probs = [sinkhorn_knopp(logits[sum(s[:rank]):sum(s[: rank + 1])], temperature=0.07) for s in SPLITS]
    half = feats.shape[0] // world
    local = feats[rank * half:(rank + 1) * half].clone().requires_grad_(True)
    loss = koleo_loss(local, group=feats.shape[0])  # neighbours among every process's rows
    loss.backward()
    own = koleo_loss(feats[rank * half:(rank + 1) * half])  # the default: this process's rows only
    torch.save({"probs": probs, "koleo": loss.detach(), "grad": local.grad, "own": own}, f"{out}/rank{rank}.pt")
    dist.destroy_process_group()


def _shared_inputs() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(6)
    return torch.randn(8, 5, generator=g), torch.randn(12, 6, generator=g)


def test_two_process_sinkhorn_and_koleo_equal_one_process(tmp_path):
    import torch.multiprocessing as mp

    mp.spawn(_distributed_worker, args=(2, f"file://{tmp_path}/rendezvous", str(tmp_path)), nprocs=2)
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]
    logits, feats = _shared_inputs()
    for i in range(len(SPLITS)):
        assert torch.allclose(torch.cat([r["probs"][i] for r in ranks]), sinkhorn_knopp(logits, 0.07), atol=1e-6)
    feats = feats.clone().requires_grad_(True)
    single = koleo_loss(feats)
    single.backward()
    assert torch.allclose((ranks[0]["koleo"] + ranks[1]["koleo"]) / 2, single, atol=1e-6)
    # DDP averages gradients over the 2 processes: that average must be the single-process gradient.
    assert torch.allclose(torch.cat([r["grad"] for r in ranks]) / 2, feats.grad, atol=1e-6)
    # per process (official default): each process's loss is KoLeo of its own 6 rows, which one process gets with
    # groups of 6, and which differs from the search over all 12
    for r, half in zip(ranks, feats.detach().chunk(2), strict=True):
        assert torch.allclose(r["own"], koleo_loss(half), atol=1e-6)
    per_process = (ranks[0]["own"] + ranks[1]["own"]) / 2
    assert torch.allclose(per_process, koleo_loss(feats.detach(), group=6), atol=1e-6)
    assert not torch.allclose(per_process, single, atol=1e-3)


def test_losses_stay_fp32_inside_bf16_autocast():
    g = torch.Generator().manual_seed(7)
    feats, other = torch.randn(2, 16, 8, generator=g), torch.randn(2, 16, 8, generator=g)
    logits, probs = torch.randn(3, 4, 50, generator=g), torch.softmax(torch.randn(2, 4, 50, generator=g), -1)
    expected = (gram_loss(feats, other), koleo_loss(feats[0]), DINOLoss()(logits, probs))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = (gram_loss(feats, other), koleo_loss(feats[0]), DINOLoss()(logits, probs))
    for e, o in zip(expected, got, strict=True):
        assert o.dtype == torch.float32 and torch.allclose(e, o, rtol=1e-6)
