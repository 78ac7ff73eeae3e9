from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tttkit.components import FillContext
from tttkit.io import write_image
from tttkit_strategies.fillers import Black, CoarseApproximation, RandomImage, RandomPixels


def inputs() -> tuple[torch.Tensor, torch.Tensor]:
    image = torch.full((2, 3, 16, 16), 0.5)
    mask = torch.zeros(2, 1, 16, 16)
    mask[..., 4:12, 4:12] = 1
    return image, mask


def context(seed: int = 0, predict=None) -> FillContext:
    return FillContext(generator=torch.Generator().manual_seed(seed), predict=predict)


@pytest.mark.parametrize("filler", [RandomPixels(), Black(), CoarseApproximation()])
def test_fillers_change_only_the_holes(filler) -> None:
    image, mask = inputs()
    out = filler(image, mask, context(predict=lambda im, m: torch.zeros_like(im)))
    assert torch.equal(out * (1 - mask), image * (1 - mask))
    assert not torch.equal(out * mask, image * mask)


def test_random_pixels_differ_per_view_and_repeat_under_seed() -> None:
    image, mask = inputs()
    a = RandomPixels()(image, mask, context(1))
    assert not torch.equal(a[0], a[1])
    assert torch.equal(a, RandomPixels()(image, mask, context(1)))


def test_coarse_uses_the_current_network() -> None:
    image, mask = inputs()
    out = CoarseApproximation()(
        image, mask, context(predict=lambda im, m: torch.full_like(im, 0.25))
    )
    assert torch.all(out[mask.expand_as(out) > 0] == 0.25)
    with pytest.raises(RuntimeError, match="only works inside a run"):
        CoarseApproximation()(image, mask, context())


def test_random_image_pastes_another_photo(tmp_path: Path) -> None:
    write_image(tmp_path / "red.png", torch.tensor([1.0, 0, 0])[:, None, None].expand(3, 20, 30))
    write_image(tmp_path / "self.png", torch.zeros(3, 8, 8))
    image, mask = inputs()
    out = RandomImage(folder=str(tmp_path), exclude=("self.png",))(image, mask, context())
    holes = out[:, :, 4:12, 4:12]
    assert torch.allclose(holes[:, 0], torch.ones_like(holes[:, 0]))
    assert torch.equal(out * (1 - mask), image * (1 - mask))


def test_random_image_errors_name_the_folder(tmp_path: Path) -> None:
    image, mask = inputs()
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "missing")):
        RandomImage(folder=str(tmp_path / "missing"))(image, mask, context())
    with pytest.raises(FileNotFoundError, match="no images in"):
        RandomImage(folder=str(tmp_path))(image, mask, context())
