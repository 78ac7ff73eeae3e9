"""Real-size photos: where to run test-time training, and how to paste the result back.

A backbone works at its working size (e.g. 128² or 256²); photos are often 4000×3000 with a few
small holes. Three modes:

* ``crop`` (default): holes closer than a gap are grouped (connected components of the dilated
  mask); each group gets a square window around it with as much context again as the group's
  extent on every side (at least the working size; along a photo narrower than that, a strip
  as long as the square's side), downscaled to the working size when larger.
  TTT runs per window; only that group's hole pixels are pasted back, with a soft seam inside
  the hole when the window was downscaled (:func:`paste`). Memory is bounded by the
  working size, whatever the photo's size. A small photo (short side up to twice the working
  size) whose holes would need several windows runs once, downscaled, as in ``resize``.
* ``resize``: one window, the whole photo downscaled so its short side is the working size
  (and its long side at most :data:`RESIZE_ASPECT` working sizes).
* ``full``: the whole photo at its own resolution (the caller asked for it: no bound on memory).

In every mode pixels outside the holes are returned bit-identical to the input.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from tttkit.imageops import as_unit, smooth_fill, to_dtype
from tttkit.io import InputError

WINDOW_MODES = ("crop", "resize", "full")

#: In crop mode, a photo whose short side is at most this many working sizes is completed in one
#: downscaled window when its holes would need several.
SMALL_PHOTO = 2
#: In ``resize`` mode the long side is scaled to at most this many working sizes, so that the
#: network's input stays bounded for any aspect ratio.
RESIZE_ASPECT = 4


@dataclass(frozen=True)
class Window:
    """A rectangle of the photo to run on, and which holes it is responsible for.

    Attributes:
        top, left, height, width: the rectangle in photo pixels.
        scale: factor from photo to network pixels (≤ 1).
        label: connected-component label of the holes this window fills (0: all holes).
    """

    top: int
    left: int
    height: int
    width: int
    scale: float
    label: int = 0

    @property
    def slices(self) -> tuple[slice, slice]:
        """Row and column slices of the rectangle."""
        return slice(self.top, self.top + self.height), slice(self.left, self.left + self.width)

    def is_whole(self, height: int, width: int) -> bool:
        """Whether this window is the whole ``height``×``width`` photo at its own resolution."""
        return (self.top, self.left, self.height, self.width, self.scale) == (
            0,
            0,
            height,
            width,
            1.0,
        )

    def network_size(self) -> tuple[int, int]:
        """Height and width the network sees."""
        return max(1, round(self.height * self.scale)), max(1, round(self.width * self.scale))


@dataclass(frozen=True)
class HoleLabels:
    """Hole-group labels of a photo (0: no hole), stored for the holes' bounding box only, so
    that their memory grows with the holes, not with the photo.

    Attributes:
        shape: the photo's ``(H, W)``.
        top, left: where ``box`` lies in the photo.
        box: ``int32`` labels of the bounding box.
    """

    shape: tuple[int, int]
    top: int = 0
    left: int = 0
    box: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.int32), repr=False)

    def crop(self, rows: slice, cols: slice) -> np.ndarray:
        """The labels of the photo's ``[rows, cols]`` rectangle (zero outside the box)."""
        height, width = self.shape
        r0, r1, _ = rows.indices(height)
        c0, c1, _ = cols.indices(width)
        out = np.zeros((max(0, r1 - r0), max(0, c1 - c0)), np.int32)
        b_height, b_width = self.box.shape
        top, bottom = max(r0, self.top), min(r1, self.top + b_height)
        left, right = max(c0, self.left), min(c1, self.left + b_width)
        if top < bottom and left < right:
            out[top - r0 : bottom - r0, left - c0 : right - c0] = self.box[
                top - self.top : bottom - self.top, left - self.left : right - self.left
            ]
        return out

    def dense(self) -> np.ndarray:
        """The whole ``(H, W)`` label map (for inspection; a large photo makes it large)."""
        return self.crop(slice(None), slice(None))


def hole_groups(mask: Tensor, gap: int) -> tuple[HoleLabels, int]:
    """Hole groups: holes within ``gap`` pixels of each other share a label; and their count."""
    holes = (mask.reshape(mask.shape[-2:]) > 0.5).numpy()
    shape = (int(holes.shape[0]), int(holes.shape[1]))
    rows, cols = np.nonzero(holes.any(axis=1))[0], np.nonzero(holes.any(axis=0))[0]
    if len(rows) == 0:
        return HoleLabels(shape), 0
    # Only the holes' bounding box (plus the gap) is labelled.
    top, bottom = max(0, rows[0] - gap), min(shape[0], rows[-1] + gap + 1)
    left, right = max(0, cols[0] - gap), min(shape[1], cols[-1] + gap + 1)
    box = holes[top:bottom, left:right].astype(np.uint8)
    kernel = np.ones((2 * gap + 1, 2 * gap + 1), np.uint8) if gap > 0 else None
    grown = cv2.dilate(box, kernel) if kernel is not None else box
    count, labels = cv2.connectedComponents(grown, connectivity=8, ltype=cv2.CV_32S)
    labels[box == 0] = 0
    return HoleLabels(shape, int(top), int(left), labels), count - 1


def check_window_mode(mode: str, option: str = "--windows") -> None:
    """Raise :class:`InputError` unless ``mode`` is one of :data:`WINDOW_MODES`.

    Args:
        mode: the value given.
        option: how the message names the option: the name the user typed (an old name
            reads ``--region (now --windows)``).
    """
    if mode not in WINDOW_MODES:
        raise InputError(f"{option} must be one of {', '.join(WINDOW_MODES)}, got {mode!r}")


def plan_windows(
    mask: Tensor, working_size: int, mode: str = "crop"
) -> tuple[list[Window], HoleLabels]:
    """The windows to run on, and the hole-group label map their ``label`` refers to.

    Args:
        mask: ``(1, H, W)`` or ``(H, W)``, 1 at the holes.
        working_size: the backbone's working size.
        mode: ``"crop"``, ``"resize"`` or ``"full"`` (module docstring).
    """
    check_window_mode(mode)
    height, width = mask.shape[-2:]
    everything = HoleLabels((height, width))  # label-0 windows fill every hole: no map needed
    if mode == "full":
        return [Window(0, 0, height, width, 1.0)], everything
    # Short side to the working size, long side at most RESIZE_ASPECT times it (a long strip).
    scale = min(
        1.0, working_size / min(height, width), RESIZE_ASPECT * working_size / max(height, width)
    )
    whole = [Window(0, 0, height, width, scale)]
    if mode == "resize" or max(height, width) <= working_size:
        return whole, everything
    labels, count = hole_groups(mask, gap=max(1, working_size // 8))
    windows = []
    boxes = _label_boxes(labels.box)
    for label in range(1, count + 1):
        if label not in boxes:
            continue
        ys, xs = boxes[label]
        ys, xs = ys + labels.top, xs + labels.left
        extent = int(max(ys.max() - ys.min() + 1, xs.max() - xs.min() + 1))
        side = max(working_size, 3 * extent)
        # Square where the photo allows; along a narrow photo, as long as the square's side.
        rows, cols = min(side, height), min(side, width)
        cy, cx = (ys.min() + ys.max()) // 2, (xs.min() + xs.max()) // 2
        top = int(np.clip(cy - rows // 2, 0, height - rows))
        left = int(np.clip(cx - cols // 2, 0, width - cols))
        scale = min(1.0, working_size / max(rows, cols))
        windows.append(Window(top, left, rows, cols, scale, int(label)))
    if len(windows) > 1 and min(height, width) <= SMALL_PHOTO * working_size:
        # Each window costs a whole TTT run; on a small photo one downscaled run loses little.
        return whole, everything
    return windows, labels


def _label_boxes(labels: np.ndarray) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """For each label, the row and column extremes ``([top, bottom], [left, right])``."""
    ys, xs = np.nonzero(labels)
    values = labels[ys, xs]
    boxes = {}
    for label in np.unique(values):
        chosen = values == label
        rows, cols = ys[chosen], xs[chosen]
        boxes[int(label)] = (
            np.array([rows.min(), rows.max()]),
            np.array([cols.min(), cols.max()]),
        )
    return boxes


def to_network(x: Tensor, window: Window, binary: bool = False) -> Tensor:
    """Cut ``window`` out of ``(C, H, W)`` and scale it for the network (area; masks: any hole)."""
    rows, cols = window.slices
    crop = x[:, rows, cols]
    if window.scale >= 1.0:
        return (crop > 0.5).float() if binary else as_unit(crop)
    if binary:
        return (area_downscale((crop > 0.5).to(torch.uint8), window.network_size()) > 0).float()
    return area_downscale(crop, window.network_size())


def area_downscale(x: Tensor, size: tuple[int, int], band: int = 32) -> Tensor:
    """``F.interpolate(x[None], size, mode="area")[0]`` of ``(C, H, W)`` pixels (uint8 or
    float), converted to float a band of rows at a time: no full-size float copy of a large
    photo. Area interpolation averages each output pixel's bin of input rows and columns, so
    pooling the columns of a band of rows, then averaging each bin of rows, is the same sum.
    """
    channels, height = x.shape[:2]
    out_h, out_w = size
    starts = [(i * height) // out_h for i in range(out_h)]
    stops = [-(-((i + 1) * height) // out_h) for i in range(out_h)]
    out = torch.empty(channels, out_h, out_w)
    for first in range(0, out_h, band):
        last = min(out_h, first + band)
        top, bottom = starts[first], stops[last - 1]
        rows = as_unit(x[:, top:bottom]).float()
        pooled = F.adaptive_avg_pool2d(rows[None], (bottom - top, out_w))[0]  # columns only
        for i in range(first, last):
            out[:, i] = pooled[:, starts[i] - top : stops[i] - top].mean(dim=1)
    return out


def responsible_holes(mask: Tensor, labels: HoleLabels, window: Window) -> Tensor:
    """``(1, h, w)`` boolean mask of the holes inside ``window`` that it must fill."""
    rows, cols = window.slices
    holes = mask.reshape(1, *mask.shape[-2:])[:, rows, cols] > 0.5
    if window.label:  # only this group's holes: other windows fill the others
        holes &= torch.from_numpy(labels.crop(rows, cols) == window.label)[None]
    return holes


def paste(output: Tensor, fill: Tensor, holes: Tensor, window: Window) -> None:
    """Write ``fill`` (network-size completion of ``window``) into ``output`` at ``holes`` only.

    ``holes`` is the window's ``(1, h, w)`` boolean mask of the pixels it is responsible for
    (:func:`responsible_holes`). When the window was downscaled, the fill is upscaled
    bicubically and a soft seam hides the resolution step at the hole's edge: within
    :func:`seam_width` pixels of the known region the fill fades into a smooth interpolation of
    the full-resolution known pixels around it. The seam lies inside the hole: known pixels are
    never written.
    """
    rows, cols = window.slices
    target = output[:, rows, cols]
    if window.scale < 1.0:
        # Only the holes' bounding box (plus room for the seam) is upscaled and blended, so
        # that time and memory grow with the holes, not with the photo.
        width = seam_width(window)
        box = _bounding_box(holes[0], margin=4 * width)
        if box is None:
            return
        top, bottom, left, right = box
        target, holes = target[:, top:bottom, left:right], holes[:, top:bottom, left:right]
        fill = _upscale_part(fill, (window.height, window.width), box)
        fill = _soft_seam(fill, target, holes, width)
    target[holes.expand_as(target)] = to_dtype(fill[holes.expand_as(fill)], output.dtype)


def _bounding_box(holes: Tensor, margin: int) -> tuple[int, int, int, int] | None:
    """``(top, bottom, left, right)`` of the ``True`` pixels of ``(h, w)``, grown by
    ``margin`` and clipped; ``None`` when there are none."""
    rows = torch.nonzero(holes.any(dim=1)).flatten()
    cols = torch.nonzero(holes.any(dim=0)).flatten()
    if len(rows) == 0:
        return None
    height, width = holes.shape
    return (
        max(0, int(rows[0]) - margin),
        min(height, int(rows[-1]) + margin + 1),
        max(0, int(cols[0]) - margin),
        min(width, int(cols[-1]) + margin + 1),
    )


def _upscale_part(fill: Tensor, size: tuple[int, int], box: tuple[int, int, int, int]) -> Tensor:
    """The part ``box`` of ``fill`` upscaled bicubically to ``size``, sampled at the same points
    as ``F.interpolate(fill, size, mode="bicubic", align_corners=False)`` would."""
    (height, width), (top, bottom, left, right) = size, box
    small_h, small_w = fill.shape[-2:]

    def normalized(start: int, stop: int, small: int, large: int) -> Tensor:
        source = (torch.arange(start, stop, dtype=torch.float64) + 0.5) * (small / large) - 0.5
        return ((2 * source + 1) / small - 1).float()  # grid_sample's align_corners=False

    ys = normalized(top, bottom, small_h, height)
    xs = normalized(left, right, small_w, width)
    grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1)[None]
    part = F.grid_sample(
        fill[None].float(), grid, mode="bicubic", padding_mode="border", align_corners=False
    )
    return part[0].clamp(0, 1)


def seam_width(window: Window) -> int:
    """Photo pixels over which a downscaled window's fill fades in: two network pixels."""
    return max(1, round(2 / window.scale))


def _soft_seam(fill: Tensor, known: Tensor, holes: Tensor, width: int) -> Tensor:
    """Blend ``fill`` with a smooth fill of ``known`` near the hole's edge (inside the hole)."""
    hole = holes.to(torch.uint8)[0].numpy()
    # distance of every hole pixel to the nearest known pixel (1 for the pixels touching it)
    distance = cv2.distanceTransform(hole, cv2.DIST_L2, 3)
    weight = torch.from_numpy(np.clip(distance / (width + 1), 0.0, 1.0))[None].to(fill.dtype)
    smooth = smooth_fill(as_unit(known)[None].to(fill.dtype), holes[None].to(fill.dtype))[0]
    return weight * fill + (1 - weight) * smooth


def describe(window: Window) -> str:
    """Short label for progress displays."""
    h, w = window.network_size()
    return f"{window.width}×{window.height} at ({window.left},{window.top}) → {w}×{h}"
