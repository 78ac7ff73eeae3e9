"""Reference aligners: bring another shot of the scene into the target photo's frame.

* ``homography`` (default): SIFT features on reduced grey copies (the target's holes and a
  margin left out: they show what the person wants gone), Lowe's ratio test, a RANSAC
  homography. A reference whose matches are too few, or do not agree on one mapping, or
  agree on an implausible one (scaled by more than ``max_scale`` either way), does not match
  and is skipped: a photo of another scene must not teach the network.
* ``resize``: no matching; the reference is stretched onto the target's frame (shots from a
  tripod, or already aligned).
"""

from __future__ import annotations

import numpy as np
from torch import Tensor

from tttkit.components import Alignment
from tttkit.imageops import area_shrunk
from tttkit.plugins import hookimpl


def _grey(image: Tensor, side: int) -> tuple[np.ndarray, float]:
    """A grey uint8 copy with its longest side at most ``side``, and the factor applied."""
    import cv2

    factor = min(1.0, side / max(image.shape[-2:]))
    return cv2.cvtColor(area_shrunk(image, factor), cv2.COLOR_RGB2GRAY), factor


class HomographyAligner:
    """Features, ratio test and a RANSAC homography (module docstring).

    Args:
        side: longest side of the copies features are found on.
        ratio: Lowe's ratio test threshold.
        min_inliers: fewest matches consistent with the homography to accept it.
        min_inlier_share: smallest share of the ratio-tested matches it must explain.
        max_scale: largest zoom between the shots accepted (either way).
    """

    def __init__(
        self,
        side: int = 1024,
        ratio: float = 0.75,
        min_inliers: int = 20,
        min_inlier_share: float = 0.25,
        max_scale: float = 4.0,
    ) -> None:
        if side < 64 or not 0 < ratio < 1 or min_inliers < 4 or max_scale < 1:
            raise ValueError(
                "homography: side ≥ 64, 0 < ratio < 1, min_inliers ≥ 4 and max_scale ≥ 1 "
                f"(got side={side}, ratio={ratio}, min_inliers={min_inliers}, "
                f"max_scale={max_scale})"
            )
        self.side, self.ratio, self.max_scale = side, ratio, max_scale
        self.min_inliers, self.min_inlier_share = min_inliers, min_inlier_share

    def __call__(self, target: Tensor, holes: Tensor, reference: Tensor) -> Alignment:
        import cv2

        target_grey, t_factor = _grey(target, self.side)
        reference_grey, r_factor = _grey(reference, self.side)
        hidden = holes[0].numpy().astype(np.uint8) * 255
        hidden = cv2.resize(hidden, target_grey.shape[::-1], interpolation=cv2.INTER_AREA)
        known = np.where(cv2.dilate(hidden, np.ones((15, 15), np.uint8)) > 0, 0, 255)
        sift = cv2.SIFT_create(nfeatures=4000)
        t_points, t_desc = sift.detectAndCompute(target_grey, known.astype(np.uint8))
        r_points, r_desc = sift.detectAndCompute(reference_grey, None)
        if t_desc is None or r_desc is None or len(t_desc) < 2 or len(r_desc) < 2:
            return Alignment(None, "no features to match (a flat or tiny photo)")
        pairs = cv2.BFMatcher(cv2.NORM_L2).knnMatch(r_desc, t_desc, k=2)
        good = [p[0] for p in pairs if len(p) == 2 and p[0].distance < self.ratio * p[1].distance]
        if len(good) < self.min_inliers:
            return Alignment(None, f"too few matching points ({len(good)})")
        source = np.float32([r_points[m.queryIdx].pt for m in good])
        destination = np.float32([t_points[m.trainIdx].pt for m in good])
        matrix, inliers = cv2.findHomography(source, destination, cv2.RANSAC, 4.0)
        count = 0 if inliers is None else int(inliers.sum())
        if matrix is None or count < max(self.min_inliers, self.min_inlier_share * len(good)):
            return Alignment(None, f"the matches do not agree on one view ({count} of {len(good)})")
        # reduced reference → reduced target, as full reference → full target pixels
        to_full = np.diag([1 / t_factor, 1 / t_factor, 1.0])
        full = to_full @ matrix @ np.diag([r_factor, r_factor, 1.0])
        full /= full[2, 2]  # findHomography's normalisation, kept after rescaling
        scale = float(np.sqrt(abs(np.linalg.det(full[:2, :2]))))
        if not 1 / self.max_scale <= scale <= self.max_scale:
            return Alignment(None, f"the shots differ in scale by {scale:.2f}×: implausible")
        return Alignment(full, f"{count} matching points")


class ResizeAligner:
    """Stretch the reference onto the target's frame: no matching (module docstring)."""

    def __call__(self, target: Tensor, holes: Tensor, reference: Tensor) -> Alignment:
        (t_h, t_w), (r_h, r_w) = target.shape[-2:], reference.shape[-2:]
        matrix = np.diag([t_w / r_w, t_h / r_h, 1.0])
        return Alignment(matrix, "stretched onto the photo (no matching)")


@hookimpl
def tttkit_register_reference_aligners(register) -> None:  # type: ignore[no-untyped-def]
    """The built-in reference aligners."""
    register(
        "homography", HomographyAligner,
        description="SIFT matches and a RANSAC homography; skips shots that do not match",
    )  # fmt: skip
    register("resize", ResizeAligner, description="stretch onto the photo (tripod shots)")
