"""Multi-crop views (shapes, ranges, determinism, each augmentation) and iBOT block masking ratios."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from edgedino.runtime.preprocess import read_image
from edgedino.train import BlockMasking, MultiCrop, MultiCropConfig, masks_for_batch
from edgedino.train.augment import crop_box
from edgedino.train.photometric import colour_jitter, gaussian_blur, grayscale, solarize

PLAIN = dict(jitter_p=0.0, grayscale_p=0.0, blur_p=(0.0, 0.0, 0.0), solarize_p=0.0, flip_p=0.0,
             global_scale=(1.0, 1.0), global_size=32, n_local=0, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))


@pytest.fixture(scope="module")
def photo(image_paths) -> np.ndarray:
    return read_image(image_paths[0])


def _unnormalise(x: torch.Tensor, cfg: MultiCropConfig) -> torch.Tensor:
    return x * torch.tensor(cfg.std).view(3, 1, 1) + torch.tensor(cfg.mean).view(3, 1, 1)


def test_crop_shapes_and_value_ranges(photo):
    cfg = MultiCropConfig()
    crops = MultiCrop(cfg)(photo, np.random.default_rng(0))
    assert crops["global"].shape == (2, 3, 224, 224) and crops["local"].shape == (8, 3, 96, 96)
    assert "global_hr" not in crops
    for x in crops.values():
        assert x.dtype == torch.float32
        pixels = _unnormalise(x, cfg)
        assert pixels.min() >= -1e-5 and pixels.max() <= 1 + 1e-5 and pixels.std() > 0.01
    hr = MultiCrop(MultiCropConfig(global_size=32, hr_scale=2.0, local_size=16, n_local=3))(
        photo, np.random.default_rng(0))
    assert hr["global"].shape == (2, 3, 32, 32) and hr["global_hr"].shape == (2, 3, 64, 64)
    assert hr["local"].shape == (3, 3, 16, 16)
    down = torch.nn.functional.avg_pool2d(hr["global_hr"], 2)  # the 2x view is the same crop as the student's
    assert (down - hr["global"]).abs().mean() < 0.05


def test_same_rng_same_crops(photo):
    crop = MultiCrop(MultiCropConfig(global_size=48, local_size=24, n_local=2))
    a, b = crop(photo, np.random.default_rng(7)), crop(photo, np.random.default_rng(7))
    c = crop(photo, np.random.default_rng(8))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["global"], c["global"])


def test_whole_image_flip_and_solarize_on_global_two_only():
    img = np.random.default_rng(1).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    plain = img.astype(np.float32).transpose(2, 0, 1) / 255
    out = MultiCrop(MultiCropConfig(**PLAIN))(img, np.random.default_rng(0))["global"].numpy()
    assert np.allclose(out[0], plain, atol=1e-6) and np.allclose(out[1], plain, atol=1e-6)
    flipped = MultiCrop(MultiCropConfig(**{**PLAIN, "flip_p": 1.0}))(img, np.random.default_rng(0))["global"]
    assert np.allclose(flipped[0].numpy(), plain[:, :, ::-1], atol=1e-6)
    sol = MultiCrop(MultiCropConfig(**{**PLAIN, "solarize_p": 1.0}))(img, np.random.default_rng(0))["global"]
    assert np.allclose(sol[0].numpy(), plain, atol=1e-6)
    assert np.allclose(sol[1].numpy(), np.where(plain >= 0.5, 1 - plain, plain), atol=1e-6)


def test_crop_box_area_and_bounds():
    rng = np.random.default_rng(2)
    for _ in range(200):
        top, left, h, w = crop_box((120, 200), (0.05, 0.32), rng)
        assert 0 <= top and top + h <= 120 and 0 <= left and left + w <= 200
        assert 0.04 <= h * w / (120 * 200) <= 0.34
        assert 3 / 4 - 0.05 <= w / h <= 4 / 3 + 0.05


def test_photometric_operations():
    rng = np.random.default_rng(3)
    red = np.zeros((4, 4, 3), np.float32)
    red[..., 0] = 1.0
    gray = grayscale(red)
    assert np.allclose(gray, 0.299) and gray.shape == red.shape
    assert np.allclose(colour_jitter(red, (0.0, 0.0, 0.0, 0.0), rng), red)
    from edgedino.train.photometric import _shift_hue

    assert np.allclose(_shift_hue(red, 1 / 3), [0.0, 1.0, 0.0], atol=1e-4)  # red turned a third is green
    jittered = colour_jitter(np.full((8, 8, 3), 0.5, np.float32), (0.4, 0.4, 0.2, 0.1), rng)
    assert jittered.min() >= 0 and jittered.max() <= 1
    noise = rng.random((32, 32, 3)).astype(np.float32)
    assert gaussian_blur(noise, rng, sigma=(2.0, 2.0)).std() < noise.std() / 2
    assert np.allclose(gaussian_blur(np.full((16, 16, 3), 0.3, np.float32), rng), 0.3)
    assert np.allclose(solarize(np.array([0.2, 0.5, 0.9], np.float32)), [0.2, 0.5, 0.1])


def test_half_the_images_masked_with_ratios_spread_over_the_range():
    rng = np.random.default_rng(4)
    patches = 14 * 14
    edges = np.linspace(0.1, 0.5, 9)
    for _ in range(20):
        masks = masks_for_batch(16, (14, 14), rng=rng)
        assert masks.shape == (16, patches) and masks.dtype == torch.bool
        counts = np.sort(masks.sum(1).numpy())
        assert (counts == 0).sum() == 8  # half the images unmasked
        # one masked image per slice of [0.1, 0.5], with exactly the count of the slice's upper edge (topped up)
        assert counts[8:].tolist() == [int(patches * e) for e in edges[1:]]
    again = masks_for_batch(16, (14, 14), rng=np.random.default_rng(9))
    assert torch.equal(again, masks_for_batch(16, (14, 14), rng=np.random.default_rng(9)))


def test_block_masking_is_blocky_and_meets_small_grids():
    mask = BlockMasking((14, 14))(40, np.random.default_rng(5))
    assert mask.sum() == 40
    neighbours = sum(np.roll(mask, s, axis=a) for a in (0, 1) for s in (1, -1))
    assert (neighbours[mask] >= 1).all()  # no isolated patches: masks are made of rectangles
    assert BlockMasking((4, 4))(2, np.random.default_rng(6)).sum() == 2
