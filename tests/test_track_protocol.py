"""TrackParams(protocol="dinov3") against an independent PyTorch port of DINOv3's segmentation_tracking notebook
(written here from reading it: circular neighbourhood, one-hot first mask sampled nearest-exact, every key tied with
the k-th kept, softmax over all context frames, nearest upsampling, per-object min-max, argmax), on the same
features: masks identical, probabilities equal to float tolerance. The default protocol stays edgedino's."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from edgedino.errors import EdgeDinoError
from edgedino.track import Tracker, TrackParams
from edgedino.track.notebook import circle_penalty, nearest_min_max, one_hot_labels, propagate_ties
from edgedino.track.synth import SynthConfig, make_sequence

SHORT_SIDE = 320  # 240x320 frames -> a 20x27 patch grid: a radius-12 circle and square differ, neither covers it


# The port: torch, grid tensors (h, w, ...) as the notebook keeps them, object ids used directly as label indices.

def port_near(h: int, w: int, radius: float, p: float = 2.0) -> torch.Tensor:
    """(h*w, h*w) bool: key within distance `radius` (L2 circle; p=inf gives a square) of the query."""
    cells = torch.stack(torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij"), -1).reshape(-1, 2).float()
    return torch.linalg.vector_norm(cells[:, None] - cells[None], ord=p, dim=-1) <= radius


def port_step(query, ctx_feats, ctx_probs, near, k: int, t: float) -> torch.Tensor:
    """query (h, w, D), ctx_feats (T, h, w, D), ctx_probs (T, h, w, M) -> probs (h, w, M)."""
    h, w, _ = query.shape
    sim = torch.einsum("pd,fqd->pfq", query.flatten(0, 1), ctx_feats.flatten(1, 2))
    sim = sim.masked_fill(~near[:, None, :], float("-inf")).flatten(1)
    kth = sim.topk(k, dim=1).values[:, k - 1:k]
    sim = torch.where(sim >= kth, sim, torch.full_like(sim, float("-inf")))
    votes = torch.softmax(sim / t, dim=1) @ ctx_probs.flatten(0, 2)
    return (votes / votes.sum(dim=1, keepdim=True)).reshape(h, w, -1)


def port_first(mask: np.ndarray, grid) -> torch.Tensor:
    small = F.interpolate(torch.from_numpy(mask)[None, None].float(), size=grid, mode="nearest-exact")
    return F.one_hot(small[0, 0].long(), int(mask.max()) + 1).float()


def port_frame(probs: torch.Tensor, size) -> tuple[torch.Tensor, torch.Tensor]:
    """(argmax (H, W), min-max normalised planes (M, H, W))."""
    up = F.interpolate(probs.permute(2, 0, 1)[None], size=size, mode="nearest")[0]
    low, high = up.amin(dim=(1, 2), keepdim=True), up.amax(dim=(1, 2), keepdim=True)
    up = torch.nan_to_num((up - low) / (high - low), nan=0.0)
    return up.argmax(dim=0), up


def port_track(feats: list[torch.Tensor], mask: np.ndarray, context=7, radius=12, k=5, t=0.2, p=2.0):
    """Predicted id masks (H, W) of frames 1.. from unit features (h, w, D) of every frame and the first mask."""
    h, w, _ = feats[0].shape
    near, first = port_near(h, w, radius, p), port_first(mask, (h, w))
    queue, preds = [], []
    for cur in feats[1:]:
        ctx = [(feats[0], first), *queue]
        probs = port_step(cur, torch.stack([c[0] for c in ctx]), torch.stack([c[1] for c in ctx]), near, k, t)
        queue = (queue + [(cur, probs)])[-context:] if context else []
        preds.append(port_frame(probs, mask.shape))
    return preds


@pytest.fixture(scope="module")
def runtime(tmp_path_factory):
    from edgedino import create_model, save_backbone
    from edgedino.runtime import load

    weights = save_backbone(create_model("vit_test").reset_parameters(seed=0),
                            tmp_path_factory.mktemp("protocol") / "vit_test.pt", "edgedino")
    return load(weights, threads=2)


@pytest.fixture(scope="module")
def sequence():
    frames, masks = make_sequence(SynthConfig(frames=12, objects=2, seed=3))
    return frames, np.where(masks[0] == 2, 5, masks[0]).astype(np.uint8)  # ids 1 and 5: labels 2..4 unused


def unit(feats: np.ndarray) -> torch.Tensor:
    return F.normalize(torch.from_numpy(np.ascontiguousarray(feats)), dim=-1)


def test_dinov3_protocol_equals_the_notebook_port_mask_for_mask(runtime, sequence):
    """Our defaults against the notebook's parameters (the port's: context 7, radius 12, top-5, T 0.2) over 11
    frames: the context is full from frame 8 on, so its oldest frame is dropped on the last ones."""
    frames, mask = sequence
    tracker = Tracker(runtime, TrackParams(protocol="dinov3"), short_side=SHORT_SIDE)
    tracker.start(frames[0], mask)
    ours = [tracker.step(f) for f in frames[1:]]
    feats = [unit(runtime.features(f, SHORT_SIDE).patch_tokens[0]) for f in frames]
    assert feats[0].shape[:2] == (20, 27)
    port = port_track(feats, mask)
    for i, (result, (pred, planes)) in enumerate(zip(ours, port, strict=True), 1):
        assert np.array_equal(result.labels, pred.numpy().astype(np.uint8)), f"frame {i}"
        confidence = planes.amax(dim=0).numpy()
        for obj in result.objects:
            inside = result.labels == obj.id
            assert obj.confidence == pytest.approx(float(confidence[inside].mean()) if inside.any() else 0.0,
                                                   abs=1e-5)
    assert {1, 5} <= set(np.unique(np.concatenate([r.labels for r in ours])))  # both objects survive somewhere
    # the comparison can fail: the port with a square neighbourhood, or edgedino's protocol, give other masks
    square = port_track(feats, mask, p=float("inf"))
    assert any(not np.array_equal(r.labels, s[0].numpy()) for r, s in zip(ours, square, strict=True))
    default = Tracker(runtime, short_side=SHORT_SIDE)
    default.start(frames[0], mask)
    assert any(not np.array_equal(r.labels, default.step(f).labels) for r, f in zip(ours, frames[1:], strict=True))


def smooth_features(rng, frames: int, grid, dim: int = 24) -> np.ndarray:
    """(frames, h, w, D) unit features: a smooth random field drifting over time, plus noise."""
    import cv2

    base = cv2.GaussianBlur(rng.standard_normal((*grid, dim)).astype(np.float32), (0, 0), 2.0)
    out = []
    for t in range(frames):
        f = np.roll(base, t, axis=1) + 0.3 * rng.standard_normal(base.shape).astype(np.float32)
        out.append(f / np.linalg.norm(f, axis=-1, keepdims=True))
    return np.stack(out)


def test_dinov3_steps_equal_the_port_on_random_features():
    rng = np.random.default_rng(0)
    grid, frame_hw = (30, 41), (483, 650)  # a frame size that is no multiple of the grid: rounding matters
    feats = smooth_features(rng, 5, grid)
    mask = np.zeros(frame_hw, np.uint8)
    mask[100:300, 80:260], mask[200:420, 400:600], mask[50:90, 500:520] = 1, 2, 3
    ids, n = [1, 2, 3], grid[0] * grid[1]
    first = one_hot_labels(mask, ids, grid)
    assert np.array_equal(first, port_first(mask, grid).numpy())
    near = port_near(*grid, 12)
    assert np.array_equal(circle_penalty(grid, 12) == 0, near.numpy())
    keys, labels = feats[:4].reshape(4, n, -1), np.concatenate([first[None], rng.dirichlet(
        np.ones(4), (3, *grid)).astype(np.float32)]).reshape(4, n, -1)
    ours = propagate_ties(feats[4].reshape(n, -1), keys, labels, circle_penalty(grid, 12), 5, 0.2)
    port = port_step(torch.from_numpy(feats[4]), torch.from_numpy(feats[:4]), torch.from_numpy(labels).reshape(
        4, *grid, -1), near, 5, 0.2)
    np.testing.assert_allclose(ours, port.reshape(n, -1).numpy(), atol=2e-6)
    index, confidence = nearest_min_max(ours.reshape(*grid, -1), frame_hw)
    pred, planes = port_frame(torch.from_numpy(ours.reshape(*grid, -1)), frame_hw)
    assert np.array_equal(index, pred.numpy()) and len(np.unique(index)) == 4
    np.testing.assert_allclose(confidence, planes.amax(dim=0).numpy(), atol=1e-6)


def test_every_key_tied_with_the_kth_is_kept():
    # features from a codebook of vectors with entries 0 or 1/2: dot products are exact, so ties are exact
    rng = np.random.default_rng(1)
    code = np.zeros((6, 16), np.float32)
    for row in code:
        row[rng.choice(16, 4, replace=False)] = 0.5
    grid = (6, 7)
    n = grid[0] * grid[1]
    keys = code[rng.integers(0, 6, (2, n))]
    query = code[rng.integers(0, 6, n)]
    labels = rng.dirichlet(np.ones(3), (2, n)).astype(np.float32)
    ours = propagate_ties(query, keys, labels, None, 5, 0.2)
    port = port_step(torch.from_numpy(query).reshape(*grid, -1), torch.from_numpy(keys).reshape(2, *grid, -1),
                     torch.from_numpy(labels).reshape(2, *grid, -1), port_near(*grid, 99), 5, 0.2)
    np.testing.assert_allclose(ours, port.reshape(n, -1).numpy(), atol=2e-6)
    # with every tie of a patch's own code (each of its copies scores 1) the vote is the mean of their labels
    same = (keys.reshape(2 * n, -1) @ query.T).T == 1
    assert (same.sum(axis=1) > 5).any()
    expected = (same.astype(np.float32) @ labels.reshape(2 * n, -1)) / same.sum(axis=1, keepdims=True)
    rows = same.sum(axis=1) >= 5
    np.testing.assert_allclose(ours[rows], expected[rows], atol=1e-3)


def test_default_protocol_is_edgedinos_and_unknown_ones_are_refused():
    assert TrackParams().protocol == "edgedino"
    with pytest.raises(EdgeDinoError, match="unknown tracking protocol 'davis'.*edgedino, dinov3"):
        TrackParams(protocol="davis")


def test_benchmark_tracking_reports_each_protocol_on_the_same_sequences(runtime, tmp_path, capsys):
    import json

    from edgedino.cli import main
    from edgedino.track.synth import write_dataset

    data, out = tmp_path / "data", tmp_path / "t.json"
    write_dataset(data, 1, SynthConfig(frames=5, objects=2, seed=4))
    assert main(["benchmark", "tracking", "--data", str(data), "--model", str(runtime.path), "--short-side",
                 str(SHORT_SIDE), "--protocol", "edgedino,dinov3", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    rows = report["methods"]
    assert [r["protocol"] for r in rows] == ["edgedino", "dinov3"] and "protocol" not in report["params"]
    assert [s["name"] for s in rows[0]["sequences"]] == [s["name"] for s in rows[1]["sequences"]] == ["synth00"]
    assert all(0 <= r["JF_mean"] <= 1 and r["fps"] > 0 for r in rows)
    table = capsys.readouterr().out.splitlines()
    assert "protocol" in table[4] and [line.split()[1] for line in table[5:7]] == ["edgedino", "dinov3"]
    assert main(["benchmark", "tracking", "--data", str(data), "--model", str(runtime.path), "--protocol",
                 "edgedino,davis"]) == 2
    assert "--protocol davis: unknown (known: edgedino, dinov3)" in capsys.readouterr().err
