"""Training data: sources, video frames at a stride, corrupt files skipped and counted, a deterministic stream."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from edgedino.data import (
    DataConfig,
    ImageDataset,
    MixedSampler,
    collate_skip,
    index,
    index_source,
    make_loader,
    parse_source,
    parse_sources,
)
from edgedino.data.video import VideoFrames
from edgedino.errors import EdgeDinoError
from edgedino.train import MultiCrop, MultiCropConfig

SMALL = MultiCropConfig(global_size=32, local_size=16, n_local=2)


def _video(path, frames: int = 30, size: tuple[int, int] = (64, 48)) -> None:
    """A clip whose frame i is a flat grey of level 8 * i, so a decoded frame tells its index."""
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, size)
    assert writer.isOpened()
    for i in range(frames):
        writer.write(np.full((size[1], size[0], 3), 8 * i, np.uint8))
    writer.release()


@pytest.fixture
def folder(tmp_path, image_paths):
    root = tmp_path / "images"
    (root / "sub").mkdir(parents=True)
    for p in image_paths[:3]:
        shutil.copy(p, root / p.name)
    shutil.copy(image_paths[3], root / "sub" / "nested.jpg")
    (root / "notes.txt").write_text("not an image source")
    return root


def _keep_image(rgb, rng):
    return torch.from_numpy(np.ascontiguousarray(rgb[:8, :8])).clone()


def test_parse_sources(folder, tmp_path):
    _video(tmp_path / "clip.avi")
    (tmp_path / "list.txt").write_text("images/sub/nested.jpg\n# a comment\n\n")
    video, listed, weighted = parse_sources([f"{tmp_path}/clip.avi:stride=5", f"{tmp_path}/list.txt",
                                             f"{folder}:weight=2"])
    assert (video.kind, video.video_stride, listed.kind, weighted.kind, weighted.weight) == (
        "video", 5, "list", "folder", 2.0)
    assert index_source(listed) == [(str(folder / "sub" / "nested.jpg"), -1)]
    assert len(index([weighted, listed])) == 5  # 4 images (recursive, .txt ignored) + 1 listed
    for bad, message in [(f"{tmp_path}/missing", "not found"), (f"{folder}:weigth=2", "unknown option"),
                         (f"{folder}:weight=0", "weight must be"), (f"{folder}:stride=3", "videos only"),
                         (f"{tmp_path}/clip.avi:stride=x", "clip.avi")]:
        with pytest.raises(EdgeDinoError, match=message):
            parse_source(bad)
    with pytest.raises(EdgeDinoError, match="no data sources"):
        parse_sources([])


def test_video_frames_sampled_at_a_stride(tmp_path):
    _video(tmp_path / "clip.avi", frames=30)
    items = index_source(parse_source(f"{tmp_path}/clip.avi:stride=7"))
    assert [f for _, f in items] == [0, 7, 14, 21, 28]
    data = ImageDataset(items, _keep_image)
    seeking = ImageDataset(items, _keep_image)
    seeking.videos = VideoFrames({str(tmp_path / "clip.avi"): [f for _, f in items]}, budget=0)
    for i in (3, 1, 2, 4, 0):  # from the in-memory cache, and by seeking when the cache budget is spent
        for d in (data, seeking):
            level = d[i]["image"].float().mean().item()
            assert abs(level - 8 * items[i][1]) < 4, (i, level)
    assert len(data.videos.cached) == 5 and not seeking.videos.cached


def test_corrupt_files_skipped_counted_and_reported(folder, tmp_path):
    good = (folder / "sub" / "nested.jpg").read_bytes()
    (folder / "truncated.jpg").write_bytes(good[: len(good) // 2])
    (folder / "text.png").write_text("this is not a PNG")
    reports = []
    stream = make_loader(DataConfig([str(folder)], workers=2), MultiCrop(SMALL), batch_size=3, seed=0,
                         report=reports.append)
    images = sum(next(stream)["global"].shape[0] for _ in range(4))  # 12 draws = 2 epochs of 6 items
    assert images == 8 and stream.skips.total == 4
    assert len(reports) == 1 and "epoch 0: skipped 2" in reports[0]  # epoch 1 is reported when epoch 2 starts
    assert "truncated.jpg (truncated JPEG" in reports[0] and "text.png (not an image" in reports[0]
    for p in folder.glob("*.jpg"):
        p.write_bytes(b"")
    (folder / "sub" / "nested.jpg").write_bytes(b"")
    with pytest.raises(EdgeDinoError, match="no readable image"):
        next(make_loader(DataConfig([str(folder)], workers=0), MultiCrop(SMALL), 3, seed=0))


def test_sampler_deterministic_resumable_and_weighted():
    sampler = MixedSampler([5, 3], [1.0, 2.0], seed=3)
    stream = [sampler.draw(p) for p in range(40)]
    assert stream == [MixedSampler([5, 3], [1.0, 2.0], seed=3).draw(p) for p in range(40)]
    assert stream != [MixedSampler([5, 3], [1.0, 2.0], seed=4).draw(p) for p in range(40)]
    resumed = iter(MixedSampler([5, 3], [1.0, 2.0], seed=3, start=17))
    assert [next(resumed) for _ in range(23)] == stream[17:]
    first_epoch = sorted(d.index for d in stream[:11])  # 5 + 2 * 3 draws
    assert first_epoch == [0, 1, 2, 3, 4, 5, 5, 6, 6, 7, 7]  # weight 2: each item of source 2 twice per epoch
    assert sorted(d.index for d in stream[11:22]) == first_epoch
    assert [d.index for d in stream[:11]] != [d.index for d in stream[11:22]]  # reshuffled every epoch


def test_ranks_get_disjoint_shards_that_make_the_single_process_batch():
    single = MixedSampler([13], [1.0], seed=1, batch_size=8)
    ranks = [MixedSampler([13], [1.0], seed=1, rank=r, world_size=2, batch_size=4) for r in range(2)]
    for step in range(5):
        parts = [[s.draw(step * 4 + i) for i in range(4)] for s in ranks]
        assert not {d.position for d in parts[0]} & {d.position for d in parts[1]}
        assert parts[0] + parts[1] == [single.draw(step * 8 + i) for i in range(8)]


def test_loader_resumes_at_a_step(folder):
    cfg = DataConfig([str(folder), str(folder) + ":weight=0.5"], workers=2)
    fresh = make_loader(cfg, MultiCrop(SMALL), batch_size=2, seed=5)
    batches = [next(fresh) for _ in range(4)]
    resumed = make_loader(cfg, MultiCrop(SMALL), batch_size=2, seed=5, start_step=2)
    for want in batches[2:]:
        got = next(resumed)
        assert torch.equal(got["position"], want["position"])
        assert torch.equal(got["global"], want["global"]) and torch.equal(got["local"], want["local"])
    assert batches[0]["global"].shape == (2, 2, 3, 32, 32) and batches[0]["local"].shape == (2, 2, 3, 16, 16)
    assert resumed.position == 8


def test_collate_skip_stacks_and_drops():
    a = {"x": torch.zeros(2), "position": torch.tensor(0)}
    batch = collate_skip([a, None, a])
    assert batch["x"].shape == (2, 2) and len(batch["skipped"]) == 1
    assert collate_skip([None])["skipped"] and "x" not in collate_skip([None])
