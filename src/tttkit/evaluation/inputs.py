"""Finding the photos and masks of an evaluation, and bringing them to its working size.

An evaluation *item* is one photo with one mask, named by a unique key. Two layouts are read:

* **a folder of photos and a folder of masks** (``--masks DIR``, what ``tttkit masks`` writes):
  ``IMAGES/sub/photo.jpg`` has the mask ``DIR/sub/photo.png``; the key is the photo's path
  (``sub/photo.jpg``) and every photo must have its mask;
* **LaMa's evaluation layout** (no ``--masks``, or ``--masks`` naming the images folder itself):
  masks lie beside their photo, ``name.png`` with ``name_mask000.png``, ``name_mask001.png`` …,
  as LaMa's ``bin/gen_mask_dataset.py`` writes them and its ``saicinpainting/evaluation/data.py``
  pairs them: a mask is a ``.png`` whose name contains ``_mask``; its photo is the part of the
  name before the last ``_mask`` with an image suffix (``.png`` first, as LaMa's evaluation
  configs read it). Each photo with each of its masks is one item, keyed by the mask's path
  (``name_mask000.png``), so keys are unique and stable; photos without a mask are listed.

Images are center-cropped to a square and resized to ``size``×``size`` — area averaging when
shrinking, bicubic when enlarging — so every strategy sees exactly the same pixels. Masks are
square (``tttkit masks`` makes them at the working size; any square size is resized) or the size
of their photo, in which case they are cropped like it first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch.nn.functional as F
from torch import Tensor

from tttkit.engine.loop import MAX_HOLE_FRACTION
from tttkit.engine.pretrain import list_images
from tttkit.evaluation.layout import (
    check_outside,
    check_unique_stems,
    image_key,
    sha256_file,
    with_suffix,
)
from tttkit.io import IMAGE_SUFFIXES, InputError, read_image, read_mask

#: How images are brought to the working size (recorded in ``run.json``).
PREPROCESS = "center crop to a square, resize to size×size (area if shrinking, bicubic if not)"


def prepare_image(image: Tensor, size: int) -> Tensor:
    """Center-crop ``(3, H, W)`` to a square and resize it to ``size``×``size``."""
    height, width = image.shape[-2:]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    crop = image[:, top : top + side, left : left + side]
    if side == size:
        return crop.contiguous()
    mode = "area" if side > size else "bicubic"
    resized = F.interpolate(crop[None], size=(size, size), mode=mode)[0]
    return resized.clamp(0, 1)


def prepare_mask(mask: Tensor, image_size: tuple[int, int], size: int, path: Path) -> Tensor:
    """Bring a ``(1, h, w)`` mask to ``size``×``size`` (see the module docstring).

    A pixel is a hole when at least half of the pixels it is averaged from are holes, so the
    hidden fraction survives resizing.
    """
    height, width = mask.shape[-2:]
    if height != width:
        if (height, width) != tuple(image_size):
            raise InputError(
                f"mask {path} is {width}×{height}: masks must be square (any size) or the size "
                f"of their image ({image_size[1]}×{image_size[0]})"
            )
        side = min(height, width)
        top, left = (height - side) // 2, (width - side) // 2
        mask = mask[:, top : top + side, left : left + side]
    if mask.shape[-1] != size:
        mode = "area" if mask.shape[-1] > size else "nearest"
        mask = F.interpolate(mask[None].float(), size=(size, size), mode=mode)[0]
    return (mask >= 0.5).float()


def check_mask(mask: Tensor, path: Path) -> None:
    """Refuse masks the engine cannot use, before any work is done."""
    fraction = float(mask.mean())
    if fraction == 0.0:
        raise InputError(f"mask {path} has no holes: nothing would be evaluated")
    if fraction > MAX_HOLE_FRACTION:
        raise InputError(
            f"mask {path} covers {fraction:.0%} of the image (at most {MAX_HOLE_FRACTION:.0%})"
        )


def check_square_mask(path: Path, size: int) -> None:
    """Check the mask file ``path`` without reading its photo (square masks only; others are
    checked when their pair runs, as cropping them needs the photo's size)."""
    mask = read_mask(path)
    if mask.shape[-1] == mask.shape[-2]:
        check_mask(prepare_mask(mask, tuple(mask.shape[-2:]), size, path), path)


@dataclass
class Inputs:
    """One image as evaluated.

    Attributes:
        key: the image's key.
        image: ``(3, size, size)`` ground truth.
        mask: ``(1, size, size)``, 1 at the holes.
        image_sha256: hash of the photo file (a resumed run checks it has not changed).
        mask_sha256: hash of the mask file.
    """

    key: str
    image: Tensor
    mask: Tensor
    image_sha256: str
    mask_sha256: str


def load_inputs(item: Item, size: int) -> Inputs:
    """Read, crop and resize one item's photo and mask."""
    original = read_image(item.image)
    mask = prepare_mask(read_mask(item.mask), tuple(original.shape[-2:]), size, item.mask)
    check_mask(mask, item.mask)
    return Inputs(
        item.key,
        prepare_image(original, size),
        mask,
        sha256_file(item.image),
        sha256_file(item.mask),
    )


# -- finding the items ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Item:
    """One photo with one mask: what one (image, strategy) pair of a run evaluates.

    Attributes:
        key: the item's unique name, which its records and files are named after.
        image: the photo file.
        mask: the mask file.
    """

    key: str
    image: Path
    mask: Path


@dataclass(frozen=True)
class Items:
    """What :func:`find_items` found.

    Attributes:
        items: by key, in key order.
        lama: whether the folder was read in LaMa's layout.
        without_masks: photos (keys relative to the images folder) no mask refers to (LaMa's
            layout only: in a masks folder every photo must have its mask).
    """

    items: dict[str, Item]
    lama: bool = False
    without_masks: list[str] = field(default_factory=list)


#: What marks a mask in LaMa's layout (``name_mask000.png``).
LAMA_MASK_MARK = "_mask"


def find_items(images: Path, masks: Path | None) -> Items:
    """The items of ``images`` with masks from ``masks``, or in LaMa's layout when ``masks`` is
    ``None`` or the images folder itself (see the module docstring)."""
    if masks is None or masks.resolve() == images.resolve():
        return _lama_items(images)
    if not masks.is_dir():
        raise InputError(f"masks folder {masks} does not exist (make one: tttkit masks)")
    check_outside(masks, images, "--masks")
    keys = [image_key(p, images) for p in list_images(images)]
    check_unique_stems(keys, images)
    missing = [k for k in keys if not (masks / with_suffix(k, ".png")).is_file()]
    if missing:
        shown = ", ".join(with_suffix(k, ".png") for k in missing[:5])
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise InputError(f"{masks} has no mask for {len(missing)} image(s): {shown}{more}")
    return Items({k: Item(k, images / k, masks / with_suffix(k, ".png")) for k in keys})


def _is_lama_mask(path: Path) -> bool:
    return path.suffix.lower() == ".png" and LAMA_MASK_MARK in path.name


def _lama_items(folder: Path) -> Items:
    files = list_images(folder)
    mask_files = [p for p in files if _is_lama_mask(p)]
    if not mask_files:
        raise InputError(
            f"{folder} holds no masks beside its photos (LaMa's layout: name_mask000.png beside "
            "name.png): pass --masks DIR with one mask per photo (make one: tttkit masks)"
        )
    photos = {p: image_key(p, folder) for p in files if not _is_lama_mask(p)}
    by_stem: dict[Path, Path] = {}  # folder/stem → its photo, .png first (LaMa reads .png)
    for photo in sorted(photos, key=lambda p: IMAGE_SUFFIXES.index(p.suffix.lower())):
        by_stem.setdefault(photo.with_suffix(""), photo)
    items: dict[str, Item] = {}
    used: set[Path] = set()
    for mask in mask_files:
        stem = mask.name[: mask.name.rindex(LAMA_MASK_MARK)]
        image = by_stem.get(mask.parent / stem)
        if image is None:
            raise InputError(
                f"mask {mask} has no photo beside it: LaMa's layout pairs name_mask*.png with "
                f"name.png, and there is no {stem}.png (or .jpg …) in {mask.parent}"
            )
        key = image_key(mask, folder)
        items[key] = Item(key, image, mask)
        used.add(image)
    check_unique_stems(items, folder)
    without = sorted(key for path, key in photos.items() if path not in used)
    return Items(dict(sorted(items.items())), lama=True, without_masks=without)
