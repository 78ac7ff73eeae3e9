"""User-hole fillers (thesis §4.4): what stands in the user's holes while the network finetunes.

The holes have no ground truth; the filler's content tells the network not to trust them.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path

import torch
from torch import Tensor

from tttkit.components import FillContext
from tttkit.imageops import center_crop_resize
from tttkit.io import IMAGE_SUFFIXES
from tttkit.plugins import hookimpl


def _paste(image: Tensor, user_mask: Tensor, content: Tensor) -> Tensor:
    return image * (1 - user_mask) + content * user_mask


class RandomPixels:
    """Uniform random colours, new for every view and step (the thesis's baseline)."""

    def __call__(self, image: Tensor, user_mask: Tensor, context: FillContext) -> Tensor:
        noise = torch.rand(image.shape, generator=context.generator).to(image)
        return _paste(image, user_mask, noise)


class Black:
    """Black pixels."""

    def __call__(self, image: Tensor, user_mask: Tensor, context: FillContext) -> Tensor:
        return image * (1 - user_mask)


class RandomImage:
    """Content of a random other photograph, center-cropped and resized to the view.

    Args:
        folder: directory of images "from the same distribution" (searched recursively). The
            evaluation harness passes the evaluated images' folder; ``None`` uses the example
            photographs bundled with tttkit.
        exclude: file names to leave out (the image being completed itself).
    """

    def __init__(self, folder: str | None = None, exclude: tuple[str, ...] = ()) -> None:
        self.folder = Path(folder) if folder is not None else _bundled_examples()
        self.exclude = set(exclude)
        self._paths: list[Path] | None = None
        self._cache: dict[tuple[Path, int, int], Tensor] = {}

    def paths(self) -> list[Path]:
        """The candidate images, sorted; raises ``FileNotFoundError`` naming the folder."""
        if self._paths is None:
            if not self.folder.is_dir():
                raise FileNotFoundError(f"random-image filler: folder {self.folder} does not exist")
            self._paths = sorted(
                p
                for p in self.folder.rglob("*")
                if p.suffix.lower() in IMAGE_SUFFIXES and p.name not in self.exclude
            )
            if not self._paths:
                raise FileNotFoundError(f"random-image filler: no images in {self.folder}")
        return self._paths

    def __call__(self, image: Tensor, user_mask: Tensor, context: FillContext) -> Tensor:
        paths = self.paths()
        height, width = image.shape[-2:]
        picks = torch.randint(0, len(paths), (image.shape[0],), generator=context.generator)
        content = torch.stack([self._load(paths[int(i)], height, width) for i in picks])
        return _paste(image, user_mask, content.to(image))

    def _load(self, path: Path, height: int, width: int) -> Tensor:
        key = (path, height, width)
        if key not in self._cache:
            from tttkit.io import read_image  # the one module that reads files

            self._cache[key] = center_crop_resize(read_image(path), height, width)
        return self._cache[key]


class CoarseApproximation:
    """The current network's own completion of the holes, recomputed at every step."""

    def __call__(self, image: Tensor, user_mask: Tensor, context: FillContext) -> Tensor:
        if context.predict is None:
            raise RuntimeError("the coarse filler needs the network; it only works inside a run")
        with torch.no_grad():
            coarse = context.predict(image, user_mask)
        return _paste(image, user_mask, coarse)


def _bundled_examples() -> Path:
    return Path(str(importlib.resources.files("tttkit") / "data" / "examples"))


@hookimpl
def tttkit_register_fillers(register) -> None:  # type: ignore[no-untyped-def]
    """The thesis's user-hole fillers."""
    register("random-pixels", RandomPixels, description="uniform random colours (baseline)")
    register("black", Black, description="black pixels")
    register("random-image", RandomImage, description="a random other photograph from a folder")
    register("coarse", CoarseApproximation, description="the current network's own completion")
