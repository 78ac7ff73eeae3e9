"""The library entry points given bad or odd input: a typed error whose message names the
culprit (never a deep torch or OpenCV error), or the documented behaviour."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps
from torch import nn

import tttkit
from tests.helpers import photo_and_mask, tiny_backbone
from tttkit.api import adapt
from tttkit.backbone import Backbone, Conventions, GeneratorOutput
from tttkit.checkpoint import CheckpointError, load_backbone, load_weights
from tttkit.config import SpecError, StrategySpec
from tttkit.errors import PluginContractError, PluginRunError
from tttkit.io import (
    InputError,
    check_output_file,
    pixel_limit,
    read_image,
    read_mask,
    write_image,
)
from tttkit.plugins import PluginHost
from tttkit.registry import UnknownNameError


def _adapt(image: Any = None, mask: Any = None, **options: Any) -> Any:
    photo, holes = photo_and_mask(64)
    options.setdefault("steps", 1)
    return adapt(
        photo if image is None else image, holes if mask is None else mask,
        backbone=tiny_backbone(), **options,
    )  # fmt: skip


def _nan_photo() -> torch.Tensor:
    photo, _ = photo_and_mask(64)
    photo[0, 5, 5] = float("nan")
    return photo


LIBRARY_CASES: list[tuple[str, Callable[[dict[str, Path]], Any], type[Exception], str]] = [
    ("read-fifo", lambda z: read_image(z["fifo"]), InputError, "not a regular file"),
    ("read-bomb", lambda z: read_image(z["bomb"]), InputError, "megapixels"),
    ("read-limit", lambda z: read_image(z["photo"], max_pixels=100), InputError, "64×64"),
    ("read-nan-tiff", lambda z: read_image(z["nan"]), InputError, "not finite"),
    ("read-truncated", lambda z: read_image(z["truncated"]), InputError, "truncated"),
    ("read-empty", lambda z: read_image(z["empty"]), InputError, "empty file"),
    ("read-dtype", lambda z: read_image(z["photo"], dtype=torch.int32), ValueError, "dtype"),
    ("mask-zero-one", lambda z: read_mask(z["mask01"]), InputError, "0/255"),
    ("mask-size", lambda z: read_mask(z["mask"], size=(32, 32)), InputError, "64×64"),
    ("adapt-nan-pixels", lambda z: _adapt(_nan_photo()), InputError, "not finite"),
    (
        "adapt-too-small",
        lambda z: _adapt(torch.rand(3, 8, 8), torch.ones(1, 8, 8)),
        InputError,
        "too small",
    ),
    ("adapt-grey-shape", lambda z: _adapt(torch.rand(64, 64)), InputError, "(3, H, W)"),
    (
        "adapt-int64",
        lambda z: _adapt(torch.zeros(3, 64, 64, dtype=torch.int64)),
        InputError,
        "int64",
    ),
    ("adapt-mask-shape", lambda z: _adapt(mask=torch.zeros(1, 32, 32)), InputError, "mask"),
    ("adapt-windows", lambda z: _adapt(windows="bogus"), InputError, "--windows"),
    ("adapt-unknown-override", lambda z: _adapt(stpes=3), TypeError, "stpes"),
    ("adapt-lr-inf", lambda z: _adapt(lr=float("inf")), SpecError, "finite"),
    ("adapt-set-nan", lambda z: _adapt(sets=["optim.lr=NaN"]), SpecError, "optim.lr"),
    ("adapt-no-room", lambda z: _adapt(mask=_frame_mask()), InputError, "too little"),
    ("spec-negative-steps", lambda z: StrategySpec("x", steps=-1), SpecError, "steps"),
    (
        "spec-nan-weight",
        lambda z: tttkit.get_strategy("default").derive("y", "", {"losses.l1": float("nan")}),
        SpecError,
        "losses.l1",
    ),
    ("strategy-unknown", lambda z: tttkit.get_strategy("defualt"), UnknownNameError, "default"),
    ("load-backbone-text", lambda z: load_backbone(z["junk"]), CheckpointError, "junk.pt"),
    (
        "load-weights-directory",
        lambda z: load_weights(tiny_backbone(), z["weights_dir"]),
        CheckpointError,
        "directory",
    ),
    (
        "load-weights-pickle",
        lambda z: load_weights(tiny_backbone(), z["evil"]),
        CheckpointError,
        "weights_only",
    ),
    (
        "load-weights-one-prefix-too-many",
        lambda z: load_weights(tiny_backbone(), z["wrapped"]),
        CheckpointError,
        "the keys differ only by the prefix 'generator.', which the file's carry and this "
        "network's do not: remove it in the backbone's convert_state_dict",
    ),
    (
        "derive-a-pipeline-step-out-of-range",
        lambda z: tttkit.get_strategy("default").derive("y", "", {"augment.steps.7.p": 0.3}),
        SpecError,
        "cannot set augment.steps.7.p: augment.steps is a list of 5, indexed 0–4",
    ),
    (
        "write-bad-suffix",
        lambda z: write_image(z["photo"].with_suffix(".xyz"), torch.rand(3, 4, 4)),
        InputError,
        ".xyz",
    ),
    (
        "output-over-input",
        lambda z: check_output_file(z["photo"], "--out", inputs=[("IMAGE", z["photo"])]),
        InputError,
        "same file",
    ),
    ("pixel-limit-env", lambda z: pixel_limit(-5), InputError, "positive"),
]


def _frame_mask() -> torch.Tensor:
    """Holes everywhere but a thin frame: no room away from them for finetuning masks."""
    mask = torch.ones(1, 64, 64)
    mask[:, :2], mask[:, :, :2] = 0, 0
    return mask


@pytest.mark.parametrize(
    ("call", "error", "says"),
    [c[1:] for c in LIBRARY_CASES],
    ids=[c[0] for c in LIBRARY_CASES],
)
def test_hostile_library_call(
    call: Callable[[dict[str, Path]], Any], error: type[Exception], says: str, zoo
) -> None:
    with pytest.raises(error) as info:
        call(zoo)
    assert says in str(info.value)
    assert not (zoo["photo"].parent / "pwned.txt").exists()


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    """A phone photo stored sideways with an orientation tag is read as viewers show it."""
    pixels = (np.random.default_rng(0).random((20, 30, 3)) * 255).astype(np.uint8)
    for orientation in range(1, 9):
        image = Image.fromarray(pixels)
        exif = image.getexif()
        exif[0x0112] = orientation
        path = tmp_path / f"o{orientation}.png"
        image.save(path, exif=exif)
        with Image.open(path) as stored:
            expected = np.asarray(ImageOps.exif_transpose(stored).convert("RGB"))
        read = (read_image(path) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
        assert np.array_equal(read, expected), orientation
        upright = read_image(path, dtype=torch.uint8).permute(1, 2, 0).numpy()
        assert np.array_equal(upright, expected), orientation


def test_sixteen_bit_and_float_images_are_read(tmp_path: Path) -> None:
    import cv2

    grey16 = np.full((16, 16), 65535 // 4, np.uint16)
    cv2.imwrite(str(tmp_path / "g16.png"), grey16)
    assert torch.allclose(
        read_image(tmp_path / "g16.png"), torch.full((3, 16, 16), 0.25), atol=1e-4
    )
    colour = np.zeros((16, 16, 3), np.float32)
    colour[..., 2] = 0.75  # OpenCV writes BGR: red
    cv2.imwrite(str(tmp_path / "f.tiff"), colour)
    image = read_image(tmp_path / "f.tiff")
    assert image.shape == (3, 16, 16) and torch.allclose(image[0], torch.tensor(0.75))
    assert read_image(tmp_path / "f.tiff", dtype=torch.uint8)[0, 0, 0] == 191


def test_divergent_training_keeps_the_raw_fill() -> None:
    result = _adapt(steps=4, lr=1e30)
    assert torch.equal(result.finetuned, result.raw)
    assert result.selection.diverged_at == 2 and result.network is None
    assert any("at step 2" in n and "raw fill" in n for n in result.notices)


def test_uint8_photo_keeps_known_pixels_and_dtype() -> None:
    photo, holes = photo_and_mask(64)
    pixels = (photo * 255).round().to(torch.uint8)
    result = adapt(pixels, holes, backbone=tiny_backbone(), steps=1)
    assert result.finetuned.dtype == torch.uint8 and result.raw.dtype == torch.uint8
    known = (holes < 0.5).expand_as(pixels)
    assert torch.equal(result.finetuned[known], pixels[known])


def test_batched_shapes_of_one_are_still_accepted() -> None:
    """``(1, 3, H, W)`` photos and ``(1, 1, H, W)`` masks, as the engine always took them."""
    photo, holes = photo_and_mask(64)
    result = adapt(photo[None], holes[None], backbone=tiny_backbone(), steps=1)
    assert result.finetuned.shape == photo.shape


# -- a run that trusts no plugin (issue 30) ------------------------------------------------------


class Scripted(Backbone):
    """A backbone whose fill a test decides: ``"nan"`` fills with NaN; ``"nan-outside"`` only
    outside the holes; ``"nan-later"`` once trained (its fills after the raw one)."""

    def __init__(self, mode: str = "nan", working_size: int = 64) -> None:
        config = {"mode": mode, "working_size": working_size}
        super().__init__(Conventions(value_range=(0.0, 1.0), working_size=working_size), config)
        self.generator = nn.Conv2d(4, 3, 3, padding=1)
        self.mode = mode
        self.fills = 0  # evaluations so far (the engine fills the real holes in eval mode)

    def native_generate(self, image: torch.Tensor, mask: torch.Tensor) -> GeneratorOutput:
        out = torch.sigmoid(self.generator(torch.cat([image, mask], dim=1)))
        self.fills += 0 if self.training else 1
        nan = torch.full_like(out, float("nan"))
        if self.mode == "nan" or (self.mode == "nan-later" and self.fills > 1):
            return GeneratorOutput(nan)
        if self.mode == "nan-outside":
            return GeneratorOutput(torch.where(mask.expand_as(out) > 0.5, out, nan))
        return GeneratorOutput(out)

    def layer_groups(self) -> dict[str, nn.Module]:
        return {"generator.conv": self.generator}


def _photo(size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A photo of ``size``² with the demo's holes: 64 runs whole, 200 in windows of 64."""
    return photo_and_mask(size)


@pytest.mark.parametrize("size", [64, 200], ids=["whole", "windows"])
def test_a_backbone_filling_nan_at_step_0_is_refused(size: int) -> None:
    photo, holes = _photo(size)
    with pytest.raises(PluginContractError) as info:
        adapt(photo, holes, backbone=Scripted("nan"), steps=2)
    message = str(info.value)
    assert "backbone Scripted" in message and "not finite" in message and "step 0" in message
    assert "\n" not in message


@pytest.mark.parametrize("size", [64, 200], ids=["whole", "windows"])
@pytest.mark.parametrize("mode", ["nan-outside", "nan-later"])
def test_known_pixels_are_the_input_and_nothing_returned_is_non_finite(
    size: int, mode: str
) -> None:
    """NaN written outside the holes never reaches the output; a fill going NaN after training
    stops the run with the raw fill, as the divergence notice says."""
    photo, holes = _photo(size)
    result = adapt(photo, holes, backbone=Scripted(mode), steps=5)
    known = (holes < 0.5).expand_as(photo)
    for output in (result.raw, result.finetuned):
        assert bool(torch.isfinite(output).all())
        assert torch.equal(output[known], photo[known])
    assert torch.equal(result.finetuned, result.raw)
    assert any("raw fill (step 0) is returned" in n for n in result.notices), result.notices
    if mode == "nan-later" and size == 64:
        assert result.selection.diverged_at == 5 and result.network is None
        assert any("the fill became NaN or infinite at step 5" in n for n in result.notices)


def test_a_bare_module_names_the_wrapper() -> None:
    photo, holes = photo_and_mask(64)
    with pytest.raises(TypeError) as info:
        adapt(photo, holes, backbone=nn.Conv2d(4, 3, 3), steps=1)
    assert "tttkit.ModuleBackbone(" in str(info.value) and "Conv2d" in str(info.value)


class _Untrusted:
    """A third-party plugin whose code raises or breaks its contracts."""

    class CrashNet(Scripted):
        def __init__(self, width: int = 8) -> None:
            super().__init__("ok")
            torch.empty(width)  # a negative width: RuntimeError, not a ValueError

    class CrashingFiller:
        def __init__(self) -> None:
            raise RuntimeError("the filler's own bug")

    @staticmethod
    def freeze_a_group_that_is_not_there(groups: dict[str, nn.Module]) -> set[str]:
        return {"generator.does-not-exist"}

    @staticmethod
    def freeze_everything(groups: dict[str, nn.Module]) -> set[str]:
        return set(groups)

    @tttkit.hookimpl
    def tttkit_register_backbones(self, register: Callable[..., None]) -> None:
        register("crash-net", self.CrashNet)

    @tttkit.hookimpl
    def tttkit_register_fillers(self, register: Callable[..., None]) -> None:
        register("crashing-filler", self.CrashingFiller)

    @tttkit.hookimpl
    def tttkit_register_freezing_policies(self, register: Callable[..., None]) -> None:
        register("bad-freeze", lambda: self.freeze_a_group_that_is_not_there)
        register("freeze-all", lambda: self.freeze_everything)


@pytest.fixture
def untrusted() -> PluginHost:
    host = PluginHost(autoload=False).load()
    host.register(_Untrusted(), "untrusted", distribution="untrusted-dist")
    return host


def test_any_exception_of_a_factory_names_the_plugin(untrusted: PluginHost) -> None:
    photo, holes = photo_and_mask(64)
    with pytest.raises(PluginRunError) as info:
        adapt(photo, holes, backbone="crash-net", backbone_options={"width": -3},
              strategy="zero-shot", host=untrusted)  # fmt: skip
    message = str(info.value)
    assert "plugin 'untrusted' from distribution 'untrusted-dist'" in message
    assert "building backbone 'crash-net'" in message and "RuntimeError" in message
    assert isinstance(info.value.__cause__, RuntimeError)
    with pytest.raises(PluginRunError, match="building filler 'crashing-filler'") as info:
        adapt(photo, holes, backbone=tiny_backbone(), filler="crashing-filler", host=untrusted)
    assert "plugin 'untrusted' from distribution 'untrusted-dist'" in str(info.value)


def test_a_policy_freezing_a_group_the_backbone_lacks_lists_its_groups(
    untrusted: PluginHost,
) -> None:
    photo, holes = photo_and_mask(64)
    with pytest.raises(PluginContractError) as info:
        adapt(photo, holes, backbone=tiny_backbone(), freeze="bad-freeze", steps=1,
              host=untrusted)  # fmt: skip
    message = str(info.value)
    assert "freezing policy 'bad-freeze' (plugin 'untrusted'" in message
    assert "'generator.does-not-exist'" in message and "generator.residual.1" in message


@pytest.mark.parametrize(
    ("freeze", "sets"),
    [("freeze-all", []), ("freeze-groups", ['freeze.params.patterns=["generator.*"]'])],
)
def test_nothing_left_to_train_is_an_error_unless_no_steps_are_asked(
    untrusted: PluginHost, freeze: str, sets: list[str]
) -> None:
    photo, holes = photo_and_mask(64)
    options = {"backbone": tiny_backbone(), "freeze": freeze, "sets": sets, "host": untrusted}
    with pytest.raises(SpecError, match="leaves nothing of the generator") as info:
        adapt(photo, holes, steps=2, **options)
    assert "--steps 0" in str(info.value) and "generator.encoder" in str(info.value)
    result = adapt(photo, holes, steps=0, **options)  # the raw fill, as asked
    assert torch.equal(result.finetuned, result.raw)


def test_a_pattern_matching_no_group_is_a_usage_error_listing_the_groups() -> None:
    photo, holes = photo_and_mask(64)
    with pytest.raises(SpecError) as info:
        adapt(photo, holes, backbone=tiny_backbone(), steps=1, freeze="freeze-groups",
              sets=['freeze.params.patterns=["generator.nope"]'])  # fmt: skip
    assert str(info.value).startswith("freeze: ")
    assert "'generator.nope'" in str(info.value) and "generator.encoder" in str(info.value)
