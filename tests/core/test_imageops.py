"""Tests of the image operators the core shares with backbones and losses."""

from __future__ import annotations

import torch

from tttkit.imageops import smooth_fill


def _hole(size: int, top: int, left: int, extent: int) -> torch.Tensor:
    mask = torch.zeros(1, 1, size, size)
    mask[..., top : top + extent, left : left + extent] = 1.0
    return mask


def test_smooth_fill_keeps_known_pixels_exactly() -> None:
    torch.manual_seed(0)
    image = torch.rand(2, 3, 40, 56)
    mask = (torch.rand(2, 1, 40, 56) > 0.7).float()
    filled = smooth_fill(image, mask)
    known = mask.expand_as(image) == 0
    assert torch.equal(filled[known], image[known])


def test_smooth_fill_of_a_constant_is_that_constant() -> None:
    image = torch.full((1, 3, 32, 32), 0.3)
    mask = _hole(32, 4, 6, 20)
    torch.testing.assert_close(smooth_fill(image, mask), image)


def test_smooth_fill_of_a_ramp_is_close_to_the_ramp() -> None:
    # A linear function is harmonic: the membrane fill of a ramp is the ramp itself.
    ramp = torch.linspace(0, 1, 64).expand(1, 3, 64, 64).contiguous()
    mask = _hole(64, 20, 20, 24)
    error = (smooth_fill(ramp, mask, relaxations=64) - ramp).abs().max()
    assert error < 0.02
    # and far better than a constant fill with the known mean would be
    constant = torch.where(mask.bool(), ramp[mask.expand_as(ramp) == 0].mean(), ramp)
    assert error < (constant - ramp).abs().max() / 10


def test_smooth_fill_depends_on_known_pixels_only() -> None:
    torch.manual_seed(0)
    image = torch.rand(1, 3, 48, 48)
    mask = _hole(48, 10, 10, 20)
    other = torch.where(mask.bool(), torch.rand_like(image), image)
    assert torch.equal(smooth_fill(image, mask), smooth_fill(other, mask))


def test_smooth_fill_all_holes_and_odd_sizes_stay_finite() -> None:
    image = torch.rand(1, 3, 13, 7)
    assert torch.equal(smooth_fill(image, torch.ones(1, 1, 13, 7)), torch.zeros_like(image))
    mask = torch.zeros(1, 1, 13, 7)
    mask[..., 3:9, 2:5] = 1
    assert torch.isfinite(smooth_fill(image, mask)).all()
