"""Companion photos: aligning other shots of the scene, warping them into a run's frame, and
drawing views from them."""

from __future__ import annotations

import importlib.resources
import inspect
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import tttkit
from tests.helpers import photo_and_mask, tiny_backbone
from tttkit.engine import run_ttt
from tttkit.io import InputError, read_image, write_image
from tttkit.options import RunOptions
from tttkit.references import (
    DEFAULT_MASKS,
    Reference,
    ReferenceViews,
    align_reference,
    reference_views,
)
from tttkit.strategy import get_strategy, override
from tttkit.windows import Window

EXAMPLES = importlib.resources.files("tttkit") / "data" / "examples"


def _shots() -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """A target and a reference cut from one photo with a shift and a zoom: the true
    reference-to-target mapping is known."""
    base = read_image(str(EXAMPLES / "building.jpg"), dtype=torch.uint8)  # 256×256
    target = base[:, 20:220, 30:230].contiguous()
    zoom = 0.9
    reference = F.interpolate(base[None].float(), scale_factor=zoom, mode="area")[0]
    reference = reference.round().to(torch.uint8)
    truth = np.array([[1 / zoom, 0, -30], [0, 1 / zoom, -20], [0, 0, 1]], dtype=np.float64)
    return target, reference, truth


def _holes(size: tuple[int, int]) -> torch.Tensor:
    holes = torch.zeros(1, *size, dtype=torch.uint8)
    holes[:, 80:120, 90:140] = 1
    return holes


def _corners_error(found: np.ndarray, truth: np.ndarray, side: int) -> float:
    corners = np.array([[0, 0, 1], [side, 0, 1], [0, side, 1], [side, side, 1]], float).T
    a, b = found @ corners, truth @ corners
    return float(np.abs(a[:2] / a[2] - b[:2] / b[2]).max())


def test_the_homography_aligner_finds_a_shift_and_zoom_between_shots() -> None:
    target, reference, truth = _shots()
    aligner = tttkit.registry("reference-aligners").get("homography")()
    found = aligner(target, _holes(target.shape[-2:]), reference)
    assert found.matrix is not None, found.note
    assert _corners_error(np.asarray(found.matrix), truth, 200) < 2.0
    assert "matching points" in found.note


def test_a_photo_of_another_scene_does_not_match_and_is_skipped() -> None:
    target, _, _ = _shots()
    other = read_image(str(EXAMPLES / "fruits.jpg"), dtype=torch.uint8)
    aligner = tttkit.registry("reference-aligners").get("homography")()
    kept, why = align_reference(target, _holes(target.shape[-2:]), "fruits.jpg", other, aligner)
    assert kept is None
    assert "matching points" in why or "agree" in why


def test_a_warped_reference_shows_the_target_where_they_overlap() -> None:
    target, reference, truth = _shots()
    window = Window(top=40, left=50, height=120, width=120, scale=0.5)  # 60² at the network
    views = reference_views([Reference("r", reference, truth, "")], window)
    assert views is not None and views.images.shape == (1, 3, 60, 60)
    expected = F.interpolate(target[None, :, 40:160, 50:170].float() / 255, size=(60, 60),
                             mode="area")  # fmt: skip
    valid = views.missing[0, 0] < 0.5
    assert valid.float().mean() > 0.8  # the reference covers the window, but for its border
    error = (views.images[0] - expected[0]).abs()[:, valid].mean()
    assert error < 0.04


def test_a_reference_that_misses_the_window_gives_no_views() -> None:
    _target, reference, truth = _shots()
    far = truth.copy()
    far[0, 2] += 5000  # lands far right of the photo
    window = Window(top=0, left=0, height=200, width=200, scale=1.0)
    assert reference_views([Reference("r", reference, far, "")], window) is None


def test_mixing_replaces_some_views_by_references_with_their_missing_pixels_as_holes() -> None:
    images = torch.zeros(4, 3, 16, 16)
    holes = torch.zeros(4, 1, 16, 16)
    missing = torch.zeros(2, 1, 16, 16)
    missing[:, :, :, :3] = 1
    views = ReferenceViews(torch.ones(2, 3, 16, 16), missing, share=0.5, masks="random")
    mixed, mixed_holes, forbidden, cover = views.mix(
        images, holes, holes.clone(), margin=2, generator=torch.Generator().manual_seed(0)
    )
    assert cover is None  # random masks: nothing the finetuning masks must cover
    assert mixed.shape == images.shape and mixed[:2].eq(0).all() and mixed[2:].eq(1).all()
    assert mixed_holes[2:, :, :, :3].eq(1).all() and mixed_holes[:2].eq(0).all()
    assert forbidden[2:, :, :, :5].eq(1).all()  # the margin kept clear around missing pixels
    single = ReferenceViews(torch.ones(1, 3, 16, 16), missing[:1], share=1.0)
    assert single.views_per_step(4, torch.Generator()) == 3  # one target view always stays
    with pytest.raises(ValueError, match="share"):
        ReferenceViews(torch.ones(1, 3, 16, 16), missing[:1], share=0.0)


def test_hole_masks_on_references_cover_the_photos_holes_where_they_show_them() -> None:
    holes = torch.zeros(4, 1, 16, 16)
    holes[:, :, 6:10, :] = 1  # a band across the photo
    missing = torch.zeros(1, 1, 16, 16)
    missing[:, :, :, :3] = 1  # the reference does not reach the left edge
    views = ReferenceViews(torch.ones(1, 3, 16, 16), missing, share=0.5, masks="holes")
    _, mixed_holes, forbidden, cover = views.mix(
        torch.zeros(4, 3, 16, 16), holes, holes.clone(), margin=2,
        generator=torch.Generator().manual_seed(0),
    )  # fmt: skip
    assert cover is not None and cover[:2].eq(0).all()  # the photo's views: drawn as ever
    expected = torch.zeros(1, 16, 16)
    expected[:, 6:10, 5:] = 1  # the band, clear of the missing pixels and their margin
    assert torch.equal(cover[2], expected) and torch.equal(cover[3], expected)
    assert not (cover * mixed_holes).any() and not (cover * forbidden).any()
    with pytest.raises(ValueError, match="masks"):
        ReferenceViews(torch.ones(1, 3, 16, 16), missing, masks="everywhere")


def test_masks_over_the_holes_are_the_default_of_the_library_and_the_command_line() -> None:
    import typer

    from tttkit.cli import app

    command = typer.main.get_command(app).commands["inpaint"]  # type: ignore[attr-defined]
    option = next(p for p in command.params if p.name == "reference_masks")
    assert option.default == DEFAULT_MASKS == "holes"
    assert inspect.signature(tttkit.adapt).parameters["reference_masks"].default == DEFAULT_MASKS
    assert ReferenceViews(torch.ones(1, 3, 4, 4), torch.zeros(1, 1, 4, 4)).masks == DEFAULT_MASKS


def test_adapt_refuses_an_unknown_way_of_drawing_reference_masks_by_name() -> None:
    image, mask = photo_and_mask(48)
    with pytest.raises(InputError, match="reference masks 'everywhere'"):
        tttkit.adapt(image, mask, backbone=tiny_backbone(), references=[image.flip(-1)],
                     reference_masks="everywhere", steps=1)  # fmt: skip


def test_a_run_with_references_is_seeded_and_differs_from_one_without() -> None:
    image, mask = photo_and_mask(64)
    other = torch.flip(image, dims=(-1,))[None]  # any other content, fully present
    views = ReferenceViews(other, torch.zeros(1, 1, 64, 64), share=0.5, masks="random")
    spec = override(get_strategy("default"), steps=2)
    options = RunOptions(seed=3, precision="fp32")
    first = run_ttt(tiny_backbone(), image, mask, spec, options, references=views)
    again = run_ttt(tiny_backbone(), image, mask, spec, options, references=views)
    alone = run_ttt(tiny_backbone(), image, mask, spec, options)
    over_holes = replace(views, masks="holes")
    covering = run_ttt(tiny_backbone(), image, mask, spec, options, references=over_holes)
    assert not torch.equal(covering.finetuned, first.finetuned)
    assert torch.equal(first.finetuned, again.finetuned)
    assert not torch.equal(first.finetuned, alone.finetuned)
    assert torch.equal(first.raw, alone.raw)


def test_adapt_takes_reference_files_and_says_which_it_used(tmp_path: Path) -> None:
    target, reference, _ = _shots()
    photo, ref_file, other_file = tmp_path / "t.png", tmp_path / "r.png", tmp_path / "o.png"
    write_image(photo, target)
    write_image(ref_file, reference)
    write_image(other_file, read_image(str(EXAMPLES / "fruits.jpg")))
    holes = _holes(target.shape[-2:]).float()
    result = tttkit.adapt(
        photo, holes, backbone=tiny_backbone(), references=[ref_file, other_file], steps=1,
        batch_size=2,
    )  # fmt: skip
    used = [n for n in result.notices if n.startswith("reference r.png: used")]
    skipped = [n for n in result.notices if n.startswith("reference o.png: skipped")]
    assert used and skipped, result.notices


def test_the_photo_itself_or_a_broken_file_as_a_reference_is_refused_by_name(
    tmp_path: Path,
) -> None:
    target, _, _ = _shots()
    photo, broken = tmp_path / "t.png", tmp_path / "broken.jpg"
    write_image(photo, target)
    broken.write_bytes(b"\xff\xd8 not a jpeg")
    holes = _holes(target.shape[-2:]).float()
    with pytest.raises(InputError, match="is the photo itself"):
        tttkit.adapt(photo, holes, backbone=tiny_backbone(), references=[photo], steps=1)
    with pytest.raises(InputError, match="broken.jpg"):
        tttkit.adapt(photo, holes, backbone=tiny_backbone(), references=[broken], steps=1)


def test_a_reference_shot_at_another_exposure_is_matched_to_the_photo() -> None:
    image, mask = photo_and_mask(64)
    brighter = (image * torch.tensor([1.2, 1.1, 0.9])[:, None, None] + 0.04).clamp(0, 1)
    missing = torch.zeros(1, 1, 64, 64)
    missing[..., :, :8] = 1  # a strip the reference does not show
    views = ReferenceViews(brighter[None], missing).exposed_like(image, mask)
    inside = (missing[0] < 0.5).expand(3, -1, -1)
    before = (brighter - image).abs()[inside].mean()
    after = (views.images[0] - image).abs()[inside].mean()
    assert after < before / 4 and views.missing is missing
    alone = ReferenceViews(brighter[None], torch.ones(1, 1, 64, 64))  # shares no pixel
    assert torch.equal(alone.exposed_like(image, mask).images, alone.images)


def test_only_the_part_of_a_reference_that_reaches_the_windows_is_kept() -> None:
    from tttkit.references import crop_to_windows

    _, reference, truth = _shots()
    small = Window(top=60, left=60, height=40, width=40, scale=1.0)
    kept = crop_to_windows(Reference("r", reference, truth, ""), [small])
    assert kept is not None and kept.pixels.numel() < reference.numel() / 10
    # the crop lands where the whole reference did
    whole = reference_views([Reference("r", reference, truth, "")], small)
    cropped = reference_views([kept], small)
    assert whole is not None and cropped is not None
    # the same pixels, to OpenCV's fixed-point interpolation (a level of 255 at most)
    assert (whole.images - cropped.images).abs().max() <= 1 / 255 + 1e-6
    far = truth.copy()
    far[0, 2] += 5000
    assert crop_to_windows(Reference("r", reference, far, ""), [small]) is None
