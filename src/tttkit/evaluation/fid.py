"""Fréchet distance between feature sets (thesis §2.8.4, eq. 2.25) and the networks behind it.

**Naming rule.** Only the standard network — Inception-v3's 2,048-d pool3 features — gives a
score called ``FID``. When its weights are not on this machine, the VGG trunk of the perceptual
loss is used instead (global-average-pooled last convolution block, 512-d) and the score is
called ``FID-VGG16`` (or ``FID-VGG19``): its values are not comparable to published FIDs.

**Inception weights** are looked up, never downloaded: ``--inception-weights FILE``, then
``$TTTKIT_INCEPTION_WEIGHTS``, then torchvision's ``inception_v3_google-0cc3c7bd.pth`` in the
torch hub cache. They load into ``torchvision.models.inception_v3``; note that the usual FID
implementations (pytorch-fid, clean-fid) use a port of the original TensorFlow graph whose
weights differ slightly, so even ``FID`` here is comparable across runs of tttkit rather than
to numbers in papers to the last decimal.

**Numerics.** ``Tr((C₁C₂)^½)`` is computed without a general matrix square root: with centred
features ``X`` (n₁×D) and ``Y`` (n₂×D) scaled by ``1/√(n−1)``, the eigenvalues of ``C₁C₂ =
XᵀX·YᵀY`` are the squared singular values of ``XYᵀ``, so the trace is the nuclear norm of
``XYᵀ`` — an n₁×n₂ matrix, exact, and well-conditioned even when n < D and the covariances are
singular (the usual case for small evaluations). With more images than dimensions it uses
``Tr((√C₁ C₂ √C₁)^½)`` from symmetric eigendecompositions instead, eigenvalues clipped at 0.
Everything is in float64.

**Noise.** FID estimates 2,048×2,048 (or 512×512) covariances; with a few dozen images its value
is dominated by estimation noise and biased upwards, and differences between strategies of a
few percent mean little. The thesis reports FID on 116 images and again on 10,000 (§4.7).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tttkit.evaluation.settings import ENV_INCEPTION, FID_MODES
from tttkit.io import InputError

#: torchvision's file name for ``Inception_V3_Weights.IMAGENET1K_V1`` in the hub cache.
INCEPTION_CHECKPOINT = "inception_v3_google-0cc3c7bd.pth"

_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


# -- Fréchet distance ---------------------------------------------------------------------------


def frechet_distance(x: np.ndarray, y: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to feature sets ``x`` (n₁×D) and ``y`` (n₂×D).

    ``‖μ₁−μ₂‖² + Tr(C₁) + Tr(C₂) − 2·Tr((C₁C₂)^½)`` with unbiased covariances (see the module
    docstring for how the trace is computed). Needs at least two vectors per set.
    """
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"feature sets must be (n, D) with equal D, got {x.shape} and {y.shape}")
    if min(len(x), len(y)) < 2:
        raise ValueError("a Fréchet distance needs at least 2 feature vectors per set")
    mean_x, mean_y = x.mean(axis=0), y.mean(axis=0)
    xc = (x - mean_x) / np.sqrt(len(x) - 1)
    yc = (y - mean_y) / np.sqrt(len(y) - 1)
    dims = x.shape[1]
    if max(len(x), len(y)) <= dims:
        trace_sqrt = float(np.linalg.svd(xc @ yc.T, compute_uv=False).sum())
    else:
        trace_sqrt = trace_sqrt_product(xc.T @ xc, yc.T @ yc)
    distance = (
        float(np.sum((mean_x - mean_y) ** 2))
        + float(np.sum(xc * xc))
        + float(np.sum(yc * yc))
        - 2.0 * trace_sqrt
    )
    # Rounding can leave -1e-12 for identical sets; a distance is never negative.
    return max(distance, 0.0)


def frechet_from_statistics(
    mean_1: np.ndarray, cov_1: np.ndarray, mean_2: np.ndarray, cov_2: np.ndarray
) -> float:
    """Fréchet distance between two Gaussians given by their means and covariances."""
    mean_1, mean_2 = np.asarray(mean_1, np.float64), np.asarray(mean_2, np.float64)
    cov_1, cov_2 = np.asarray(cov_1, np.float64), np.asarray(cov_2, np.float64)
    distance = (
        float(np.sum((mean_1 - mean_2) ** 2))
        + float(np.trace(cov_1) + np.trace(cov_2))
        - 2.0 * trace_sqrt_product(cov_1, cov_2)
    )
    return max(distance, 0.0)


def psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    """Square root of a symmetric positive semi-definite matrix (eigenvalues clipped at 0)."""
    symmetric = (matrix + matrix.T) / 2
    values, vectors = np.linalg.eigh(symmetric)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def trace_sqrt_product(cov_1: np.ndarray, cov_2: np.ndarray) -> float:
    """``Tr((C₁C₂)^½)`` for PSD ``C₁``, ``C₂``, as ``Tr((√C₁ C₂ √C₁)^½)``.

    ``C₁C₂`` is similar to the PSD matrix ``√C₁ C₂ √C₁``, so their eigenvalues agree and are
    real and non-negative; a symmetric eigensolver finds them stably, where ``sqrtm(C₁C₂)`` of
    a non-symmetric product can go complex on rounding errors.
    """
    root = psd_sqrt(cov_1)
    inner = root @ cov_2 @ root
    values = np.linalg.eigvalsh((inner + inner.T) / 2)
    return float(np.sqrt(np.clip(values, 0.0, None)).sum())


# -- feature networks ---------------------------------------------------------------------------


@dataclass
class FeatureNetwork:
    """A frozen image-feature extractor for a set metric.

    Attributes:
        metric: the score's name: ``"FID"`` for Inception-v3, ``"FID-VGG16"`` etc. otherwise.
        arch: ``"inception-v3"``, ``"vgg16"`` or ``"vgg19"``.
        source: the weights file.
        dims: feature dimension.
        module: the network (eval mode, no gradients).
    """

    metric: str
    arch: str
    source: str
    dims: int
    module: nn.Module

    def describe(self) -> dict[str, object]:
        """JSON-friendly identity (the weights' fingerprint decides whether runs may mix)."""
        return {
            "metric": self.metric, "arch": self.arch, "dims": self.dims,
            "weights_sha256": module_fingerprint(self.module),
        }  # fmt: skip

    @torch.no_grad()
    def features(self, images: Tensor, batch: int = 16) -> np.ndarray:
        """Feature vectors ``(N, dims)`` (float32) of ``(N, 3, H, W)`` RGB images in ``[0, 1]``."""
        device = next(self.module.parameters()).device
        out = []
        for start in range(0, len(images), batch):
            chunk = images[start : start + batch].to(device).float().clamp(0, 1)
            out.append(self._forward(chunk).double().cpu().numpy())
        return np.concatenate(out).astype(np.float32)

    def _forward(self, images: Tensor) -> Tensor:
        if self.arch == "inception-v3":
            # torchvision's Inception reads [-1, 1] at 299² (transform_input=False here).
            x = F.interpolate(images, size=(299, 299), mode="bilinear", align_corners=False)
            return self.module(x * 2 - 1)
        mean = images.new_tensor(_IMAGENET_MEAN).view(1, 3, 1, 1)
        std = images.new_tensor(_IMAGENET_STD).view(1, 3, 1, 1)
        return self.module((images - mean) / std).mean(dim=(2, 3))


def module_fingerprint(module: nn.Module) -> str:
    """SHA-256 of a module's state (names, shapes and bytes): the same weights, the same hash."""
    from tttkit.evaluation.layout import sha256_parts

    parts = []
    for name, tensor in sorted(module.state_dict().items()):
        array = tensor.detach().cpu().contiguous()
        parts += [name.encode(), str(tuple(array.shape)).encode(), array.numpy().tobytes()]
    return sha256_parts(parts)


def find_inception_weights(weights: str | Path | None = None) -> Path | None:
    """The Inception-v3 weights file: argument, ``$TTTKIT_INCEPTION_WEIGHTS``, hub cache.

    Returns ``None`` when none is configured and the cache has none; an argument or variable
    naming a missing file is an error (a typo should not silently switch to FID-VGG16).
    """
    return find_weights_file(weights, "--inception-weights", ENV_INCEPTION, INCEPTION_CHECKPOINT)


def find_weights_file(
    weights: str | Path | None, option: str, variable: str, cached_name: str
) -> Path | None:
    """A metric network's weights, looked up and never downloaded: the ``option``'s value,
    then ``$variable``, then ``cached_name`` in the torch hub cache; ``None`` if none is there.

    An option or variable naming a missing file is an error: a typo must not quietly change
    which metric is reported.
    """
    for value, what in ((weights, option), (os.environ.get(variable), "$" + variable)):
        if value:
            path = Path(value)
            if not path.is_file():
                raise InputError(f"{what} {path} is not a file")
            return path
    cached = Path(torch.hub.get_dir()) / "checkpoints" / cached_name
    return cached if cached.is_file() else None


def load_inception(path: Path, device: str | torch.device = "cpu") -> FeatureNetwork:
    """torchvision's Inception-v3 with the weights in ``path``, cut at pool3 (2,048-d)."""
    from torchvision.models import inception_v3

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
            state = state["state_dict"]
        with torch.device("meta"):  # the file sets every value: no random initialisation
            net = inception_v3(weights=None, aux_logits=True, init_weights=False)
        net.load_state_dict(state, strict=True, assign=True)
    except Exception as exc:  # torch.load and load_state_dict raise many types
        raise InputError(
            f"{path} is not torchvision Inception-v3 weights: {type(exc).__name__}: "
            f"{str(exc).splitlines()[0][:300]}"
        ) from None
    net.fc = nn.Identity()  # the 2,048-d average-pooled features ("pool3")
    net.AuxLogits = None  # only used in training mode; frees its memory
    net.transform_input = False
    net = net.to(device).eval().requires_grad_(False)
    return FeatureNetwork("FID", "inception-v3", str(path), 2048, net)


def load_vgg(
    weights: str | Path | None = None, device: str | torch.device = "cpu"
) -> FeatureNetwork:
    """The perceptual-loss VGG trunk up to its last ReLU, as a 512-d pooled feature extractor."""
    from tttkit.engine.perceptual import load_feature_network

    net = load_feature_network(weights, layers=("relu5_3",), device=device)
    if net.arch == "vgg19":  # its last convolution is the fourth of block 5
        net = load_feature_network(weights, layers=("relu5_4",), device=device)
    arch = str(net.arch)
    return FeatureNetwork(f"FID-{arch.upper()}", arch, str(net.source), 512, net)


def resolve_feature_network(
    mode: str = "auto",
    *,
    inception_weights: str | Path | None = None,
    vgg_weights: str | Path | None = None,
    device: str | torch.device = "cpu",
) -> FeatureNetwork | None:
    """The network of the set metric for ``--fid MODE``.

    ``auto``: Inception-v3 if its weights are found, else the VGG trunk if its weights are
    found, else ``None`` (no set metric). ``inception``/``vgg``: that network or an error.
    ``off``: ``None``.
    """
    from tttkit.engine.perceptual import PerceptualWeightsError

    if mode not in FID_MODES:
        raise InputError(f"--fid must be one of {', '.join(FID_MODES)}, got {mode!r}")
    if mode == "off":
        return None
    if mode in ("auto", "inception"):
        path = find_inception_weights(inception_weights)
        if path is not None:
            return load_inception(path, device)
        if mode == "inception":
            raise InputError(
                "--fid inception: no Inception-v3 weights found (nothing is downloaded); pass "
                f"--inception-weights FILE, set ${ENV_INCEPTION}, or place {INCEPTION_CHECKPOINT} "
                f"in {Path(torch.hub.get_dir()) / 'checkpoints'}"
            )
    try:
        return load_vgg(vgg_weights, device)
    except PerceptualWeightsError:
        if mode == "vgg":
            raise
        return None


def set_features(network: FeatureNetwork, images: Sequence[Tensor]) -> np.ndarray:
    """Features ``(N, D)`` of a list of ``(3, H, W)`` or ``(1, 3, H, W)`` images."""
    return network.features(torch.cat([im.reshape(1, *im.shape[-3:]) for im in images]))
