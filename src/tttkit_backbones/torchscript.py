"""``torchscript``: finetune any TorchScript inpainting model with ``forward(image, mask)``.

This is the format IOPaint / lama-cleaner and others distribute models in (LaMa as
``big-lama.pt``). The model's conventions cannot be read from the file, so the user declares them
as options: value range, which mask value marks a hole, the size multiple, the working size, and
how the mask is passed. tttkit converts from and to its own convention in one place
(:class:`tttkit.Backbone`) as for any backbone.

A loaded TorchScript module is an ``nn.Module`` whose parameters are ordinary leaf tensors:
autograd flows through its compiled graph in training mode, so test-time training updates them
like any other network's (``tests/backbones/test_torchscript.py`` checks it). Models saved after
``torch.jit.freeze`` have no parameters left (weights became constants) and are refused.

Layer groups
------------
TorchScript keeps module and parameter names, so a group is named ``generator.`` + the
parameter-name prefix it covers, and the names in a freezing pattern are the model's own
(``generator.model.5`` is ``model.5.*``). The split is found automatically: from the root, descend
while a single child module holds all remaining parameters; then each child of that module is a
group, and each parameter held directly by a module on the way is a group of its own. For a
scripted LaMa generator (``model.0`` … ``model.N``) that gives ``generator.model.1``, …; for LaMa's
own export (a traced wrapper whose ``model`` is the training module) the parameter names are
``model.generator.model.N.*`` and the groups ``generator.model.generator.model.N``.
``group_depth=K`` instead groups by the first K name components. Groups are ordered as the
parameters are registered, which for sequential models is input to output.

Loading a TorchScript file unpickles no arbitrary Python, but the model's compiled code runs when
it is called: load only models you would run anyway.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from tttkit.backbone import (
    ModuleBackbone,
    TensorGroup,
    check_module_options,
    parameter_groups,
)
from tttkit.io import InputError
from tttkit.plugins import hookimpl
from tttkit_backbones.attention_net.discriminator import PatchDiscriminator


def load_torchscript(path: str | Path) -> torch.jit.ScriptModule:
    """``torch.jit.load`` on the CPU, with a readable error for anything that is not TorchScript."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"TorchScript model {path} does not exist")
    with warnings.catch_warnings():
        # Recent torch versions deprecate TorchScript, but it is how these models are distributed.
        warnings.simplefilter("ignore", FutureWarning)
        try:
            return torch.jit.load(str(path), map_location="cpu")
        except (RuntimeError, ValueError) as exc:
            raise InputError(f"{path} is not a loadable TorchScript model: {exc}") from exc


class TorchScriptBackbone(ModuleBackbone):
    """A TorchScript model with ``forward(image, mask) -> image`` as a tttkit backbone.

    Args:
        path: the ``.pt``/``.jit`` file (``torch.jit.save``). Stored resolved in ``config``:
            the file *is* the architecture.
        value_range: the RGB range the model reads, e.g. ``(0, 1)`` (IOPaint's LaMa) or ``(-1, 1)``.
        output_range: the range it writes (default: ``value_range``).
        hole_value: the mask value marking a hole (``1`` or ``0``).
        pad_multiple: height and width must be multiples of this (8 for LaMa).
        working_size: the square resolution the model was trained at.
        mask_channels: channels of the mask the model expects (1, or 3 for RGB masks).
        zero_holes: set hole pixels to 0 before calling the model (for models that expect the
            image already masked; most, like LaMa's JIT wrapper, mask it themselves).
        output_index: which element to take when the model returns a tuple or list.
        group_depth: group parameters by their first K name components instead of the
            automatic split.
        discriminator: add tttkit's SN-PatchGAN discriminator (scripted generators come
            without one; adversarial losses need it). It starts untrained.
        discriminator_width: its first layer's channels.
        freeze_batchnorm: keep the model's BatchNorm layers in inference mode during training,
            so views of one photo do not replace the pretrained statistics (affine parameters
            still train). No effect on traced models, whose mode was fixed when tracing.
    """

    generator: torch.jit.ScriptModule
    discriminator: PatchDiscriminator | None

    def __init__(
        self,
        path: str | Path,
        value_range: Sequence[float] = (0.0, 1.0),
        output_range: Sequence[float] | None = None,
        hole_value: int = 1,
        pad_multiple: int = 8,
        working_size: int = 256,
        mask_channels: int = 1,
        zero_holes: bool = False,
        output_index: int = 0,
        group_depth: int | None = None,
        discriminator: bool = True,
        discriminator_width: int = 64,
        freeze_batchnorm: bool = True,
    ) -> None:
        (low, high), (out_low, out_high) = check_module_options(
            value_range, output_range, hole_value, mask_channels
        )
        resolved = str(Path(path).expanduser().resolve())
        model = load_torchscript(resolved)
        if not any(True for _ in model.parameters()):
            raise InputError(
                f"TorchScript model {resolved} has no parameters to finetune (was it saved "
                "after torch.jit.freeze? save the unfrozen scripted or traced module instead)"
            )
        # Distributed models are often saved with gradients off. (ScriptModule has no
        # requires_grad_(), hence the loop; layer groups are TensorGroups for the same reason.)
        for parameter in model.parameters():
            parameter.requires_grad_(True)
        super().__init__(
            model, value_range=(low, high), hole_value=hole_value, working_size=working_size,
            pad_multiple=pad_multiple, output_range=output_range, mask_channels=mask_channels,
            zero_holes=zero_holes, output_index=output_index, group_depth=group_depth,
            freeze_batchnorm=freeze_batchnorm,
        )  # fmt: skip
        # The file *is* the architecture: the config rebuilds it (``factory(**config)``).
        self.config = {
            "path": resolved,
            "value_range": [low, high],
            "output_range": None if output_range is None else [out_low, out_high],
            "hole_value": hole_value,
            "pad_multiple": pad_multiple,
            "working_size": working_size,
            "mask_channels": mask_channels,
            "zero_holes": zero_holes,
            "output_index": output_index,
            "group_depth": group_depth,
            "discriminator": discriminator,
            "discriminator_width": discriminator_width,
            "freeze_batchnorm": freeze_batchnorm,
        }
        self.discriminator = PatchDiscriminator(discriminator_width) if discriminator else None

    def _group(self, prefix: str, tensors: list[tuple[str, Tensor]]) -> nn.Module:
        """Always a :class:`TensorGroup`: ``ScriptModule.requires_grad_()`` is unsupported."""
        return TensorGroup(tensors)

    def __deepcopy__(self, memo: dict[int, Any]) -> TorchScriptBackbone:
        """Copy with the scripted parameters still leaf tensors.

        A ScriptModule's deep copy clones its tensors in C++ with autograd recording, which
        makes them non-leaf tensors that no optimizer accepts (the engine finetunes a deep
        copy); cloning under ``no_grad`` keeps them leaves, and their flags are then restored.
        """
        new = type(self).__new__(type(self))
        memo[id(self)] = new
        with torch.no_grad():
            state = copy.deepcopy(self.__getstate__(), memo)
        new.__setstate__(state)
        originals = self.generator.parameters()
        for copied, original in zip(new.generator.parameters(), originals, strict=True):
            copied.requires_grad_(original.requires_grad)
        return new

    def native_discriminate(self, image: Tensor) -> Tensor:
        """Patch logits from tttkit's SN-PatchGAN, which reads ``[-1, 1]``."""
        if self.discriminator is None:
            raise NotImplementedError("this backbone was built with discriminator=False")
        low, high = self.conventions.value_range
        return self.discriminator((image - low) / (high - low) * 2 - 1)

    def layer_groups(self) -> dict[str, nn.Module]:
        """``generator.<parameter-name prefix>`` groups (module docstring), then
        ``discriminator.conv1…5``."""
        groups = super().layer_groups()
        if self.discriminator is not None:
            for index, layer in enumerate(self.discriminator.layers, start=1):
                groups[f"discriminator.conv{index}"] = layer
        return groups


def torchscript_backbone(path: str | Path, **options: Any) -> TorchScriptBackbone:
    """The ``torchscript`` backbone: ``path`` to the model, conventions as options."""
    return TorchScriptBackbone(path, **options)


@hookimpl
def tttkit_register_backbones(register: Callable[..., None]) -> None:
    """Register ``torchscript`` (the class, so ``tttkit list`` shows its options)."""
    register(
        "torchscript",
        TorchScriptBackbone,
        description="any TorchScript model with forward(image, mask) (path=FILE; conventions "
        "as options) + SN-PatchGAN",
    )


__all__ = [
    "TensorGroup",
    "TorchScriptBackbone",
    "load_torchscript",
    "parameter_groups",
    "torchscript_backbone",
]
