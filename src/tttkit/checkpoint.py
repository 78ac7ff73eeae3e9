"""Backbone checkpoints: safetensors files that carry the backbone's name and configuration.

A checkpoint written by :func:`save_backbone` rebuilds its network with no other input
(:func:`load_backbone`). :func:`load_weights` loads a file into an existing backbone: tttkit
safetensors (whose metadata must match the backbone), plain safetensors, or PyTorch ``.pt`` /
``.pth`` / ``.ckpt`` state dicts — the latter always with ``torch.load(weights_only=True)``, so a
checkpoint can never run code.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save

from tttkit.backbone import Backbone
from tttkit.errors import CheckpointError
from tttkit.errors import InputError as InputError  # its old import path, kept
from tttkit.io import atomic_write_bytes

if TYPE_CHECKING:
    from tttkit.plugins import PluginHost

FORMAT_VERSION = "1"
META_BACKBONE = "tttkit.backbone"
META_CONFIG = "tttkit.config"
META_FORMAT = "tttkit.format"


def save_backbone(
    backbone: Backbone, name: str, path: str | Path, extra: Mapping[str, str] | None = None
) -> None:
    """Write ``backbone``'s parameters and buffers to ``path`` (safetensors, atomically).

    Args:
        backbone: the network.
        name: its registered backbone name, stored so the file rebuilds the right network.
        path: destination file.
        extra: further string metadata (e.g. training step, data).
    """
    tensors = {k: v.detach().contiguous().cpu() for k, v in backbone.state_dict().items()}
    metadata = {
        META_FORMAT: FORMAT_VERSION,
        META_BACKBONE: name,
        META_CONFIG: json.dumps(backbone.config, sort_keys=True),
        **dict(extra or {}),
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, save(tensors, metadata=metadata))


def read_metadata(path: str | Path) -> dict[str, str]:
    """The string metadata of a safetensors file (empty if it has none)."""
    path = _existing(path)
    try:
        with safe_open(str(path), framework="pt") as handle:
            return dict(handle.metadata() or {})
    except Exception as exc:  # safetensors raises its own error types for corrupt headers
        raise CheckpointError(
            f"checkpoint {path} is not a readable safetensors file: {exc}"
        ) from exc


def load_backbone(
    path: str | Path,
    name: str | None = None,
    device: torch.device | str = "cpu",
    host: PluginHost | None = None,
) -> tuple[str, Backbone]:
    """Rebuild the backbone stored in a tttkit checkpoint.

    Args:
        path: a file written by :func:`save_backbone`.
        name: the backbone the caller expects; a checkpoint of another backbone is an error.
        device: where to put the network.
        host: the plugin host whose backbones it is rebuilt from (default: the process-wide
            one).

    Returns:
        ``(backbone name, backbone)``.
    """
    from tttkit.plugins import get_host

    metadata = read_metadata(path)
    if META_BACKBONE not in metadata:
        raise CheckpointError(
            f"checkpoint {path} has no tttkit metadata; load it into a backbone you name "
            "(--backbone NAME --weights FILE)"
        )
    stored = metadata[META_BACKBONE]
    if name is not None and name != stored:
        raise CheckpointError(f"checkpoint {path} is for backbone {stored!r}, not {name!r}")
    config = json.loads(metadata.get(META_CONFIG, "{}"))
    host = host or get_host()
    entry = host.registry("backbones").entry(stored)
    with host.naming_failures(f"building backbone {stored!r} for {path}", plugin=entry.plugin):
        backbone = entry.obj(**config)
    with host.naming_failures(f"loading {path} into backbone {stored!r}"):
        load_weights(backbone, path, stored)
    return stored, backbone.to(device)


def load_weights(backbone: Backbone, path: str | Path, name: str | None = None) -> None:
    """Load a checkpoint's tensors into ``backbone`` in place (strictly).

    Args:
        backbone: the network to fill.
        path: ``.safetensors`` (tttkit or plain), or ``.pt``/``.pth``/``.ckpt`` state dict.
        name: the backbone's registered name, checked against tttkit metadata when present.

    Raises:
        CheckpointError: the file is for another backbone or configuration, or its keys or
            shapes do not match (the message lists missing and unexpected keys).
    """
    path = _existing(path)
    if path.suffix == ".safetensors":
        _check_metadata(read_metadata(path), backbone, name, path)
        state = load_file(str(path))
    elif path.suffix in (".pt", ".pth", ".ckpt", ".bin"):
        state = read_torch_state_dict(path)
    else:
        raise CheckpointError(
            f"checkpoint {path}: unknown format {path.suffix!r} "
            "(use .safetensors, .pt, .pth or .ckpt)"
        )
    load_state_dict_strict(backbone, backbone.convert_state_dict(state), path)


def load_state_dict_strict(
    backbone: Backbone, state: Mapping[str, torch.Tensor], path: Path
) -> None:
    """``load_state_dict(strict=True)`` with an error that lists the differences readably."""
    own = backbone.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    mismatched = [
        f"{k}: file {tuple(state[k].shape)} vs network {tuple(own[k].shape)}"
        for k in sorted(set(own) & set(state))
        if tuple(state[k].shape) != tuple(own[k].shape)
    ]
    if missing or unexpected or mismatched:
        lines = [f"checkpoint {path} does not fit this backbone:"]
        for title, items in (
            ("missing keys", missing),
            ("unexpected keys", unexpected),
            ("shape mismatches", mismatched),
        ):
            if items:
                shown = ", ".join(items[:8]) + (
                    f", … ({len(items)} in all)" if len(items) > 8 else ""
                )
                lines.append(f"  {title}: {shown}")
        hint = _prefix_hint(missing, unexpected)
        if hint:
            lines.append(f"  {hint}")
        raise CheckpointError("\n".join(lines))
    backbone.load_state_dict(dict(state), strict=True)


#: The prefix of a backbone's generator keys; a checkpoint of the generator module alone
#: (``torch.save(net.state_dict())`` of a bare network) lacks it.
GENERATOR_PREFIX = "generator."


def _prefix_hint(missing: list[str], unexpected: list[str]) -> str | None:
    """Say so when the keys differ only by the ``generator.`` prefix — the file's keys with it
    added (or removed) are the network's, its discriminator's aside (a generator-only file has
    none) — and how to load such a file: :meth:`Backbone.convert_state_dict`."""
    if not unexpected:
        return None
    prefix = GENERATOR_PREFIX
    added = {prefix + key for key in unexpected}
    removed = {key.removeprefix(prefix) for key in unexpected}
    if added <= set(missing):
        left = set(missing) - added
        how = (
            "which the file's lack (a state dict of the generator module alone, e.g. "
            f"torch.save(module.state_dict())): add it in the backbone's convert_state_dict — "
            f"override tttkit.Backbone.convert_state_dict(state) to return {{{prefix!r} + key: "
            "tensor for key, tensor in state.items()}"
        )
    elif all(key.startswith(prefix) for key in unexpected) and removed <= set(missing):
        left = set(missing) - removed
        how = (
            "which the file's carry and this network's do not: remove it in the backbone's "
            "convert_state_dict — override tttkit.Backbone.convert_state_dict(state) to return "
            f"{{key.removeprefix({prefix!r}): tensor for key, tensor in state.items()}}"
        )
    else:
        return None
    if any(not key.startswith("discriminator.") for key in left):
        return None  # more than the prefix differs
    # A generator-only file: the strict load also needs the discriminator's tensors.
    keep = ", plus the network's own discriminator tensors (the file has none), as LaMa's does"
    return f"the keys differ only by the prefix {prefix!r}, {how}{keep if left else ''}"


def _check_metadata(
    metadata: Mapping[str, str], backbone: Backbone, name: str | None, path: Path
) -> None:
    stored = metadata.get(META_BACKBONE)
    if stored is None:
        return  # a plain safetensors state dict: the key check decides
    if name is not None and stored != name:
        raise CheckpointError(f"checkpoint {path} is for backbone {stored!r}, not {name!r}")
    config = json.loads(metadata.get(META_CONFIG, "{}"))
    if config != json.loads(json.dumps(backbone.config, sort_keys=True)):
        differences = {
            k: (config.get(k), backbone.config.get(k))
            for k in set(config) | set(backbone.config)
            if config.get(k) != backbone.config.get(k)
        }
        detail = ", ".join(
            f"{k}: file {a!r} vs network {b!r}" for k, (a, b) in sorted(differences.items())
        )
        raise CheckpointError(
            f"checkpoint {path} was made for another configuration of {stored!r} ({detail})"
        )


class MetadataPlaceholder:
    """Stands in for a class or function named in a checkpoint's non-tensor metadata.

    Lightning keys ``checkpoint["callbacks"]`` by callback *class* and hyper-parameters may hold
    config objects; ``weights_only=True`` refuses such globals. Each is replaced by an inert
    subclass of this (nothing is imported, no code runs: construction and state are ignored),
    so the tensors can still be read with ``weights_only=True``.
    """

    def __init__(self, *args: object, **kwargs: object) -> None:
        del args, kwargs

    def __setstate__(self, state: object) -> None:
        del state


def _placeholders(path: Path) -> list[tuple[type, str]]:
    try:
        names = torch.serialization.get_unsafe_globals_in_checkpoint(str(path))
    except Exception:  # not a zip checkpoint (legacy format): let torch.load report it
        return []
    return [(type(name.rsplit(".", 1)[-1], (MetadataPlaceholder,), {}), name) for name in names]


def read_torch_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a PyTorch ``.pt``/``.pth``/``.ckpt`` file, read with ``weights_only=True``.

    A Lightning ``state_dict`` is unwrapped; globals in the file's metadata become inert
    :class:`MetadataPlaceholder` subclasses; anything else that is not a tensor is an error.
    """
    path = Path(path)
    try:
        with torch.serialization.safe_globals(_placeholders(path)), warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # torch's pickle-protocol notes
            data: Any = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(
            f"checkpoint {path} cannot be loaded safely (weights_only=True): {exc}"
        ) from exc
    if isinstance(data, Mapping) and "state_dict" in data:  # PyTorch Lightning layout
        data = data["state_dict"]
    if not isinstance(data, Mapping) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise CheckpointError(f"checkpoint {path} is not a state dict of tensors")
    return dict(data)


def _existing(path: str | Path) -> Path:
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"checkpoint {path} is a directory, not a weights file")
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} does not exist")
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} is not a regular file")
    return path
