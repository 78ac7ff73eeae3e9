"""What the engine needs from an inpainting network, whatever its architecture.

A backbone plugin subclasses :class:`Backbone` and implements the *native* forward passes
(:meth:`Backbone.native_generate`, :meth:`Backbone.native_discriminate`) in its own conventions
— value range, mask polarity, size multiple — which it declares in :class:`Conventions`. The engine
only ever calls :meth:`Backbone.generate` and :meth:`Backbone.discriminate`, which speak the
engine's single convention: RGB in ``[0, 1]``, masks ``(B, 1, H, W)`` with ``1`` marking a hole.
The conversion lives here, once, so the engine never guesses and plugins never repeat it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

#: The padding modes a backbone may declare (:attr:`Conventions.pad_mode`).
PAD_MODES = ("reflect", "symmetric", "replicate")


@dataclass(frozen=True)
class Conventions:
    """How a backbone wants its tensors.

    Attributes:
        value_range: the RGB range the network reads and writes, e.g. ``(-1, 1)`` or ``(0, 1)``.
        hole_value: the mask value that marks a hole in the network's own input (``1`` or ``0``).
        pad_multiple: height and width must be multiples of this; inputs are padded at the
            bottom and right.
        working_size: the square resolution the network was trained at; callers resize to it.
        pad_mode: how the padding is filled, as the network's own code does it: ``"reflect"``
            (mirror without the edge pixel: ``c b | a b c | b a``), ``"symmetric"`` (mirror with
            it, NumPy's ``symmetric``: ``b a | a b c | c b``; LaMa's) or ``"replicate"``. A pad
            larger than the image falls back to ``"replicate"``.
        trains_on_crops: the network is fully convolutional, with nothing tied to the input's
            size (no global attention over a fixed grid, no position embedding), so finetuning
            on crops smaller than the photo it then fills is sound (``StrategySpec.crop_size``).
    """

    value_range: tuple[float, float] = (-1.0, 1.0)
    hole_value: int = 1
    pad_multiple: int = 1
    working_size: int = 256
    pad_mode: str = "reflect"
    trains_on_crops: bool = False

    def __post_init__(self) -> None:
        if self.pad_mode not in PAD_MODES:
            raise ValueError(
                f"pad_mode must be one of {', '.join(PAD_MODES)}, got {self.pad_mode!r}"
            )

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return asdict(self)


@dataclass
class GeneratorOutput:
    """A generator's prediction.

    :meth:`Backbone.generate` returns it in the engine's convention (RGB in ``[0, 1]``, the
    input's size); :meth:`Backbone.native_generate` returns it in the backbone's own
    (``conventions.value_range``, the padded size), and ``generate`` converts.

    Attributes:
        image: ``(B, 3, H, W)`` RGB: the network's full output, not composited.
        pyramid: lower-resolution RGB predictions, coarsest first, for multi-scale losses (empty
            when the network has none).
        gradients: predicted image-gradient maps ``(B, 6, h, w)`` (d/dy and d/dx per RGB channel;
            from ``generate``, Sobel units of a ``[0, 1]`` image), coarsest first, ending at full
            resolution; for the pyramid structure loss (empty when the network predicts none).
    """

    image: Tensor
    pyramid: tuple[Tensor, ...] = field(default_factory=tuple)
    gradients: tuple[Tensor, ...] = field(default_factory=tuple)


#: Name of a trainable structure on top of a generator's output, which a freezing policy may
#: attach for test-time training (the thesis's first idea for future work: train a small
#: structure while the network runs forward only). It is a submodule of the generator, so that
#: it trains, is averaged, chosen and restored with the generator's weights; :meth:`Backbone.
#: generate` calls it as ``head(fill, image, mask)`` in tttkit's conventions.
OUTPUT_HEAD = "output_head"


class Backbone(nn.Module):
    """Base class of every inpainting backbone.

    Subclasses set ``self.generator`` and (optionally) ``self.discriminator``, pass their
    :class:`Conventions` to ``__init__``, and implement the native methods and
    :meth:`layer_groups`. ``config`` must recreate the architecture: ``factory(**config)``.
    """

    generator: nn.Module
    discriminator: nn.Module | None

    #: Keep BatchNorm layers in inference mode while training: a few views of one photo would
    #: otherwise overwrite the pretrained running statistics (their weights still train).
    freeze_batchnorm: bool = False

    def __init__(self, conventions: Conventions, config: dict[str, Any]) -> None:
        """Set up a backbone; a subclass calls this first, then sets ``self.generator`` (and
        ``self.discriminator``, else there is none and adversarial loss terms are skipped).

        Args:
            conventions: what the network reads and writes (value range, hole value, padding,
                working size); tttkit converts from and to its own around every call.
            config: the architecture options that rebuild it, ``factory(**config)`` (JSON:
                checkpoints store it and refuse weights of another configuration).
        """
        super().__init__()
        self.conventions = conventions
        self.config = dict(config)
        self.discriminator = None

    # -- to implement -------------------------------------------------------------------------

    def native_generate(self, image: Tensor, mask: Tensor) -> GeneratorOutput:
        """Run the generator on tensors already in the backbone's own conventions.

        Args:
            image: ``(B, 3, H, W)`` in ``conventions.value_range``; hole pixels hold whatever the
                caller put there (the engine's filler content).
            mask: ``(B, 1, H, W)`` with ``conventions.hole_value`` at holes; H, W are multiples of
                ``conventions.pad_multiple``.

        Returns:
            A :class:`GeneratorOutput` whose tensors are in ``conventions.value_range``.
        """
        raise NotImplementedError

    def native_discriminate(self, image: Tensor) -> Tensor:
        """Patch logits ``(B, 1, h, w)`` for an RGB image in the backbone's value range."""
        raise NotImplementedError(f"{type(self).__name__} has no discriminator")

    def layer_groups(self) -> dict[str, nn.Module]:
        """Named parameter groups for freezing policies, ordered from input to output.

        Names are ``generator.<part>`` or ``discriminator.<part>`` (e.g. ``generator.encoder``,
        ``discriminator.conv1``); together the groups must cover every parameter exactly once.
        """
        raise NotImplementedError

    def convert_state_dict(self, state: Mapping[str, Tensor]) -> Mapping[str, Tensor]:
        """Map a checkpoint's tensors to this network's keys (default: unchanged).

        Override to load checkpoints in another project's layout without conversion (e.g. an
        official LaMa ``best.ckpt``); the result is then loaded strictly.
        """
        return state

    def train(self, mode: bool = True) -> Backbone:
        """Set training mode; BatchNorm layers stay in inference mode if ``freeze_batchnorm``."""
        super().train(mode)
        if mode and self.freeze_batchnorm:
            for module in self.modules():
                if is_batchnorm(module):
                    module.eval()
        return self

    # -- engine-facing ------------------------------------------------------------------------

    @property
    def has_discriminator(self) -> bool:
        """Whether adversarial losses can be computed."""
        return self.discriminator is not None

    def generate(self, image: Tensor, mask: Tensor) -> GeneratorOutput:
        """Fill the holes of ``image`` (``[0, 1]``; ``mask`` 1 = hole), returning ``[0, 1]``;
        through the generator's :data:`OUTPUT_HEAD` when a freezing policy attached one."""
        height, width = image.shape[-2:]
        native_image = self._pad(self._to_native(image))
        native_mask = self._pad(mask if self.conventions.hole_value == 1 else 1.0 - mask)
        out = self.native_generate(native_image, native_mask)
        padded = native_image.shape[-2:]
        fill = self._from_native(_crop_like(out.image, padded, (height, width)))
        head = getattr(self.generator, OUTPUT_HEAD, None)
        return GeneratorOutput(
            image=fill if head is None else head(fill, image, mask),
            pyramid=tuple(
                self._from_native(_crop_like(p, padded, (height, width))) for p in out.pyramid
            ),
            gradients=tuple(
                self._gradients_from_native(_crop_like(g, padded, (height, width)))
                for g in out.gradients
            ),
        )

    def discriminate(self, image: Tensor) -> Tensor:
        """Patch logits for an RGB image in ``[0, 1]``."""
        return self.native_discriminate(self._to_native(image))

    def parameter_counts(self) -> dict[str, int]:
        """Number of parameters of the generator, the discriminator and both."""
        gen = _count(self.generator.parameters())
        disc = _count(self.discriminator.parameters()) if self.discriminator is not None else 0
        return {"generator": gen, "discriminator": disc, "total": gen + disc}

    # -- conversions --------------------------------------------------------------------------

    def _to_native(self, image: Tensor) -> Tensor:
        low, high = self.conventions.value_range
        return image if (low, high) == (0.0, 1.0) else image * (high - low) + low

    def _from_native(self, image: Tensor) -> Tensor:
        low, high = self.conventions.value_range
        return image if (low, high) == (0.0, 1.0) else (image - low) / (high - low)

    def _gradients_from_native(self, gradients: Tensor) -> Tensor:
        low, high = self.conventions.value_range
        return gradients / (high - low)

    def _pad(self, x: Tensor) -> Tensor:
        multiple = self.conventions.pad_multiple
        height, width = x.shape[-2:]
        pad_h, pad_w = (-height) % multiple, (-width) % multiple
        if pad_h == 0 and pad_w == 0:
            return x
        mode = self.conventions.pad_mode
        if mode == "symmetric" and pad_h <= height and pad_w <= width:
            return _symmetric_pad(x, pad_h, pad_w)
        if mode != "reflect" or not (pad_h < height and pad_w < width):
            mode = "replicate"
        return F.pad(x, (0, pad_w, 0, pad_h), mode=mode)


def _symmetric_pad(x: Tensor, pad_h: int, pad_w: int) -> Tensor:
    """Pad the bottom and right by mirroring with the edge pixel (NumPy's ``symmetric``)."""
    if pad_h:
        x = torch.cat((x, x[..., x.shape[-2] - pad_h :, :].flip(-2)), dim=-2)
    if pad_w:
        x = torch.cat((x, x[..., x.shape[-1] - pad_w :].flip(-1)), dim=-1)
    return x


#: ``original_name`` of scripted BatchNorm modules (``isinstance`` cannot see through TorchScript).
BATCHNORM_NAMES = frozenset({"BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "SyncBatchNorm"})


def is_batchnorm(module: nn.Module) -> bool:
    """Whether ``module`` is a BatchNorm layer, eager or scripted."""
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        return True
    return getattr(module, "original_name", None) in BATCHNORM_NAMES


def _crop_like(x: Tensor, padded: tuple[int, int], size: tuple[int, int]) -> Tensor:
    """Crop a map of a padded input back to the unpadded region, at the map's own scale."""
    scale_h, scale_w = x.shape[-2] / padded[0], x.shape[-1] / padded[1]
    return x[..., : round(size[0] * scale_h), : round(size[1] * scale_w)]


def _count(parameters: Iterator[nn.Parameter]) -> int:
    return sum(p.numel() for p in parameters)


class TensorGroup(nn.Module):
    """A layer group made of given tensors: for parameters held directly by a module, and for
    TorchScript models, whose parameters are plain leaf tensors that cannot be re-registered on
    another module."""

    def __init__(self, tensors: Sequence[tuple[str, Tensor]]) -> None:
        super().__init__()
        object.__setattr__(self, "_tensors", list(tensors))  # unregistered: no state-dict entry

    def named_parameters(  # type: ignore[override]
        self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Tensor]]:
        """The group's tensors under their names in the model."""
        for name, tensor in self._tensors:
            yield prefix + name, tensor


def parameter_groups(names: Sequence[str], depth: int | None = None) -> dict[str, list[str]]:
    """Group a module's parameter names by the child module that holds them.

    From the root, descend while a single child module holds all remaining parameters; then
    each child of that module is a group, and each parameter held directly by a module on the
    way is a group of its own (``["gain", "model.0.weight", "model.0.bias", "model.3.weight"]``
    → ``gain``, ``model.0``, ``model.3``).

    Args:
        names: parameter names in registration order.
        depth: group by the first ``depth`` name components instead of the automatic split.

    Returns:
        ``{prefix: [names]}`` in order of first appearance.
    """
    groups: dict[str, list[str]] = {}
    if depth is not None:
        if depth < 1:
            raise ValueError(f"group_depth must be at least 1, got {depth}")
        for name in names:
            groups.setdefault(".".join(name.split(".")[:depth]), []).append(name)
        return groups
    prefix: list[str] = []
    remaining = list(names)
    while True:
        level = len(prefix)
        direct = [n for n in remaining if n.count(".") == level]
        nested = [n for n in remaining if n.count(".") > level]
        children = list(dict.fromkeys(n.split(".")[level] for n in nested))
        for name in direct:  # parameters held by a module on the way down: one group each
            groups[name] = [name]
        if len(children) == 1:
            prefix.append(children[0])
            remaining = nested
            continue
        for name in nested:
            groups.setdefault(".".join(name.split(".")[: level + 1]), []).append(name)
        return groups


def _checked_ranges(
    value_range: Sequence[float], output_range: Sequence[float] | None
) -> tuple[tuple[float, float], tuple[float, float]]:
    """The input and output ranges as float pairs; ``ValueError`` unless both increase."""
    low, high = (float(v) for v in value_range)
    out_low, out_high = (float(v) for v in (output_range or (low, high)))
    if high <= low or out_high <= out_low:
        raise ValueError(f"ranges must be increasing, got {value_range} and {output_range}")
    return (low, high), (out_low, out_high)


def check_module_options(
    value_range: Sequence[float],
    output_range: Sequence[float] | None,
    hole_value: int,
    mask_channels: int,
) -> tuple[tuple[float, float], tuple[float, float]]:
    """Check the conventions a wrapped module is declared with (:class:`ModuleBackbone`);
    return its input and output ranges. Raises ``ValueError`` naming the bad option."""
    if hole_value not in (0, 1):
        raise ValueError(f"hole_value must be 0 or 1, got {hole_value}")
    if mask_channels not in (1, 3):
        raise ValueError(f"mask_channels must be 1 or 3, got {mask_channels}")
    return _checked_ranges(value_range, output_range)


class ModuleBackbone(Backbone):
    """Your own inpainting network as a tttkit backbone, in one call.

    ``ModuleBackbone(net, value_range=(0, 1), hole_value=1, working_size=256)`` wraps any
    ``nn.Module`` whose ``forward(image, mask)`` returns the image (a tuple or list: see
    ``output_index``). Its conventions are stated, never guessed: they cannot be read from a
    module, and a wrong guess (a ``[-1, 1]`` network fed ``[0, 1]``, an inverted mask) runs
    without error and fills the holes wrongly. tttkit converts from and to its own convention
    around every call, as for any backbone.

    The wrapper has no discriminator, so adversarial loss terms are skipped (the default
    strategy has none). It is not registered under a name: pass the object
    (``tttkit.adapt(..., backbone=wrapped)``); to use it from the command line, register a
    factory that builds and wraps it (``docs/plugin-guide.md``).

    Args:
        module: the network; it becomes ``generator`` (its parameters are the ones trained).
        value_range: the RGB range it reads, e.g. ``(0, 1)`` or ``(-1, 1)``.
        hole_value: the mask value marking a hole in its input (``1`` or ``0``).
        working_size: the square resolution it was trained at; larger photos are completed in
            windows of this size around the holes.
        pad_multiple: height and width it needs to be multiples of (padded, then cropped back).
        output_range: the range it writes (default: ``value_range``).
        mask_channels: channels of the mask it takes (1, or 3 for an RGB mask).
        zero_holes: set hole pixels to 0 before calling it (for networks that expect the image
            already masked).
        output_index: which element to take when it returns a tuple or list.
        groups: its layer groups for freezing policies, ``{name: submodule}`` input to output
            (``generator.`` is prefixed to names that lack it); by default, one group per child
            module (:func:`parameter_groups`).
        group_depth: derive the groups by the first K parameter-name components instead.
        freeze_batchnorm: keep its BatchNorm layers in inference mode while training, so a few
            views of one photo do not replace the pretrained statistics.
        trains_on_crops: it is fully convolutional (:attr:`Conventions.trains_on_crops`).
        pad_mode: how padding is filled (:attr:`Conventions.pad_mode`).
    """

    def __init__(
        self,
        module: nn.Module,
        *,
        value_range: Sequence[float],
        hole_value: int,
        working_size: int,
        pad_multiple: int = 1,
        output_range: Sequence[float] | None = None,
        mask_channels: int = 1,
        zero_holes: bool = False,
        output_index: int = 0,
        groups: Mapping[str, nn.Module] | None = None,
        group_depth: int | None = None,
        freeze_batchnorm: bool = True,
        trains_on_crops: bool = False,
        pad_mode: str = "reflect",
    ) -> None:
        if not isinstance(module, nn.Module):
            raise TypeError(f"ModuleBackbone wraps an nn.Module, got {type(module).__name__}")
        (low, high), (out_low, out_high) = check_module_options(
            value_range, output_range, hole_value, mask_channels
        )
        conventions = Conventions(
            value_range=(low, high), hole_value=hole_value, pad_multiple=pad_multiple,
            working_size=working_size, pad_mode=pad_mode, trains_on_crops=trains_on_crops,
        )  # fmt: skip
        config = {
            "module": type(module).__qualname__, **conventions.to_dict(),
            "output_range": None if output_range is None else [out_low, out_high],
            "mask_channels": mask_channels, "zero_holes": zero_holes,
            "output_index": output_index, "group_depth": group_depth,
            "freeze_batchnorm": freeze_batchnorm,
        }  # fmt: skip
        super().__init__(conventions, config)
        self.generator = module
        self.output_range = (out_low, out_high)
        self.mask_channels = mask_channels
        self.zero_holes = zero_holes
        self.output_index = output_index
        self.group_depth = group_depth
        self.freeze_batchnorm = freeze_batchnorm
        # Given groups are kept as module paths, so that they follow the engine's deep copy.
        self.group_paths = None if groups is None else self._paths(groups)
        if groups is not None:
            check_layer_groups(self)

    def _paths(self, groups: Mapping[str, nn.Module]) -> dict[str, str]:
        """``{group name: path of its module in the generator}`` for given groups."""
        paths = {id(m): name for name, m in self.generator.named_modules()}
        out: dict[str, str] = {}
        for name, module in groups.items():
            if id(module) not in paths:
                raise ValueError(f"layer group {name!r} is not a submodule of the wrapped module")
            full = (
                name if name.startswith(("generator.", "discriminator.")) else f"generator.{name}"
            )
            out[full] = paths[id(module)]
        return out

    def native_generate(self, image: Tensor, mask: Tensor) -> GeneratorOutput:
        """Call the module in its own conventions; map its output range to ``value_range``."""
        mask = mask.to(image.dtype)
        if self.zero_holes:
            hole = mask if self.conventions.hole_value == 1 else 1 - mask
            image = image * (1 - hole)
        if self.mask_channels == 3:
            mask = mask.expand(-1, 3, -1, -1)
        out = self.generator(image, mask)
        if isinstance(out, (tuple, list)):
            out = out[self.output_index]
        low, high = self.conventions.value_range
        out_low, out_high = self.output_range
        if (out_low, out_high) != (low, high):
            out = (out - out_low) / (out_high - out_low) * (high - low) + low
        return GeneratorOutput(image=out)

    def layer_groups(self) -> dict[str, nn.Module]:
        """The given groups, else ``generator.<child>`` per child module (the automatic split
        of :func:`parameter_groups`, or ``group_depth``)."""
        if self.group_paths is not None:
            return {
                name: self.generator.get_submodule(path) for name, path in self.group_paths.items()
            }
        tensors = dict(self.generator.named_parameters())
        return {
            f"generator.{prefix}": self._group(prefix, [(n, tensors[n]) for n in names])
            for prefix, names in parameter_groups(list(tensors), self.group_depth).items()
        }

    def _group(self, prefix: str, tensors: list[tuple[str, Tensor]]) -> nn.Module:
        """The group of the parameters under ``prefix``: the submodule holding them (so that
        policies working inside groups — norm layers, LoRA — see its layers), or a
        :class:`TensorGroup` for a parameter held directly by a module."""
        try:
            return self.generator.get_submodule(prefix)
        except AttributeError:
            return TensorGroup(tensors)


def check_layer_groups(backbone: Backbone) -> None:
    """Raise ``ValueError`` unless the layer groups cover every parameter exactly once."""
    seen: dict[int, str] = {}
    for group, module in backbone.layer_groups().items():
        if not group.startswith(("generator.", "discriminator.")):
            raise ValueError(
                f"layer group {group!r} must start with 'generator.' or 'discriminator.'"
            )
        for p in module.parameters():
            if id(p) in seen:
                raise ValueError(
                    f"a parameter is in both layer groups {seen[id(p)]!r} and {group!r}"
                )
            seen[id(p)] = group
    missing = [n for n, p in backbone.named_parameters() if id(p) not in seen]
    if missing:
        raise ValueError(f"parameters in no layer group: {', '.join(missing[:5])}")


__all__ = [
    "Backbone",
    "Conventions",
    "GeneratorOutput",
    "ModuleBackbone",
    "TensorGroup",
    "check_layer_groups",
    "check_module_options",
    "parameter_groups",
]
