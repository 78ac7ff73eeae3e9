"""Finetuning-mask strategies (thesis §3.2.2 and §4.2): what part of the known region is hidden.

Every strategy returns masks that never touch ``forbidden`` pixels (the dilated user mask and any
empty pixels), so ``F = F′ \\ dilate(U)`` holds by construction.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from tttkit.components import MaskSamplingError
from tttkit.imageops import shift_without_wrap
from tttkit.plugins import hookimpl


def numpy_rng(generator: torch.Generator) -> np.random.Generator:
    """A NumPy generator seeded from ``generator``, so drawing with OpenCV stays reproducible."""
    seed = int(torch.randint(0, 2**62, (1,), generator=generator).item())
    return np.random.default_rng(seed)


def draw_stroke(
    canvas: np.ndarray,
    rng: np.random.Generator,
    max_vertex: int,
    max_length: float,
    max_brush_width: float,
    max_angle: float,
    min_brush_width: float = 1.0,
) -> None:
    """Draw one brush stroke of thesis Algorithm 1 (after Yu et al.) onto ``canvas`` in place."""
    height, width = canvas.shape
    x, y = rng.uniform(0, width), rng.uniform(0, height)
    brush = max(1, int(rng.uniform(min_brush_width, max(min_brush_width, max_brush_width))))
    for i in range(int(rng.integers(1, max_vertex + 1))):
        angle = rng.uniform(0, max_angle)
        if i % 2 == 0:
            angle = 2 * math.pi - angle
        length = rng.uniform(1, max_length)
        nx, ny = x + length * math.sin(angle), y + length * math.cos(angle)
        cv2.line(canvas, (int(x), int(y)), (int(nx), int(ny)), 1, brush)
        cv2.circle(canvas, (int(nx), int(ny)), brush // 2, 1, -1)
        x, y = float(np.clip(nx, 0, width - 1)), float(np.clip(ny, 0, height - 1))


class FreeFormMasks:
    """Free-form brush strokes (thesis Algorithm 1) covering a fraction in ``[alpha, beta]``.

    Strokes are added one at a time to an empty canvas; the mask is accepted as soon as the
    part outside ``forbidden`` covers between ``alpha`` and ``beta`` of the image, and the canvas
    starts over when it overshoots. This samples the thesis's "draw until the area lies in
    [α, β]" without wasting whole masks. Stroke sizes are fractions of the image diagonal, so
    masks look alike at any resolution (at 256² the defaults give segments up to ~36 px long
    and strokes 9–29 px wide).

    Args:
        alpha: minimum covered fraction (baseline 0.15; "larger masks" 0.23).
        beta: maximum covered fraction (baseline 0.25; "larger masks" 0.30).
        max_vertex: vertices per stroke.
        max_length: segment length, as a fraction of the image diagonal.
        max_brush_width: brush width, as a fraction of the image diagonal.
        min_brush_width: smallest brush width, as a fraction of the image diagonal (Algorithm 1
            draws from 0; hairline strokes hide almost nothing, so we start at ~9 px at 256²).
        max_angle: maximum turning angle in radians.
        max_tries: canvases to start before giving up.
    """

    def __init__(
        self,
        alpha: float = 0.15,
        beta: float = 0.25,
        max_vertex: int = 12,
        max_length: float = 0.1,
        max_brush_width: float = 0.08,
        min_brush_width: float = 0.025,
        max_angle: float = 4.0,
        max_tries: int = 200,
    ) -> None:
        if not 0.0 <= alpha <= beta <= 1.0:
            raise ValueError(f"free-form masks need 0 <= alpha <= beta <= 1, got {alpha}, {beta}")
        self.alpha, self.beta = alpha, beta
        self.max_vertex, self.max_length = max_vertex, max_length
        self.max_brush_width, self.max_angle = max_brush_width, max_angle
        self.min_brush_width = min_brush_width
        self.max_tries = max_tries

    def __call__(self, user_mask: Tensor, forbidden: Tensor, generator: torch.Generator) -> Tensor:
        rng = numpy_rng(generator)
        allowed = (forbidden < 0.5).squeeze(1).cpu().numpy()
        masks = [self._one(allowed_i, rng) for allowed_i in allowed]
        return torch.from_numpy(np.stack(masks)[:, None]).to(forbidden)

    def _one(self, allowed: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        height, width = allowed.shape
        area = float(height * width)
        if allowed.sum() / area < self.alpha:
            raise MaskSamplingError(
                f"cannot hide {self.alpha:.0%} of the image for finetuning: only "
                f"{allowed.sum() / area:.1%} of it is known outside the user's holes"
            )
        diagonal = math.hypot(height, width)
        canvas = np.zeros((height, width), np.uint8)
        for _ in range(self.max_tries):
            canvas[:] = 0
            while True:
                draw_stroke(
                    canvas,
                    rng,
                    self.max_vertex,
                    self.max_length * diagonal,
                    self.max_brush_width * diagonal,
                    self.max_angle,
                    self.min_brush_width * diagonal,
                )
                mask = canvas.astype(bool) & allowed
                coverage = mask.sum() / area
                if coverage > self.beta:
                    break
                if coverage >= self.alpha:
                    return mask.astype(np.float32)
        raise MaskSamplingError(
            f"no free-form mask covering {self.alpha:.0%}–{self.beta:.0%} of the image was found "
            f"in {self.max_tries} tries; widen alpha/beta or reduce the user mask"
        )


class AugmentedUserMasks:
    """The user's own mask, flipped, rotated and translated, then chiselled (thesis §4.2.1).

    Each view gets a random left-right flip and up-down flip (p 0.5 each), a rotation by a
    multiple of 90° (180° only for non-square images) and a translation of up to half the image
    size; pixels moved out of the frame are lost. The result minus ``forbidden`` is accepted if
    it covers at least ``min_coverage`` of the image; after ``max_tries`` the largest candidate is
    used (a tiny user mask cannot yield a large finetuning mask).

    Args:
        min_coverage: minimum fraction of the image the chiselled mask must cover.
        max_shift: largest translation, as a fraction of the image side.
        max_tries: candidates to draw before settling for the largest.
    """

    def __init__(self, min_coverage: float = 0.05, max_shift: float = 0.5, max_tries: int = 50):
        self.min_coverage, self.max_shift, self.max_tries = min_coverage, max_shift, max_tries

    def __call__(self, user_mask: Tensor, forbidden: Tensor, generator: torch.Generator) -> Tensor:
        return torch.cat(
            [
                self._one(u[None], f[None], generator)
                for u, f in zip(user_mask, forbidden, strict=True)
            ]
        )

    def _one(self, user_mask: Tensor, forbidden: Tensor, generator: torch.Generator) -> Tensor:
        height, width = user_mask.shape[-2:]
        best, best_coverage = torch.zeros_like(user_mask), -1.0
        for _ in range(self.max_tries):
            flips = torch.rand(2, generator=generator)
            mask = user_mask
            if flips[0] < 0.5:
                mask = mask.flip(-1)
            if flips[1] < 0.5:
                mask = mask.flip(-2)
            quarter_turns = int(torch.randint(0, 4, (1,), generator=generator))
            if height != width:
                quarter_turns = 2 * (quarter_turns % 2)
            mask = torch.rot90(mask, quarter_turns, dims=(-2, -1))
            limits = torch.tensor([height, width]) * self.max_shift
            shift = ((torch.rand(2, generator=generator) * 2 - 1) * limits).round().int().tolist()
            mask = shift_without_wrap(mask, shift[0], shift[1]) * (forbidden < 0.5)
            coverage = float(mask.mean())
            if coverage >= self.min_coverage:
                return mask
            if coverage > best_coverage:
                best, best_coverage = mask, coverage
        return best


class FullImageMasks:
    """Tiles that together cover the whole image across a batch (thesis §4.2.2).

    The image is cut into ``grid × grid`` equal squares; each batch of views shares them out
    (the thesis: 16 tiles, 4 per view for a batch of 4), so the union of the batch's masks is the
    whole known region. Tile borders are bent by a smooth random displacement so the shapes look
    free-form rather than square, as the backbone was pretrained on free-form masks; the tiles
    still partition the image exactly.

    Args:
        grid: tiles per side.
        roughness: amplitude of the border displacement, as a fraction of a tile side.
    """

    def __init__(self, grid: int = 4, roughness: float = 0.15) -> None:
        if grid < 1:
            raise ValueError(f"full-image masks need grid >= 1, got {grid}")
        self.grid, self.roughness = grid, roughness

    def __call__(self, user_mask: Tensor, forbidden: Tensor, generator: torch.Generator) -> Tensor:
        batch, _, height, width = forbidden.shape
        labels = self._tile_labels(height, width, generator)
        order = torch.randperm(self.grid**2, generator=generator)
        groups = torch.tensor_split(order, batch) if batch <= self.grid**2 else None
        if groups is None:
            raise MaskSamplingError(
                f"full-image masks share {self.grid**2} tiles; a batch of {batch} views is larger"
            )
        masks = torch.stack([torch.isin(labels, g) for g in groups])[:, None].float()
        return masks.to(forbidden) * (forbidden < 0.5)

    def _tile_labels(self, height: int, width: int, generator: torch.Generator) -> Tensor:
        ys = torch.arange(height, dtype=torch.float32)[:, None].expand(height, width)
        xs = torch.arange(width, dtype=torch.float32)[None, :].expand(height, width)
        tile_h, tile_w = height / self.grid, width / self.grid
        # A coarse random field, smoothly upsampled: borders wander by up to `roughness` of a tile.
        coarse = torch.rand(1, 2, self.grid * 2 + 1, self.grid * 2 + 1, generator=generator) * 2 - 1
        field = F.interpolate(coarse, size=(height, width), mode="bicubic", align_corners=True)[0]
        ys = ys + field[0] * self.roughness * tile_h
        xs = xs + field[1] * self.roughness * tile_w
        rows = (ys / tile_h).floor().clamp(0, self.grid - 1)
        cols = (xs / tile_w).floor().clamp(0, self.grid - 1)
        return (rows * self.grid + cols).long()


@hookimpl
def tttkit_register_finetune_masks(register) -> None:  # type: ignore[no-untyped-def]
    """The thesis's finetuning-mask strategies."""
    register("free-form", FreeFormMasks, description="free-form brush strokes in [alpha, beta]")
    register(
        "augmented-user-mask",
        AugmentedUserMasks,
        description="the user's mask flipped, rotated and translated (§4.2.1)",
    )
    register(
        "full-image",
        FullImageMasks,
        description="grid tiles shared out so a batch covers the whole image (§4.2.2)",
    )
