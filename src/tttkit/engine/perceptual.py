"""The frozen feature network of the perceptual loss (thesis §2.7.3): a VGG loaded from local files.

Nothing here downloads and nothing falls back to random weights: a perceptual loss computed with
an untrained network would quietly train towards noise. :func:`load_feature_network` looks for a
weights file in a fixed order and raises :class:`PerceptualWeightsError`, saying how to provide
one or how to switch the loss off, when it finds none.

The network is torchvision's ``vgg16().features`` / ``vgg19().features`` layout (convolutions,
ReLUs and max-pools in one ``nn.Sequential``), so torchvision's own ImageNet checkpoints, bare
``features`` state dicts (``0.weight`` …) and the project's
``vgg16_imagenet_features.safetensors`` all load. Inputs follow torchvision's convention: RGB in
``[0, 1]`` normalised with the ImageNet mean and standard deviation (done by
:class:`tttkit.engine.losses.PerceptualLoss`, not by the network).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from tttkit.config import StrategySpec, apply
from tttkit.io import InputError

#: Environment variable naming a weights file (second in the search order).
ENV_WEIGHTS = "TTTKIT_PERCEPTUAL_WEIGHTS"

#: File names torchvision gives its ImageNet VGG checkpoints in ``torch.hub.get_dir()/checkpoints``
#: (``VGG19_Weights.IMAGENET1K_V1`` / ``VGG16_Weights.IMAGENET1K_V1``), searched in this order:
#: VGG-19 first because it is the network of the perceptual loss in the thesis (§2.7.3) and in
#: Yang et al.'s code.
TORCHVISION_CHECKPOINTS: tuple[tuple[str, str], ...] = (
    ("vgg19", "vgg19-dcbb9e9d.pth"),
    ("vgg16", "vgg16-397923af.pth"),
)

#: Layers compared by default: the first ReLU of each block, as in Yang et al.'s code
#: (``relu1_1`` … ``relu5_1``, equal weights) — from edges and colours up to object parts.
DEFAULT_LAYERS: tuple[str, ...] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")

#: ImageNet statistics the torchvision VGG weights expect (RGB, for inputs in ``[0, 1]``).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# Output channels of each 3×3 convolution, "M" for a 2×2 max-pool (torchvision's cfgs "D", "E").
_CONFIGS: dict[str, tuple[int | str, ...]] = {
    "vgg16": (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
              512, 512, 512, "M"),
    "vgg19": (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
              512, 512, 512, 512, "M"),
}  # fmt: skip
_ARCHS = ", ".join(sorted(_CONFIGS))
_ARCH_BY_CONVS = {sum(1 for v in cfg if v != "M"): arch for arch, cfg in _CONFIGS.items()}
_CONV_KEY = re.compile(r"^(\d+)\.(weight|bias)$")


class PerceptualWeightsError(InputError):
    """No usable weights for the perceptual loss's feature network; the message says what to do."""


class PerceptualWeightsMissing(PerceptualWeightsError):
    """Nothing was named and nothing was found: no argument, no ``$TTTKIT_PERCEPTUAL_WEIGHTS``,
    no torchvision checkpoint in the cache (a named file that is missing or broken is the parent
    error). A strategy whose perceptual term is optional runs without it then."""


def build_vgg_features(arch: str) -> nn.Sequential:
    """An untrained VGG feature extractor with torchvision's module layout.

    Built here rather than with ``torchvision.models.vgg16()`` so that the 120-million-parameter
    classifier is never allocated. ReLUs are not in-place, so a tapped activation is never
    overwritten by the next layer.

    Args:
        arch: ``"vgg16"`` or ``"vgg19"``.

    Returns:
        ``nn.Sequential`` whose indices match ``torchvision.models.<arch>().features``.
    """
    if arch not in _CONFIGS:
        raise ValueError(f"unknown VGG architecture {arch!r}; expected one of {_ARCHS}")
    layers: list[nn.Module] = []
    channels = 3
    for value in _CONFIGS[arch]:
        if value == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            assert isinstance(value, int)
            layers += [nn.Conv2d(channels, value, kernel_size=3, padding=1), nn.ReLU()]
            channels = value
    return nn.Sequential(*layers)


def vgg_layer_names(features: nn.Sequential) -> dict[str, int]:
    """Map conventional VGG layer names to indices of a feature ``nn.Sequential``.

    Names follow the Caffe/MatConvNet convention Yang et al. use: ``conv{block}_{n}``,
    ``relu{block}_{n}`` and ``pool{block}``, blocks separated by max-pools.

    Args:
        features: a VGG-like sequence of ``Conv2d``/``ReLU``/``MaxPool2d`` (possibly truncated).

    Returns:
        ``{"conv1_1": 0, "relu1_1": 1, …}``.
    """
    names: dict[str, int] = {}
    block, conv = 1, 0
    for index, module in enumerate(features):
        if isinstance(module, nn.Conv2d):
            conv += 1
            names[f"conv{block}_{conv}"] = index
        elif isinstance(module, nn.ReLU):
            names[f"relu{block}_{conv}"] = index
        elif isinstance(module, nn.MaxPool2d):
            names[f"pool{block}"] = index
            block, conv = block + 1, 0
    return names


def resolve_layers(features: nn.Sequential, layers: Iterable[str | int]) -> list[int]:
    """Indices of ``layers`` (names like ``"relu3_1"`` or plain indices) in ``features``, sorted.

    Raises:
        ValueError: a layer is unknown or beyond the end of ``features``.
    """
    names = vgg_layer_names(features)
    indices = []
    for layer in layers:
        index = layer if isinstance(layer, int) else names.get(layer)
        if index is None or not 0 <= index < len(features):
            raise ValueError(
                f"layer {layer!r} is not in this feature network ({len(features)} modules; "
                f"named layers: {', '.join(names)})"
            )
        indices.append(index)
    if not indices:
        raise ValueError("at least one layer is needed")
    return sorted(set(indices))


def find_weights(weights: str | Path | None = None) -> tuple[Path, str]:
    """Locate the weights file: explicit path, then ``$TTTKIT_PERCEPTUAL_WEIGHTS``, then the cache.

    The torch hub cache (``torch.hub.get_dir()/checkpoints``) is only *looked at*: torchvision's
    VGG-19 (then VGG-16) ImageNet checkpoint is used if an earlier run put it there.

    Args:
        weights: a file given by the caller (``--perceptual-weights``), or ``None``.

    Returns:
        ``(path, where it came from)`` for messages.

    Raises:
        PerceptualWeightsError: the given or configured file does not exist, or none was found.
    """
    if weights is not None:
        return _existing(Path(weights), "perceptual weights file"), "argument"
    from_env = os.environ.get(ENV_WEIGHTS)
    if from_env:
        return _existing(Path(from_env), f"perceptual weights file (${ENV_WEIGHTS})"), ENV_WEIGHTS
    checkpoints = Path(torch.hub.get_dir()) / "checkpoints"
    for _, name in TORCHVISION_CHECKPOINTS:
        if (checkpoints / name).is_file():
            return checkpoints / name, "torch hub cache"
    raise PerceptualWeightsMissing(
        "the perceptual loss needs ImageNet VGG weights and none were found (nothing is "
        "downloaded). Provide them with --perceptual-weights FILE (a VGG-16/VGG-19 state dict, "
        f".safetensors or .pth), or set {ENV_WEIGHTS}=FILE, or place torchvision's VGG-19 "
        f"checkpoint at {checkpoints / TORCHVISION_CHECKPOINTS[0][1]}; or disable the loss with "
        "--set losses.perceptual=0"
    )


def load_feature_network(
    weights: str | Path | None = None,
    arch: str = "auto",
    *,
    layers: Sequence[str | int] = DEFAULT_LAYERS,
    device: str | torch.device | None = None,
) -> nn.Sequential:
    """Load a frozen VGG feature extractor for the perceptual loss, never downloading.

    Search order (:func:`find_weights`): ``weights``; ``$TTTKIT_PERCEPTUAL_WEIGHTS``; torchvision's
    VGG-19 (then VGG-16) ImageNet checkpoint if already in the torch hub cache. Accepted files:
    ``.safetensors`` or ``torch.save`` files (read with ``weights_only=True``), holding either a
    ``features`` state dict (``0.weight`` …) or a whole VGG state dict (``features.0.weight`` …;
    classifier keys are ignored). Networks are cached per (file, layers, device), so repeated
    runs in one process read the file once.

    Args:
        weights: weights file, or ``None`` to search.
        arch: ``"vgg16"``, ``"vgg19"``, or ``"auto"`` (from the number of convolutions: 13 or 16).
        layers: layers the loss will read; the network is cut after the deepest one.
        device: where to put the network (default CPU).

    Returns:
        The truncated ``nn.Sequential`` in eval mode with ``requires_grad=False``; attributes
        ``arch`` and ``source`` (the file) describe it.

    Raises:
        PerceptualWeightsError: no file, an unreadable file, or one that is not a VGG-16/19.
    """
    if arch != "auto" and arch not in _CONFIGS:
        raise ValueError(f"unknown VGG architecture {arch!r}; expected 'auto' or one of {_ARCHS}")
    path, _ = find_weights(weights)
    device = torch.device(device if device is not None else "cpu")
    stat = path.stat()
    file_key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    key = (*file_key, tuple(layers), str(device))  # the file decides the architecture
    cached = _NETWORKS.get(key)
    # A caller may have moved the cached module in place with .to(); rebuild it if so.
    if cached is not None and _same_device(_device_of(cached), device):
        _check_arch(path, cached.arch, arch)  # type: ignore[arg-type]
        return cached

    found_arch, state = _read_vgg_state(path)
    _check_arch(path, found_arch, arch)
    with torch.device("meta"):  # no memory, no random initialisation: the file sets everything
        network = build_vgg_features(found_arch)
    network.load_state_dict(state, strict=True, assign=True)
    try:
        keep = resolve_layers(network, layers)[-1] + 1
    except ValueError as exc:
        raise PerceptualWeightsError(f"{path}: {exc}") from None
    network = nn.Sequential(*list(network)[:keep]).to(device).eval().requires_grad_(False)
    network.arch = found_arch  # type: ignore[assignment]
    network.source = str(path)  # type: ignore[assignment]
    _NETWORKS[key] = network
    return network


def clear_cache() -> None:
    """Forget every loaded network (tests, or to free memory)."""
    _NETWORKS.clear()


_NETWORKS: dict[tuple[Any, ...], nn.Sequential] = {}


def _existing(path: Path, what: str) -> Path:
    if not path.is_file():
        state = "is a directory" if path.is_dir() else "does not exist"
        raise PerceptualWeightsError(f"{what} {path} {state}")
    return path


def _device_of(module: nn.Module) -> torch.device:
    return next(module.parameters()).device


def _same_device(actual: torch.device, wanted: torch.device) -> bool:
    # "cuda" asks for the current GPU; parameters report "cuda:0"
    return actual.type == wanted.type and wanted.index in (None, actual.index)


def _check_arch(path: Path, found: str, wanted: str) -> None:
    if wanted not in ("auto", found):
        convs = sum(1 for v in _CONFIGS[found] if v != "M")
        raise PerceptualWeightsError(
            f"{path} holds a {found} ({convs} convolutions), not a {wanted}"
        )


def _conv_count(state: dict[str, Tensor]) -> int:
    return sum(1 for k, v in state.items() if k.endswith(".weight") and v.ndim == 4)


def _read_state_dict(path: Path) -> dict[str, Any]:
    """Read a ``.safetensors`` or ``torch.save`` file into a flat dict of tensors."""
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            data: Any = load_file(str(path), device="cpu")
        else:
            data = _torch_load(path)
    except Exception as exc:  # every reader has its own exception types
        raise PerceptualWeightsError(
            f"cannot read perceptual weights {path}: {type(exc).__name__}: {exc}"
        ) from None
    if isinstance(data, dict) and isinstance(data.get("state_dict"), dict):
        data = data["state_dict"]  # a training checkpoint wrapping the state dict
    if not isinstance(data, dict):
        raise PerceptualWeightsError(
            f"{path} holds a {type(data).__name__}, not a state dict of VGG weights"
        )
    return data


def _expected_shapes(arch: str) -> dict[str, torch.Size]:
    """Parameter shapes of ``build_vgg_features(arch)``, without building it."""
    shapes: dict[str, torch.Size] = {}
    index, channels = 0, 3
    for value in _CONFIGS[arch]:
        if value == "M":
            index += 1
            continue
        assert isinstance(value, int)
        shapes[f"{index}.weight"] = torch.Size((value, channels, 3, 3))
        shapes[f"{index}.bias"] = torch.Size((value,))
        index, channels = index + 2, value
    return shapes


def _torch_load(path: Path) -> Any:
    # weights_only: a checkpoint is data, never code to run. mmap: torchvision's whole-VGG
    # checkpoints are mostly classifier (≈0.5 GB), which is then never read from disk.
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError as exc:
        if "mmap" not in str(exc):  # only the legacy (non-zip) format cannot be mapped
            raise
        return torch.load(path, map_location="cpu", weights_only=True)


def _read_vgg_state(path: Path) -> tuple[str, dict[str, Tensor]]:
    """The ``features`` part of a VGG state dict in ``path`` and its architecture."""
    data = _read_state_dict(path)
    keys = [k.removeprefix("module.") for k in data]  # nn.DataParallel prefix
    tensors = dict(zip(keys, data.values(), strict=True))
    if any(k.startswith("features.") for k in keys):  # a whole VGG: keep the feature extractor
        tensors = {k.removeprefix("features."): v for k, v in tensors.items()}
    state = {k: v for k, v in tensors.items() if _CONV_KEY.match(k) and isinstance(v, Tensor)}
    convs = _conv_count(state)
    found = _ARCH_BY_CONVS.get(convs)
    sample = ", ".join(list(keys)[:6]) + (", …" if len(keys) > 6 else "")
    if found is None:
        raise PerceptualWeightsError(
            f"{path} is not a VGG-16/VGG-19 state dict: found {convs} convolution weights "
            f"(expected 13 or 16) among {len(keys)} keys ({sample or 'none'})"
        )
    expected = _expected_shapes(found)
    if set(state) != set(expected) or any(state[k].shape != expected[k] for k in expected):
        raise PerceptualWeightsError(
            f"{path} has {convs} convolutions but not torchvision's {found} layout "
            f"(keys or shapes differ; found: {sample}); batch-norm VGGs are not supported"
        )
    # copies: the kept tensors must not stay views of a mapped file or of a larger buffer
    return found, {k: v.float().clone() for k, v in state.items()}


def network_for(
    spec: StrategySpec, weights: str | Path | None, device: torch.device | str = "cpu"
) -> tuple[StrategySpec, nn.Module | None, list[str]]:
    """The perceptual loss's feature network for ``spec``, and the spec that will really run.

    A spec whose perceptual term is optional (``losses.perceptual_optional``) runs without it
    when no weights are on the machine: the returned spec has the term at 0, and a notice says
    so. Otherwise missing weights are refused (:class:`PerceptualWeightsError`).

    Returns:
        ``(spec that runs, network or None, notices)``.

    Raises:
        PerceptualWeightsError: weights are needed and none are usable.
    """
    if spec.losses.perceptual <= 0 or spec.steps == 0:  # no training, no loss
        return spec, None, []
    try:
        return spec, load_feature_network(weights, device=device), []
    except PerceptualWeightsMissing:
        if not spec.losses.perceptual_optional:
            raise
    notice = (
        f"no VGG weights on this machine, so {spec.name!r} ran without its perceptual term "
        f"({spec.losses.perceptual:g}): a less sharp fill. Name a VGG-16/19 file with "
        "--perceptual-weights FILE or TTTKIT_PERCEPTUAL_WEIGHTS (docs/quality.md)"
    )
    return apply(spec, {"losses.perceptual": 0.0}), None, [notice]


__all__ = [
    "DEFAULT_LAYERS",
    "ENV_WEIGHTS",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "TORCHVISION_CHECKPOINTS",
    "PerceptualWeightsError",
    "PerceptualWeightsMissing",
    "build_vgg_features",
    "clear_cache",
    "find_weights",
    "load_feature_network",
    "network_for",
    "resolve_layers",
    "vgg_layer_names",
]
