"""Cheaper views: a strategy with ``crop_size`` trains on crops, fills at full size, and only
on backbones that declare they may."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from tests.helpers import photo_and_mask, tiny_backbone
from tttkit.config import SpecError
from tttkit.engine import run_ttt
from tttkit.engine.loop import CROP_MIN_FREE, crop_views
from tttkit.options import RunOptions
from tttkit.strategy import get_strategy, override


def test_crops_keep_image_and_masks_aligned_and_avoid_forbidden_windows() -> None:
    height, width = 40, 56
    ys, xs = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    image = torch.stack((ys, xs, ys * 0)).float().expand(3, -1, -1, -1).clone()
    holes = (xs > 40).float().expand(3, 1, -1, -1).clone()  # the right side is forbidden
    generator = torch.Generator().manual_seed(0)
    crop, crop_holes, crop_forbidden = crop_views(16, generator, image, holes, holes)
    assert crop.shape == (3, 3, 16, 16) and crop_holes.shape == (3, 1, 16, 16)
    for view, mask in zip(crop, crop_holes, strict=True):
        top, left = int(view[0, 0, 0]), int(view[1, 0, 0])
        assert torch.equal(view[0, :, 0], torch.arange(top, top + 16).float())  # contiguous
        assert torch.equal(mask, holes[0, :, top : top + 16, left : left + 16])
        assert 1 - float(mask.mean()) >= CROP_MIN_FREE
    assert torch.equal(crop_holes, crop_forbidden)


def _crop_trainable(net):  # type: ignore[no-untyped-def]
    net.conventions = dataclasses.replace(net.conventions, trains_on_crops=True)
    return net


def test_training_runs_on_crops_and_filling_at_full_size() -> None:
    image, mask = photo_and_mask(64)
    net = _crop_trainable(tiny_backbone())
    sizes: list[tuple[int, int]] = []
    original = type(net).generate

    def spy(self, images, masks):  # type: ignore[no-untyped-def]
        sizes.append(tuple(images.shape[-2:]))
        return original(self, images, masks)

    net.generate = spy.__get__(net)  # type: ignore[method-assign]
    spec = override(get_strategy("default"), steps=2, sets=["crop_size=32", "eval_every=2"])
    result = run_ttt(net, image, mask, spec, RunOptions(seed=0))
    assert result.finetuned.shape == image.shape
    assert (32, 32) in sizes and (64, 64) in sizes  # trained on crops, filled whole


def test_a_backbone_that_does_not_declare_it_is_refused_before_training() -> None:
    image, mask = photo_and_mask(64)
    spec = override(get_strategy("default"), steps=2, sets=["crop_size=32"])
    net = tiny_backbone()
    net.conventions = dataclasses.replace(net.conventions, trains_on_crops=False)
    with pytest.raises(SpecError, match="trains_on_crops"):
        run_ttt(net, image, mask, spec)


def test_size_agnostic_backbones_declare_it() -> None:
    import tttkit

    backbones = tttkit.registry("backbones")
    with torch.device("meta"):
        for name in ("lama", "attention-net-compact", "attention-net"):
            assert backbones.get(name)().conventions.trains_on_crops, name
