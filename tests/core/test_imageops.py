"""Tests of the image operators the core shares with backbones and losses."""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

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


def test_smooth_fill_of_bf16_keeps_its_dtype_and_known_pixels() -> None:
    # computed in fp32 inside: the relaxation's small steps would stall in bf16
    torch.manual_seed(0)
    image = torch.rand(1, 3, 32, 32).to(torch.bfloat16)
    mask = _hole(32, 6, 8, 18)
    filled = smooth_fill(image, mask)
    assert filled.dtype == torch.bfloat16
    known = mask.expand_as(image) == 0
    assert torch.equal(filled[known], image[known])
    reference = smooth_fill(image.float(), mask).to(torch.bfloat16)
    assert torch.equal(filled, reference)


def test_smooth_fill_all_holes_and_odd_sizes_stay_finite() -> None:
    image = torch.rand(1, 3, 13, 7)
    assert torch.equal(smooth_fill(image, torch.ones(1, 1, 13, 7)), torch.zeros_like(image))
    mask = torch.zeros(1, 1, 13, 7)
    mask[..., 3:9, 2:5] = 1
    assert torch.isfinite(smooth_fill(image, mask)).all()


def _kornia_canny(image: torch.Tensor, sigma: float) -> torch.Tensor:
    """The edges ``canny_edges`` must give: kornia's own canny with its iterative hysteresis."""
    from kornia.filters import canny

    from tttkit.imageops import CANNY_HIGH, CANNY_LOW, gaussian_kernel_size, to_gray

    size = gaussian_kernel_size(sigma)
    _, edges = canny(to_gray(image), CANNY_LOW, CANNY_HIGH, (size, size), (sigma, sigma))
    return edges


def test_canny_edges_equal_kornias_on_a_photo_like_image() -> None:
    from tttkit.imageops import canny_edges

    # Smooth shapes plus noise: long edge chains (many hysteresis rounds) and isolated weak pixels.
    torch.manual_seed(1)
    y, x = torch.meshgrid(torch.linspace(-1, 1, 96), torch.linspace(-1, 1, 80), indexing="ij")
    disc = ((x**2 + y**2) < 0.4).float()
    stripes = (torch.sin(9 * x + 4 * y) > 0).float()
    image = torch.stack([disc, 0.5 * stripes, disc * stripes]).unsqueeze(0)
    image = (image + 0.08 * torch.randn(2, 3, 96, 80)).clamp(0, 1)
    for sigma in (1.0, 1.5, 2.0):
        expected = _kornia_canny(image, sigma)
        assert 0 < expected.sum() < expected.numel() / 2  # a real edge map, not a trivial one
        assert torch.equal(canny_edges(image, sigma), expected)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    height=st.integers(8, 40),
    width=st.integers(8, 40),
    noise=st.floats(0.0, 0.5),
)
def test_canny_edges_equal_kornias_on_any_image(
    seed: int, height: int, width: int, noise: float
) -> None:
    from tttkit.imageops import canny_edges

    generator = torch.Generator().manual_seed(seed)
    blocks = torch.rand(1, 3, 4, 4, generator=generator)
    image = torch.nn.functional.interpolate(blocks, size=(height, width), mode="bilinear")
    image = (image + noise * torch.rand(1, 3, height, width, generator=generator)).clamp(0, 1)
    assert torch.equal(canny_edges(image, 1.0), _kornia_canny(image, 1.0))


def test_track_edges_follows_chains_of_weak_pixels_to_a_strong_one() -> None:
    from tttkit.imageops import track_edges

    weak_and_strong = torch.zeros(1, 1, 6, 8)
    weak_and_strong[0, 0, 1, 1:6] = 0.5  # a weak chain …
    weak_and_strong[0, 0, 2, 6] = 1.0  # … touching a strong pixel diagonally
    weak_and_strong[0, 0, 4, 0:3] = 0.5  # a weak chain alone
    tracked = track_edges(weak_and_strong)
    expected = torch.zeros_like(tracked)
    expected[0, 0, 1, 1:6] = 1.0
    expected[0, 0, 2, 6] = 1.0
    assert torch.equal(tracked, expected)
