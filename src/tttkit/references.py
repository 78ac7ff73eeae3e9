"""Companion photos as test-time training data: other shots of the same scene.

A person who removes a passer-by often has other shots taken seconds apart in which the hidden
part is visible (the thesis's last idea for future work). Each reference photo is brought into
the target's frame by a registered reference aligner (:class:`tttkit.components.
ReferenceAligner`; ``homography`` by default), then, for every window the target is completed
in, warped into that window at the network's size and matched to the target's exposure
(:meth:`ReferenceViews.exposed_like`). The engine draws some of each step's views from these
reference views (:meth:`ReferenceViews.mix`): random finetuning masks on their
pixels, as on the target — including where the target's hole is, which a well-aligned
reference shows — and, with ``masks="holes"``, masks over the target's holes too. Memory
grows with the windows and the number of references, not with their resolution: only the
window's part of a reference is warped, at the network's size.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from tttkit.imageops import area_shrunk, dilate
from tttkit.io import InputError, read_image
from tttkit.windows import Window

#: Default share of each step's views drawn from the references.
DEFAULT_SHARE = 0.5
#: How finetuning masks are drawn on reference views: ``random`` as on the photo; ``holes``
#: the random mask plus the photo's holes where the reference shows them, so the network is
#: trained on exactly the region it must fill (the reference's pixels there as the target).
REFERENCE_MASKS = ("random", "holes")
#: The default, chosen on the companion benchmark's tuning split (docs/companions.md): hole L1
#: +17% over the raw fill with masks over the holes, +3% with random masks.
DEFAULT_MASKS = "holes"

#: A warped reference's border pixels blend with the empty outside; they count as missing.
BORDER = 2
#: Exposure matching needs this many pixels shared by a reference and the target's known ones,
#: and keeps each channel's gain in this range (beyond it the shots do not show one scene).
MIN_SHARED_PIXELS, GAIN_RANGE = 256, (0.5, 2.0)


@dataclass(frozen=True)
class Reference:
    """A reference photo and where its pixels land in the target photo.

    Attributes:
        name: how messages call it (the file name).
        pixels: ``(3, H, W)`` uint8, the photo as read (EXIF orientation applied).
        matrix: ``3×3`` reference pixel → target pixel (homogeneous).
        note: what the aligner said.
    """

    name: str
    pixels: Tensor
    matrix: np.ndarray
    note: str


@dataclass(frozen=True)
class ReferenceViews:
    """The references of one run, in its frame: what the engine draws views from.

    Attributes:
        images: ``(R, 3, h, w)`` in ``[0, 1]``, the run's size.
        missing: ``(R, 1, h, w)``, 1 where a reference has no content (outside it once
            aligned): treated as the target's holes are (filled, never a finetuning target).
        share: of each step's views drawn from the references (``0 < share ≤ 1``; with two or
            more views a step keeps at least one of the target).
        masks: how finetuning masks are drawn on them (:data:`REFERENCE_MASKS`).
    """

    images: Tensor
    missing: Tensor
    share: float = DEFAULT_SHARE
    masks: str = DEFAULT_MASKS

    def __post_init__(self) -> None:
        if not 0.0 < self.share <= 1.0:
            raise ValueError(f"reference share must be in (0, 1], got {self.share}")
        if self.masks not in REFERENCE_MASKS:
            raise ValueError(
                f"reference masks must be one of {REFERENCE_MASKS}, got {self.masks!r}"
            )
        if self.images.dim() != 4 or self.images.shape[1] != 3 or len(self.images) == 0:
            raise ValueError(f"reference images must be (R, 3, h, w), got {self.images.shape}")
        if self.missing.shape != (len(self.images), 1, *self.images.shape[-2:]):
            raise ValueError(
                f"reference masks {tuple(self.missing.shape)} do not match the images "
                f"{tuple(self.images.shape)}"
            )

    def exposed_like(self, target: Tensor, holes: Tensor) -> ReferenceViews:
        """Each view with a per-channel gain and offset fitted (least squares, on the pixels it
        shares with the target's known ones) so that its exposure and white balance match the
        target's: shots seconds apart differ in both, and the network would learn the wrong
        colours for the hole. A view sharing too few pixels is left as it is.

        Args:
            target: ``(3, h, w)`` in ``[0, 1]``, the run's image.
            holes: ``(1, h, w)`` or ``(h, w)``, 1 at the target's holes.
        """
        known = holes.reshape(1, *target.shape[-2:]) < 0.5
        adjusted = []
        for image, missing in zip(self.images, self.missing, strict=True):
            shared = (known & (missing < 0.5))[0]
            if int(shared.sum()) < MIN_SHARED_PIXELS:
                adjusted.append(image)
                continue
            source, goal = image[:, shared], target[:, shared]  # (3, n)
            mean_s, mean_g = source.mean(dim=1), goal.mean(dim=1)
            spread = ((source - mean_s[:, None]) ** 2).mean(dim=1).clamp_min(1e-6)
            gain = ((source - mean_s[:, None]) * (goal - mean_g[:, None])).mean(dim=1) / spread
            gain = gain.clamp(*GAIN_RANGE)
            offset = mean_g - gain * mean_s
            adjusted.append((image * gain[:, None, None] + offset[:, None, None]).clamp(0, 1))
        return replace(self, images=torch.stack(adjusted))

    def to(self, device: torch.device | str) -> ReferenceViews:
        """The same views on ``device``."""
        return replace(self, images=self.images.to(device), missing=self.missing.to(device))

    def views_per_step(self, batch: int, generator: torch.Generator) -> int:
        """How many of a step's ``batch`` views come from the references."""
        if batch == 1:
            return int(torch.rand((), generator=generator) < self.share)
        return min(batch - 1, max(1, round(batch * self.share)))

    def mix(
        self,
        images: Tensor,
        holes: Tensor,
        forbidden: Tensor,
        margin: int,
        generator: torch.Generator,
    ) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
        """Replace the last views of a step's batch by randomly chosen references.

        Args:
            images, holes, forbidden: the step's ``(B, …)`` target views, their holes, and
                where finetuning masks must not go.
            margin: pixels kept clear around missing content, as around the target's holes.
            generator: the run's source of randomness.

        Returns:
            The views, their holes, where finetuning masks must not go, and (``masks="holes"``)
            ``(B, 1, h, w)`` what each view's finetuning mask must also cover — the target's
            holes on reference views, clear of their missing pixels — or ``None``.
        """
        count = self.views_per_step(len(images), generator)
        if count == 0:
            return images, holes, forbidden, None
        pick = torch.randint(len(self.images), (count,), generator=generator).to(images.device)
        missing = self.missing[pick]
        keep = len(images) - count
        blocked = dilate(missing, margin)
        cover = None
        if self.masks == "holes":
            on_references = holes[:1].expand_as(missing) * (1 - blocked)
            cover = torch.cat((torch.zeros_like(holes[:keep]), on_references))
        return (
            torch.cat((images[:keep], self.images[pick].to(images.dtype))),
            torch.cat((holes[:keep], missing)),
            torch.cat((forbidden[:keep], blocked)),
            cover,
        )


def read_reference(
    path: str | Path, target: Tensor, max_pixels: int | None = None
) -> tuple[str, Tensor]:
    """Read a reference photo as ``(name, (3, H, W) uint8)`` with the photo's own checks
    (pixel limit, EXIF orientation, corrupt files named)."""
    path = Path(path)
    pixels = read_image(path, max_pixels=max_pixels, dtype=torch.uint8)
    refuse_the_photo_itself(str(path), pixels, target)
    return path.name, pixels


def refuse_the_photo_itself(name: str, pixels: Tensor, target: Tensor) -> None:
    """A reference with the target's very pixels shows nothing the target does not."""
    if pixels.shape == target.shape and torch.equal(pixels, target):
        raise InputError(
            f"reference {name} is the photo itself (the same pixels): a reference must be "
            "another shot of the scene"
        )


def align_reference(
    target: Tensor, holes: Tensor, name: str, pixels: Tensor, aligner: object
) -> tuple[Reference | None, str]:
    """One reference aligned to ``target`` by ``aligner`` (a
    :class:`~tttkit.components.ReferenceAligner`): ``(reference, note)``, or ``(None, why)``
    when it does not match or its mapping is degenerate."""
    found = aligner(target, holes, pixels)  # type: ignore[operator]
    if found.matrix is None:
        return None, found.note
    matrix = np.asarray(found.matrix, dtype=np.float64).reshape(3, 3)
    if not np.isfinite(matrix).all() or abs(np.linalg.det(matrix)) < 1e-12:
        return None, f"{found.note}; the mapping is degenerate"
    return Reference(name, pixels, matrix, found.note), found.note


def crop_to_windows(reference: Reference, windows: Sequence[Window]) -> Reference | None:
    """The part of ``reference`` that lands in any of ``windows`` (with a margin), as its own
    copy and with its mapping; ``None`` when it lands in none."""
    to_reference = np.linalg.inv(reference.matrix)
    corners = []
    for w in windows:
        right, bottom = w.left + w.width, w.top + w.height
        box = np.array(
            [[w.left, w.top, 1.0], [right, w.top, 1.0], [w.left, bottom, 1.0], [right, bottom, 1.0]]
        )
        mapped = to_reference @ box.T
        if np.any(mapped[2] <= 0):  # behind the camera: the whole reference may reach it
            return reference
        corners.append((mapped[:2] / mapped[2]).T)
    points = np.concatenate(corners)
    height, width = reference.pixels.shape[-2:]
    margin = 8
    left = int(max(0, np.floor(points[:, 0].min()) - margin))
    top = int(max(0, np.floor(points[:, 1].min()) - margin))
    right = int(min(width, np.ceil(points[:, 0].max()) + margin))
    bottom = int(min(height, np.ceil(points[:, 1].max()) + margin))
    if right <= left or bottom <= top:
        return None
    pixels = reference.pixels[:, top:bottom, left:right].clone()
    shift = np.array([[1.0, 0, left], [0, 1.0, top], [0, 0, 1.0]])  # crop pixel → reference
    return Reference(reference.name, pixels, reference.matrix @ shift, reference.note)


def window_matrix(window: Window) -> np.ndarray:
    """Target photo pixel → the window's network pixel."""
    height, width = window.network_size()
    sy, sx = height / window.height, width / window.width
    return np.array([[sx, 0.0, -window.left * sx], [0.0, sy, -window.top * sy], [0.0, 0.0, 1.0]])


def reference_views(
    references: Sequence[Reference],
    window: Window,
    share: float = DEFAULT_SHARE,
    masks: str = DEFAULT_MASKS,
) -> ReferenceViews | None:
    """Each reference warped into ``window`` at the network's size; ``None`` when none
    reaches the window (every one shows none of it)."""
    import cv2

    height, width = window.network_size()
    images, missing = [], []
    for reference in references:
        to_window = window_matrix(window) @ reference.matrix
        pixels, to_window = _reduced(reference.pixels, to_window, (width / 2, height / 2))
        picture = pixels.permute(1, 2, 0).numpy()
        warped = cv2.warpPerspective(
            picture, to_window, (width, height), flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT, borderValue=0,
        )  # fmt: skip
        inside = cv2.warpPerspective(
            np.full(picture.shape[:2], 255, np.uint8), to_window, (width, height),
            flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=0,
        )  # fmt: skip
        inside = cv2.erode(inside, np.ones((2 * BORDER + 1, 2 * BORDER + 1), np.uint8))
        if not inside.any():
            continue
        images.append(torch.from_numpy(warped).permute(2, 0, 1).float() / 255)
        missing.append(torch.from_numpy(inside == 0).float()[None])
    if not images:
        return None
    return ReferenceViews(torch.stack(images), torch.stack(missing), share, masks)


def _reduced(
    pixels: Tensor, to_window: np.ndarray, at: tuple[float, float]
) -> tuple[Tensor, np.ndarray]:
    """The reference area-downscaled to about twice the scale it is warped at (a linear warp
    of a much larger image would alias), and the mapping from the reduced copy."""
    scale = _local_scale(np.linalg.inv(to_window), at)  # reference pixels per window pixel
    factor = min(1.0, 2.0 / scale) if scale > 0 else 1.0
    if factor >= 0.75:
        return pixels, to_window
    height, width = pixels.shape[-2:]
    small = area_shrunk(pixels, factor)
    expand = np.diag([width / small.shape[1], height / small.shape[0], 1.0])  # reduced → ref.
    return torch.from_numpy(small).permute(2, 0, 1), to_window @ expand


def _local_scale(matrix: np.ndarray, at: tuple[float, float]) -> float:
    """How many output pixels one input pixel spans near ``at`` (square root of the Jacobian's
    determinant of the projective map)."""
    x, y = at
    w = matrix[2, 0] * x + matrix[2, 1] * y + matrix[2, 2]
    u = (matrix[0, 0] * x + matrix[0, 1] * y + matrix[0, 2]) / w
    v = (matrix[1, 0] * x + matrix[1, 1] * y + matrix[1, 2]) / w
    jacobian = np.array(
        [
            [(matrix[0, 0] - u * matrix[2, 0]) / w, (matrix[0, 1] - u * matrix[2, 1]) / w],
            [(matrix[1, 0] - v * matrix[2, 0]) / w, (matrix[1, 1] - v * matrix[2, 1]) / w],
        ]
    )
    return float(np.sqrt(abs(np.linalg.det(jacobian))))
