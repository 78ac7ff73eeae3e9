from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tttkit.components import MaskSamplingError
from tttkit.imageops import dilate, shift_without_wrap
from tttkit_strategies.finetune_masks import (
    AugmentedUserMasks,
    FreeFormMasks,
    FullImageMasks,
)


def user_mask(size: int = 64, batch: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    mask = torch.zeros(batch, 1, size, size)
    mask[:, :, 10:30, 20:44] = 1
    forbidden = torch.nn.functional.max_pool2d(mask, 7, stride=1, padding=3)  # dilated by 3
    return mask, forbidden


def test_free_form_coverage_in_range_and_never_on_forbidden() -> None:
    mask, forbidden = user_mask()
    masks = FreeFormMasks(alpha=0.15, beta=0.25)(mask, forbidden, torch.Generator().manual_seed(0))
    assert masks.shape == mask.shape
    assert set(masks.unique().tolist()) <= {0.0, 1.0}
    coverage = masks.mean(dim=(1, 2, 3))
    assert torch.all((coverage >= 0.15) & (coverage <= 0.25)), coverage
    assert not torch.any((masks > 0) & (forbidden > 0))
    assert not torch.equal(masks[0], masks[1])  # each view draws its own mask


def test_free_form_is_reproducible_under_seed() -> None:
    mask, forbidden = user_mask()
    strategy = FreeFormMasks()
    a = strategy(mask, forbidden, torch.Generator().manual_seed(7))
    b = strategy(mask, forbidden, torch.Generator().manual_seed(7))
    c = strategy(mask, forbidden, torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_free_form_larger_masks() -> None:
    mask, forbidden = user_mask(batch=8)
    masks = FreeFormMasks(alpha=0.23, beta=0.30)(mask, forbidden, torch.Generator().manual_seed(1))
    coverage = masks.mean(dim=(1, 2, 3))
    assert torch.all((coverage >= 0.23) & (coverage <= 0.30))


def test_free_form_explains_impossible_requests() -> None:
    forbidden = torch.ones(1, 1, 32, 32)
    forbidden[..., :4, :4] = 0
    with pytest.raises(MaskSamplingError, match="only 1.6% of it is known"):
        FreeFormMasks()(forbidden, forbidden, torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="alpha <= beta"):
        FreeFormMasks(alpha=0.5, beta=0.2)


def test_full_image_tiles_cover_the_whole_image_once_per_batch() -> None:
    forbidden = torch.zeros(4, 1, 64, 64)
    masks = FullImageMasks(grid=4)(forbidden, forbidden, torch.Generator().manual_seed(0))
    assert torch.equal(masks.sum(dim=0), torch.ones(1, 64, 64))  # a partition of the image
    coverage = masks.mean(dim=(1, 2, 3))
    assert torch.all((coverage > 0.15) & (coverage < 0.35))  # ~4 of 16 tiles each
    straight = FullImageMasks(grid=4, roughness=0.0)(
        forbidden, forbidden, torch.Generator().manual_seed(0)
    )
    assert torch.allclose(straight.mean(dim=(1, 2, 3)), torch.full((4,), 0.25))
    assert not torch.equal(masks, straight)  # borders are roughened


def test_full_image_respects_forbidden() -> None:
    mask, forbidden = user_mask()
    masks = FullImageMasks()(mask, forbidden, torch.Generator().manual_seed(0))
    assert not torch.any((masks > 0) & (forbidden > 0))
    assert torch.equal(masks.sum(dim=0)[0] > 0, forbidden[0, 0] == 0)


def test_augmented_user_mask_has_the_users_shape_elsewhere() -> None:
    mask, forbidden = user_mask()
    masks = AugmentedUserMasks(min_coverage=0.05)(mask, forbidden, torch.Generator().manual_seed(3))
    assert not torch.any((masks > 0) & (forbidden > 0))
    area = mask[0].sum()
    for m in masks:
        assert 0.05 * m.numel() <= m.sum() <= area  # a moved, chiselled copy of the user's mask


def test_shift_without_wrap() -> None:
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    shifted = shift_without_wrap(x, 1, -2)
    assert torch.equal(shifted[0, 0, 1:, :2], x[0, 0, :3, 2:])
    assert shifted[0, 0, 0].sum() == 0 and shifted[0, 0, :, 2:].sum() == 0


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    box=st.tuples(st.integers(0, 40), st.integers(0, 40), st.integers(4, 24), st.integers(4, 24)),
    margin=st.integers(0, 4),
    bounds=st.sampled_from([(0.15, 0.25), (0.23, 0.30), (0.05, 0.10)]),
)
def test_free_form_property(
    seed: int, box: tuple[int, int, int, int], margin: int, bounds: tuple[float, float]
) -> None:
    """Any user hole, any seed: masks avoid dilate(U) and cover a fraction within [α, β]."""
    top, left, height, width = box
    user = torch.zeros(2, 1, 64, 64)
    user[..., top : top + height, left : left + width] = 1
    forbidden = dilate(user, margin)
    alpha, beta = bounds
    masks = FreeFormMasks(alpha=alpha, beta=beta)(
        user, forbidden, torch.Generator().manual_seed(seed)
    )
    assert not torch.any((masks > 0) & (forbidden > 0))
    coverage = masks.mean(dim=(1, 2, 3))
    assert torch.all((coverage >= alpha) & (coverage <= beta))


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), batch=st.integers(1, 16))
def test_full_image_property(seed: int, batch: int) -> None:
    """Any batch up to the tile count: the batch's masks partition the image."""
    forbidden = torch.zeros(batch, 1, 32, 32)
    masks = FullImageMasks(grid=4)(forbidden, forbidden, torch.Generator().manual_seed(seed))
    assert torch.equal(masks.sum(dim=0), torch.ones(1, 32, 32))
