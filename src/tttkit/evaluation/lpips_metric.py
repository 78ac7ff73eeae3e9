"""LPIPS, per image, with a trunk that is looked up and never downloaded.

The score is the ``lpips`` package's (Zhang et al. 2018, v0.1): its VGG16 model and the
linear heads its wheel carries; only the VGG16 trunk comes from a local file.

**Naming rule** (as for FID, :mod:`tttkit.evaluation.fid`). Only the standard trunk —
torchvision's ImageNet VGG16 (``VGG16_Weights.IMAGENET1K_V1``, file ``vgg16-397923af.pth``,
whose SHA-256 starts with ``397923af``), the network the heads were calibrated on — gives a
score called ``lpips``. Any other VGG16 trunk (offline here: the perceptual loss's
``vgg16_imagenet_features.safetensors``, a different training of VGG16) gives ``lpips_alt``:
the same heads on other features, comparable across tttkit runs that used the same trunk
(its fingerprint is recorded) but not to the LPIPS of papers.

**Trunk lookup**, never a download: ``--lpips-weights FILE``, ``$TTTKIT_LPIPS_WEIGHTS``, then
torchvision's file in the torch hub cache; with ``auto`` and none of these, the perceptual
loss's VGG16 (``--perceptual-weights``, ``$TTTKIT_PERCEPTUAL_WEIGHTS``) gives ``lpips_alt``.
Files are read as the perceptual loss reads them (:mod:`tttkit.engine.perceptual`): a
torchvision VGG16 state dict or a bare ``features`` state dict, ``.pth`` (``weights_only``) or
``.safetensors``.

A network trained with that same trunk's perceptual loss is partly judged by what it optimised;
:func:`tttkit.metrics.weight_free_metrics` (HaarPSI, GMSD) are the measures nothing here trains on.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from tttkit.evaluation.fid import find_weights_file
from tttkit.evaluation.layout import sha256_file
from tttkit.evaluation.settings import ENV_LPIPS, LPIPS_MODES
from tttkit.io import InputError

#: torchvision's file name for ``VGG16_Weights.IMAGENET1K_V1`` in the torch hub cache.
TORCHVISION_VGG16 = "vgg16-397923af.pth"
#: The start of that file's SHA-256 (torch.hub checks downloads against the same prefix).
STANDARD_SHA256_PREFIX = "397923af"
#: Metric names: the standard trunk's, and any other trunk's.
STANDARD_NAME, ALT_NAME = "lpips", "lpips_alt"

_HASHES: dict[tuple[str, int, int], str] = {}


@dataclass
class LpipsMetric:
    """LPIPS with one trunk: call it on ``(B, 3, H, W)`` images in ``[0, 1]``.

    Attributes:
        name: ``"lpips"`` for the standard trunk, ``"lpips_alt"`` otherwise.
        source: the trunk's file.
        trunk_sha256: SHA-256 of that file.
        module: the ``lpips.LPIPS`` model (eval mode, no gradients).
    """

    name: str
    source: str
    trunk_sha256: str
    module: nn.Module

    def describe(self) -> dict[str, str]:
        """JSON-friendly identity: runs scored with different trunks must not mix."""
        return {"metric": self.name, "trunk": self.source, "trunk_sha256": self.trunk_sha256}

    @torch.no_grad()
    def __call__(self, completed: Tensor, target: Tensor) -> Tensor:
        """Per-image LPIPS distance ``(B,)`` (0 = identical; lower is better)."""
        if completed.dim() == 3:
            completed, target = completed[None], target[None]
        device = next(self.module.parameters()).device
        first = completed.to(device).float().clamp(0, 1)
        second = target.to(device).float().clamp(0, 1)
        return self.module(first, second, normalize=True).flatten().cpu()


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, remembered per path, size and modification time (a trunk is hashed
    once per process, however many runs load it)."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _HASHES:
        _HASHES[key] = sha256_file(path)
    return _HASHES[key]


def is_standard_trunk(sha256: str) -> bool:
    """Whether a trunk file is torchvision's ImageNet VGG16 (by its hash)."""
    return sha256.startswith(STANDARD_SHA256_PREFIX)


def find_lpips_trunk(weights: str | Path | None = None) -> Path | None:
    """The LPIPS trunk file: argument, ``$TTTKIT_LPIPS_WEIGHTS``, torch hub cache, or ``None``.

    An argument or variable naming a missing file is an error (a typo must not quietly change
    which metric is reported).
    """
    return find_weights_file(weights, "--lpips-weights", ENV_LPIPS, TORCHVISION_VGG16)


def load_lpips(path: str | Path, device: str | torch.device = "cpu") -> LpipsMetric:
    """LPIPS (v0.1, VGG) with the VGG16 trunk in ``path``; named by the trunk (module doc)."""
    import lpips

    from tttkit.engine.perceptual import PerceptualWeightsError, load_feature_network

    path = Path(path)
    try:
        features = load_feature_network(path, "vgg16", layers=("relu5_3",))
    except PerceptualWeightsError as exc:
        raise InputError(f"LPIPS trunk: {exc}") from None
    with warnings.catch_warnings():  # torchvision's notice about the legacy `pretrained` flag
        warnings.simplefilter("ignore")
        model = lpips.LPIPS(net="vgg", version="0.1", pnet_rand=True, verbose=False)
    trunk = features.state_dict()
    # lpips keeps torchvision's layer indices inside its slices ("slice2.5.weight" is
    # features[5]), so every trunk tensor has exactly one place.
    state = {}
    for name in model.net.state_dict():
        index_and_kind = name.split(".", 1)[1]
        state[name] = trunk[index_and_kind]
    model.net.load_state_dict(state, strict=True)
    model = model.to(device).eval().requires_grad_(False)
    sha256 = file_sha256(path)
    name = STANDARD_NAME if is_standard_trunk(sha256) else ALT_NAME
    return LpipsMetric(name, str(path), sha256, model)


def resolve_lpips(
    mode: str = "auto",
    *,
    lpips_weights: str | Path | None = None,
    perceptual_weights: str | Path | None = None,
    device: str | torch.device = "cpu",
) -> LpipsMetric | None:
    """The LPIPS metric for ``--lpips MODE``.

    ``auto``: the trunk of :func:`find_lpips_trunk` if there is one, else the perceptual loss's
    VGG16 if found (``lpips_alt``), else ``None`` (no LPIPS column). ``standard``: the standard
    trunk or an error (also when the file found is another trunk). ``off``: ``None``.
    """
    from tttkit.engine.perceptual import PerceptualWeightsError, find_weights

    if mode not in LPIPS_MODES:
        raise InputError(f"--lpips must be one of {', '.join(LPIPS_MODES)}, got {mode!r}")
    if mode == "off":
        return None
    path = find_lpips_trunk(lpips_weights)
    if path is None and mode == "auto":
        try:
            fallback, _ = find_weights(perceptual_weights)
            return load_lpips(fallback, device)
        except (PerceptualWeightsError, InputError):  # none, or a VGG19: no LPIPS column
            return None
    if path is None:
        raise InputError(
            "--lpips standard: no VGG16 trunk found (nothing is downloaded); pass "
            f"--lpips-weights FILE, set ${ENV_LPIPS}, or place torchvision's {TORCHVISION_VGG16} "
            f"in {Path(torch.hub.get_dir()) / 'checkpoints'}"
        )
    metric = load_lpips(path, device)
    if mode == "standard" and metric.name != STANDARD_NAME:
        raise InputError(
            f"--lpips standard: {path} is not torchvision's ImageNet VGG16 (its SHA-256 does not "
            f"start with {STANDARD_SHA256_PREFIX}); use --lpips auto to report it as {ALT_NAME}"
        )
    return metric


#: Above this many pixels an image gets no perceptual metrics: VGG16's activations at full
#: resolution would take gigabytes (a 24-megapixel photo's first block alone is 6 GB).
PERCEPTUAL_MAX_PIXELS = 4_194_304
#: Pixels scored per forward pass (images are scored a few at a time).
_CHUNK_PIXELS = 2_097_152


def perceptual_metrics(
    completed: Tensor, target: Tensor, lpips: LpipsMetric | None
) -> list[dict[str, float]]:
    """LPIPS (if ``lpips``), HaarPSI and GMSD of each of ``completed`` ``(N, 3, H, W)``
    against ``target`` ``(3, H, W)`` or ``(N, 3, H, W)``; one dict per image.

    Empty dicts for images above :data:`PERCEPTUAL_MAX_PIXELS` (callers say so) and, for the
    weight-free measures, below 32 pixels a side.
    """
    from tttkit.metrics import weight_free_metrics

    if completed.dim() == 3:
        completed = completed[None]
    count, pixels = len(completed), completed.shape[-2] * completed.shape[-1]
    if pixels > PERCEPTUAL_MAX_PIXELS:
        return [{} for _ in range(count)]
    target = target.reshape(-1, *completed.shape[1:]).expand(count, -1, -1, -1)
    rows: list[dict[str, float]] = [{} for _ in range(count)]
    chunk = max(1, _CHUNK_PIXELS // pixels)
    for start in range(0, count, chunk):
        part, truth = completed[start : start + chunk], target[start : start + chunk]
        scores = lpips(part, truth).tolist() if lpips is not None else [None] * len(part)
        free = weight_free_metrics(part, truth) or [{}] * len(part)
        for offset, (score, measures) in enumerate(zip(scores, free, strict=True)):
            row = rows[start + offset]
            if score is not None:
                row[lpips.name] = float(score)  # type: ignore[union-attr]
            row.update(measures)
    return rows
