"""Behaviour of the thesis §4.3 augmentations (tttkit_strategies.augmentations)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
import torch
from kornia.filters import gaussian_blur2d
from torch import Tensor

from tttkit.components import Augmentation, View
from tttkit.config import AugmentSpec, AugmentStep, Component
from tttkit.engine.augment import AugmentPipeline
from tttkit_strategies.augmentations import (
    HorizontalFlip,
    RandomBrightness,
    RandomCrop,
    RandomGaussianBlur,
    RandomGaussianNoise,
    RandomRotation,
    RandomShear,
    RandomTranslation,
    VerticalFlip,
    tttkit_register_augmentations,
)

GEOMETRIC = {"crop", "hflip", "vflip", "translate", "rotate", "shear"}
INTENSITY = {"brightness", "gaussian-blur", "gaussian-noise"}


def registered() -> dict[str, tuple[Callable[..., Augmentation], str]]:
    found: dict[str, tuple[Callable[..., Augmentation], str]] = {}

    def register(name: str, factory: Callable[..., Augmentation], *, description: str = "") -> None:
        assert name not in found
        found[name] = (factory, description)

    tttkit_register_augmentations(register)
    return found


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def blobs(h: int, w: int, seed: int, density: float) -> Tensor:
    """A random 0/1 mask made of 4×4 blocks (so crops and warps keep something)."""
    g = gen(seed)
    coarse = (torch.rand(1, 1, (h + 3) // 4, (w + 3) // 4, generator=g) < density).float()
    return coarse.repeat_interleave(4, -2).repeat_interleave(4, -1)[..., :h, :w]


def mirror_view(h: int = 32, w: int = 32, seed: int = 0, finetune: bool = True) -> View:
    """A view whose image channels 0 and 1 copy the user and finetuning masks.

    Any geometric op that moves image and masks consistently (with nearest sampling) keeps
    ``image[:, 0] == user_mask`` and ``image[:, 1] == finetune_mask`` exactly.
    """
    user = blobs(h, w, seed, 0.2)
    fine = blobs(h, w, seed + 100, 0.3) * (1 - user)
    noise = torch.rand(1, 1, h, w, generator=gen(seed + 200))
    return View(
        image=torch.cat([user, fine, noise], dim=1),
        user_mask=user,
        finetune_mask=fine if finetune else None,
        empty=torch.zeros(1, 1, h, w),
    )


def random_view(h: int = 32, w: int = 32, seed: int = 0) -> View:
    user = blobs(h, w, seed, 0.2)
    return View(
        image=torch.rand(1, 3, h, w, generator=gen(seed + 1)),
        user_mask=user,
        finetune_mask=blobs(h, w, seed + 2, 0.3) * (1 - user),
        empty=torch.zeros(1, 1, h, w),
    )


def block_view(h: int, w: int, y: int, x: int) -> View:
    """A 3×3 marker centred on (y, x) in the image (all channels) and in both masks."""
    m = torch.zeros(1, 1, h, w)
    m[..., y - 1 : y + 2, x - 1 : x + 2] = 1
    return View(image=m.repeat(1, 3, 1, 1), user_mask=m, finetune_mask=m.clone(), empty=0 * m)


def centroid(m: Tensor) -> tuple[float, float]:
    ys, xs = torch.nonzero(m[0, 0] > 0.5, as_tuple=True)
    return ys.float().mean().item(), xs.float().mean().item()


def assert_binary(*masks: Tensor | None) -> None:
    for m in masks:
        if m is not None:
            assert bool(((m == 0) | (m == 1)).all())


def assert_mirrored(out: View) -> None:
    """Image, masks and empty are mutually consistent after a geometric op."""
    assert_binary(out.user_mask, out.finetune_mask, out.empty)
    assert torch.equal(out.image[:, 0:1], out.user_mask)
    if out.finetune_mask is not None:
        assert torch.equal(out.image[:, 1:2], out.finetune_mask)
    hole = out.empty > 0.5
    assert not bool(out.user_mask[hole].any())
    assert out.finetune_mask is None or not bool(out.finetune_mask[hole].any())
    assert not bool(out.image.expand(-1, 3, -1, -1)[hole.expand(-1, 3, -1, -1)].any())


# -- registration ---------------------------------------------------------------------------


def test_registration_names_factories_and_kinds() -> None:
    found = registered()
    assert set(found) == GEOMETRIC | INTENSITY
    for name, (factory, description) in found.items():
        op = factory()
        assert description
        assert op.__doc__ or factory.__doc__
        assert op.geometric is (name in GEOMETRIC)
        assert isinstance(op, Augmentation)


# -- geometric ops move masks with the image ----------------------------------------------


MIRROR_OPS: dict[str, Callable[[], Augmentation]] = {
    "hflip": HorizontalFlip,
    "vflip": VerticalFlip,
    "translate": RandomTranslation,
    # nearest for the image too: bilinear at non-square quarter turns is only exact up to 1e-6
    "rotate-90s": lambda: RandomRotation(interpolation="nearest"),
    "rotate-30s": lambda: RandomRotation(angles=range(30, 360, 30), interpolation="nearest"),
    "shear": lambda: RandomShear(interpolation="nearest"),
    "crop": lambda: RandomCrop(min_finetune=-1.0, max_hidden=2.0),
}


@pytest.mark.parametrize("shape", [(32, 32), (24, 40)])
@pytest.mark.parametrize("name", list(MIRROR_OPS))
def test_geometric_ops_move_masks_with_image(name: str, shape: tuple[int, int]) -> None:
    op = MIRROR_OPS[name]()
    for seed in range(6):
        view = mirror_view(*shape, seed=seed)
        out = op(view, gen(seed))
        assert out is not None
        assert out.image.shape == view.image.shape
        assert_mirrored(out)
        # quarter turns are exact only on square images; a non-square frame loses its sides
        if name in ("hflip", "vflip", "translate", "crop") or (
            name == "rotate-90s" and shape[0] == shape[1]
        ):
            assert not bool(out.empty.any())


def test_flips_put_marker_at_mirror_position() -> None:
    view = block_view(20, 30, y=4, x=6)
    out = HorizontalFlip()(view, gen())
    for t in (out.image[:, :1], out.user_mask, out.finetune_mask):
        assert t is not None
        assert centroid(t) == (4.0, 23.0)
    out = VerticalFlip()(view, gen())
    for t in (out.image[:, :1], out.user_mask, out.finetune_mask):
        assert t is not None
        assert centroid(t) == (15.0, 6.0)


def rotated_position(y: float, x: float, h: int, w: int, degrees: float) -> tuple[float, float]:
    """Counter-clockwise (as displayed, y down) rotation about the centre."""
    cy, cx = (h - 1) / 2, (w - 1) / 2
    t = math.radians(degrees)
    dx, dy = x - cx, y - cy
    return cy - dx * math.sin(t) + dy * math.cos(t), cx + dx * math.cos(t) + dy * math.sin(t)


@pytest.mark.parametrize("degrees", [30, 90, 180, 270, 300])
def test_rotation_moves_marker_counter_clockwise(degrees: int) -> None:
    h = w = 33
    view = block_view(h, w, y=8, x=22)
    out = RandomRotation(angles=(degrees,))(view, gen())
    expected = rotated_position(8, 22, h, w, degrees)
    for t in (out.image[:, :1], out.user_mask, out.finetune_mask):
        assert t is not None
        cy, cx = centroid(t)
        assert abs(cy - expected[0]) <= 0.75 and abs(cx - expected[1]) <= 0.75, (cy, cx, expected)


def test_rotation_by_quarter_turns_is_exact_on_square_images() -> None:
    view = random_view(32, 32, seed=3)
    for k, degrees in enumerate((0, 90, 180, 270)):
        out = RandomRotation(angles=(degrees,))(view, gen())
        for before, after in zip(
            (view.image, view.user_mask, view.finetune_mask, view.empty),
            (out.image, out.user_mask, out.finetune_mask, out.empty),
            strict=True,
        ):
            assert after is not None and before is not None
            assert torch.equal(after, torch.rot90(before, k, dims=(-2, -1)))
        assert not bool(out.empty.any())


def test_half_turn_is_exact_on_non_square_images() -> None:
    view = random_view(24, 40, seed=4)
    out = RandomRotation(angles=(180,))(view, gen())
    assert torch.equal(out.image, torch.flip(view.image, dims=(-2, -1)))
    assert not bool(out.empty.any())


def test_rotation_samples_all_angles_with_default_set() -> None:
    view = block_view(17, 17, y=3, x=8)
    op = RandomRotation()
    seen = set()
    g = gen(5)
    for _ in range(40):
        seen.add(centroid(op(view, g).user_mask))
    assert len(seen) == 4  # 0, 90, 180, 270 land the marker in four places


def test_thirty_degree_rotation_marks_corners_empty_and_keeps_old_empty() -> None:
    view = random_view(32, 32, seed=6)
    old_empty = torch.zeros_like(view.empty)
    old_empty[..., 14:18, 14:18] = 1  # the centre maps onto itself
    view = view.with_(empty=old_empty, user_mask=view.user_mask * (1 - old_empty))
    out = RandomRotation(angles=(30,))(view, gen())
    assert out is not None
    for y, x in ((0, 0), (0, 31), (31, 0), (31, 31)):
        assert out.empty[0, 0, y, x] == 1
    assert bool((out.empty[..., 15:17, 15:17] == 1).all())
    assert out.empty[0, 0, 16, 5] == 0  # well inside the rotated frame
    assert 0.05 < out.empty.mean().item() < 0.4
    assert_binary(out.user_mask, out.finetune_mask, out.empty)
    hole = (out.empty > 0.5).expand(-1, 3, -1, -1)
    assert not bool(out.image[hole].any())


def test_shear_follows_the_thesis_matrix_about_the_centre() -> None:
    h, w = 33, 41
    view = block_view(h, w, y=6, x=10)
    out = RandomShear().shear(view, 0.2, -0.1)
    assert out is not None
    cy, cx = (h - 1) / 2, (w - 1) / 2
    ex, ey = 10 + 0.2 * (6 - cy), 6 - 0.1 * (10 - cx)
    for t in (out.image[:, :1], out.user_mask, out.finetune_mask):
        assert t is not None
        y, x = centroid(t)
        assert abs(y - ey) <= 0.75 and abs(x - ex) <= 0.75


def test_shear_leaves_empty_pixels_and_samples_within_range() -> None:
    op = RandomShear()
    assert op.shear_x == (-0.2, 0.2) and op.shear_y == (-0.2, 0.2)
    view = random_view(32, 32, seed=7)
    out = op.shear(view, 0.2, 0.2)
    assert out is not None
    assert out.empty[0, 0, 0, 31] == 1 and out.empty[0, 0, 16, 16] == 0
    empties = [op(view, gen(s)).empty.mean().item() for s in range(8)]  # type: ignore[union-attr]
    # tiny shears may keep every pixel (nearest rounding); larger ones vacate some
    assert all(0 <= e < 0.3 for e in empties) and sum(e > 0 for e in empties) >= 4


@pytest.mark.parametrize("fill", ["zero", "random"])
@pytest.mark.parametrize("op_name", ["rotate", "shear"])
def test_executor_fills_empty_pixels(fill: str, op_name: str) -> None:
    factories = {"rotate": RandomRotation, "shear": RandomShear}
    params: dict[str, Any] = {"angles": (30,)} if op_name == "rotate" else {"shear_x": (0.15, 0.2)}
    spec = AugmentSpec(steps=(AugmentStep(ops=(Component(op_name, params),)),), empty_fill=fill)
    pipeline = AugmentPipeline(spec, factories.__getitem__)
    view = random_view(32, 32, seed=8)
    out, names = pipeline(view, gen(1))
    assert names == (op_name,)
    hole = (out.empty > 0.5).expand(-1, 3, -1, -1)
    assert bool(hole.any())
    values = out.image[hole]
    if fill == "zero":
        assert not bool(values.any())
    else:
        assert values.min() >= 0 and values.max() <= 1
        assert values.std() > 0.2  # uniform: std ≈ 0.29
        assert not bool(out.image[~hole].isnan().any())


# -- translation ------------------------------------------------------------------------------


def test_translation_vacated_pixels_keep_the_original() -> None:
    view = random_view(20, 24, seed=9)
    out = RandomTranslation().translate(view, dy=3, dx=-5)
    for before, after in (
        (view.image, out.image),
        (view.user_mask, out.user_mask),
        (view.finetune_mask, out.finetune_mask),
    ):
        assert before is not None and after is not None
        assert torch.equal(after[..., 3:, :-5], before[..., :-3, 5:])  # moved down-left
        assert torch.equal(after[..., :3, :], before[..., :3, :])  # vacated top rows
        assert torch.equal(after[..., :, -5:], before[..., :, -5:])  # vacated right columns
    assert not bool(out.empty.any())


def test_random_translation_draws_integer_shifts_in_range_including_zero() -> None:
    h, w = 40, 40
    index = torch.arange(h * w, dtype=torch.float32).reshape(1, 1, h, w)
    view = View(
        image=index.repeat(1, 3, 1, 1), user_mask=0 * index, finetune_mask=None, empty=0 * index
    )
    op, g = RandomTranslation(), gen(10)
    dxs, dys = set(), set()
    for _ in range(300):
        out = op(view, g)
        source = int(out.image[0, 0, 20, 20])  # the centre is always inside the moved region
        dy, dx = 20 - source // w, 20 - source % w
        assert torch.equal(out.image, op.translate(view, dy=dy, dx=dx).image)
        dxs.add(dx)
        dys.add(dy)
    assert dxs == set(range(-12, 13)) and dys == set(range(-12, 13))


# -- crop -------------------------------------------------------------------------------------


def test_crop_acceptance_rule_holds_on_every_accepted_sample() -> None:
    op = RandomCrop()
    accepted = 0
    for seed in range(30):
        view = random_view(32, 32, seed=seed)
        out = op(view, gen(seed))
        if out is None:
            continue
        accepted += 1
        assert out.finetune_mask is not None
        alone = (out.finetune_mask * (1 - out.user_mask)).mean().item()
        hidden = torch.maximum(out.finetune_mask, out.user_mask).mean().item()
        assert alone > 0.1 and hidden < 0.65
    assert accepted >= 20


def test_crop_zooms_a_half_window_with_nearest_upscaling() -> None:
    assert RandomCrop().window(256, 256) == (128, 128)
    assert RandomCrop().window(48, 64) == (24, 32)
    assert RandomCrop(size=10).window(48, 64) == (10, 10)
    assert RandomCrop(size=(8, 12)).window(48, 64) == (8, 12)
    view = mirror_view(32, 32, seed=11)
    out = RandomCrop(min_finetune=-1.0, max_hidden=2.0)(view, gen(3))
    assert out is not None
    for t in (out.image, out.user_mask):
        # every 2×2 block copies one source pixel
        assert torch.equal(t[..., ::2, ::2], t[..., 1::2, 1::2])
        assert torch.equal(t[..., ::2, ::2], t[..., 1::2, ::2])
    # the zoomed content is a window of the original: find it from the noise channel
    small = out.image[..., ::2, ::2]
    hits = [
        (top, left)
        for top in range(17)
        for left in range(17)
        if torch.equal(view.image[..., top : top + 16, left : left + 16], small)
    ]
    assert len(hits) == 1


def test_crop_returns_none_when_no_window_is_acceptable() -> None:
    view = random_view(32, 32, seed=12)
    no_finetune = view.with_(finetune_mask=torch.zeros_like(view.user_mask))
    assert RandomCrop(max_tries=20)(no_finetune, gen()) is None
    all_hidden = view.with_(user_mask=torch.ones_like(view.user_mask), finetune_mask=None)
    assert RandomCrop(max_tries=20)(all_hidden, gen()) is None


def test_crop_without_finetune_mask_checks_only_the_user_mask() -> None:
    view = random_view(32, 32, seed=13).with_(finetune_mask=None)
    out = RandomCrop()(view, gen())
    assert out is not None and out.finetune_mask is None
    assert out.user_mask.mean().item() < 0.65


# -- intensity ops ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(INTENSITY))
def test_intensity_ops_leave_masks_bit_identical(name: str) -> None:
    op = registered()[name][0]()
    view = random_view(32, 32, seed=14)
    out = op(view, gen())
    assert out is not None
    assert out.user_mask is view.user_mask or torch.equal(out.user_mask, view.user_mask)
    assert out.finetune_mask is not None and view.finetune_mask is not None
    assert torch.equal(out.finetune_mask, view.finetune_mask)
    assert torch.equal(out.empty, view.empty)
    assert not torch.equal(out.image, view.image)
    assert out.image.min() >= 0 and out.image.max() <= 1


def test_brightness_scales_and_clips() -> None:
    view = random_view(16, 16, seed=15)
    out = RandomBrightness(factor=1.25)(view, gen())
    assert torch.allclose(out.image, (view.image * 1.25).clamp(0, 1))
    ratios = []
    for s in range(50):
        ratios.append(RandomBrightness()(view, gen(s)).image[0, 0, 0, 0] / view.image[0, 0, 0, 0])
    r = torch.stack(ratios)
    assert r.min() >= 0.7 - 1e-6 and r.max() <= 1.3 + 1e-6 and r.std() > 0.1


def test_blur_fixed_values_and_odd_kernel_sizes() -> None:
    view = random_view(32, 32, seed=16)
    out = RandomGaussianBlur(kernel_size=5, sigma=2.0)(view, gen())  # combination A
    assert torch.allclose(out.image, gaussian_blur2d(view.image, (5, 5), (2.0, 2.0)))
    assert RandomGaussianBlur().kernel_sizes == (5, 7)
    assert RandomGaussianBlur().sigma == (3.0, 6.0)
    with pytest.raises(ValueError, match="odd"):
        RandomGaussianBlur(kernel_size=6)
    with pytest.raises(ValueError, match="odd"):
        RandomGaussianBlur(kernel_size=(6, 6))


def test_noise_has_the_requested_standard_deviation() -> None:
    h = w = 64
    view = View(
        image=torch.full((1, 3, h, w), 0.5),
        user_mask=torch.zeros(1, 1, h, w),
        finetune_mask=None,
        empty=torch.zeros(1, 1, h, w),
    )
    out = RandomGaussianNoise()(view, gen())
    delta = out.image - 0.5
    assert abs(delta.mean().item()) < 0.01
    assert 0.18 < delta.std().item() < 0.21  # σ 0.2, barely clipped at ±2.5σ


# -- reproducibility and devices ---------------------------------------------------------------


def outputs_equal(a: View | None, b: View | None) -> bool:
    if a is None or b is None:
        return a is b
    fields = ("image", "user_mask", "finetune_mask", "empty")
    return all(torch.equal(getattr(a, f), getattr(b, f)) for f in fields)


@pytest.mark.parametrize("name", sorted(GEOMETRIC | INTENSITY))
def test_same_seed_same_output_different_seed_different(name: str) -> None:
    op = registered()[name][0]()
    view = random_view(32, 32, seed=17)
    assert outputs_equal(op(view, gen(1)), op(view, gen(1)))
    if name in ("hflip", "vflip"):
        return  # deterministic
    outs = [op(view, gen(s)) for s in range(5)]
    assert not all(outputs_equal(outs[0], o) for o in outs[1:])


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name", sorted(GEOMETRIC | INTENSITY))
def test_cuda_tensors_with_cpu_generator_match_cpu(name: str) -> None:
    op = registered()[name][0]()
    view = random_view(32, 32, seed=18)
    on_gpu = View(
        image=view.image.cuda(),
        user_mask=view.user_mask.cuda(),
        finetune_mask=None if view.finetune_mask is None else view.finetune_mask.cuda(),
        empty=view.empty.cuda(),
    )
    cpu, gpu = op(view, gen(2)), op(on_gpu, gen(2))
    assert (cpu is None) == (gpu is None)
    if cpu is not None and gpu is not None:
        assert gpu.image.is_cuda
        assert torch.allclose(cpu.image, gpu.image.cpu(), atol=1e-4)
        assert torch.equal(cpu.user_mask, gpu.user_mask.cpu())
