"""``timm-unet``: any timm encoder with a light U-Net decoder, as an inpainting backbone.

The encoder is ``timm.create_model(name, features_only=True)``: every hierarchical timm model
(ResNets, EfficientNets, ConvNeXts, RegNets, MobileNets, …) gives a list of feature maps at
increasing reductions (e.g. 2, 4, 8, 16, 32). Its first convolution is widened from RGB to RGB +
mask after any pretrained weights are loaded: the RGB filters are kept as they are and the mask
channel's filters start at zero, so the pretrained encoder initially computes exactly what it
computed on the (masked) photo, and the mask channel is learnt. (timm's own ``in_chans=4`` would
instead repeat the RGB filters cyclically — the mask gets the red filter — and scale all four by
3/4, changing the pretrained response.)

Pretrained encoder weights come only from a local file (``encoder_weights``), passed to timm as
``pretrained_cfg_overlay=dict(file=…)``, which timm reads with ``weights_only=True`` (or as
safetensors): a file of the *full* timm model (``timm.create_model(name).state_dict()``, or the
``pytorch_model.bin``/``model.safetensors`` timm publishes). Nothing is ever downloaded: without a
file the encoder is randomly initialised, and Hugging Face hub names (``hf-hub:…``) are refused.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tttkit.backbone import Backbone, Conventions, GeneratorOutput
from tttkit.checkpoint import CheckpointError
from tttkit.plugins import hookimpl
from tttkit_backbones.attention_net.discriminator import PatchDiscriminator

#: Model-name prefixes that make timm fetch a configuration or weights from the network.
REMOTE_PREFIXES = ("hf-hub:", "hf_hub:")


def _norm(channels: int) -> nn.GroupNorm:
    # GroupNorm, not BatchNorm: test-time training sees a batch of views of one photo, whose
    # batch statistics say nothing about the data the network was trained on.
    return nn.GroupNorm(min(8, channels), channels)


class ConvBlock(nn.Sequential):
    """Two 3×3 convolutions, each with GroupNorm and ReLU."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, 3, padding=1), _norm(out_channels), nn.ReLU(),
            nn.Conv2d(out_channels, out_channels, 3, padding=1), _norm(out_channels), nn.ReLU(),
        )  # fmt: skip


class DecoderStage(nn.Module):
    """Upsample to the skip connection's size (bilinear), concatenate it, :class:`ConvBlock`."""

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int) -> None:
        super().__init__()
        self.block = ConvBlock(in_channels + skip_channels, out_channels)

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        """``x`` coarser than ``skip`` → features at ``skip``'s resolution."""
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.block(torch.cat([x, skip], dim=1))


class OutputHead(nn.Module):
    """Last decoder stage at full resolution: the 4-channel input is its skip connection (so
    known pixels are at hand unblurred), then a 3×3 convolution to RGB and a sigmoid."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.stage = DecoderStage(in_channels, 4, out_channels)
        self.rgb = nn.Conv2d(out_channels, 3, 3, padding=1)

    def forward(self, x: Tensor, inputs: Tensor) -> Tensor:
        """Features + network input → ``(B, 3, H, W)`` in ``[0, 1]``."""
        return torch.sigmoid(self.rgb(self.stage(x, inputs)))


class UNetGenerator(nn.Module):
    """A timm feature encoder, decoder stages coarse to fine, and the output head.

    Args:
        encoder: ``features_only`` timm model (first convolution already widened to 4 channels).
        encoder_channels: channels of its feature maps, fine to coarse.
        decoder_width: channels of the finest decoder stage; each coarser stage doubles them up
            to ``decoder_max``.
        decoder_max: channel cap of the decoder.
    """

    def __init__(
        self,
        encoder: nn.Module,
        encoder_channels: Sequence[int],
        decoder_width: int,
        decoder_max: int,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        levels = len(encoder_channels)
        widths = [min(decoder_max, decoder_width * 2**i) for i in range(levels)]
        # decoder[0] joins the two coarsest levels; decoder[-1] ends at the finest feature map.
        stages = []
        channels = encoder_channels[-1]
        for level in range(levels - 2, -1, -1):
            stages.append(DecoderStage(channels, encoder_channels[level], widths[level]))
            channels = widths[level]
        self.decoder = nn.ModuleList(stages)
        self.head = OutputHead(channels, max(8, decoder_width // 2))

    def forward(self, inputs: Tensor, encoder_inputs: Tensor) -> Tensor:
        """``inputs``: masked RGB in [0, 1] ⊕ mask (for the head); ``encoder_inputs``: the same
        with the RGB normalised as the encoder expects."""
        features = self.encoder(encoder_inputs)
        x = features[-1]
        for stage, skip in zip(self.decoder, reversed(features[:-1]), strict=True):
            x = stage(x, skip)
        return self.head(x, inputs)


class TimmUNet(Backbone):
    """U-Net on a timm encoder, with an SN-PatchGAN discriminator.

    Conventions: RGB in ``[0, 1]`` (normalised inside with the encoder's pretrained mean and
    std), mask 1 = hole, sizes padded to the encoder's largest reduction (32 for the usual
    five-stage encoders), ``working_size`` as configured.

    Args:
        encoder: timm model name (``resnet18``, ``efficientnet_lite0``, ``convnext_nano``, …).
        encoder_weights: local file with the full timm model's pretrained weights. Not part of
            ``config``: weights are not architecture, and a tttkit checkpoint of this backbone
            already holds the encoder's (finetuned) weights.
        decoder_width: channels of the finest decoder stage (doubling per coarser stage).
        decoder_max: channel cap of the decoder.
        discriminator: build the SN-PatchGAN discriminator (needed for adversarial losses).
        discriminator_width: its first layer's channels (64 as in the reference backbone).
        freeze_batchnorm: keep the encoder's BatchNorm layers (if any) in inference mode during
            training, so a batch of views of one photo does not replace the statistics of the
            pretraining data (affine parameters still train). ``False`` to pretrain from scratch.
        working_size: square resolution to work at.
    """

    generator: UNetGenerator
    discriminator: PatchDiscriminator | None

    def __init__(
        self,
        encoder: str = "resnet18",
        encoder_weights: str | Path | None = None,
        decoder_width: int = 32,
        decoder_max: int = 256,
        discriminator: bool = True,
        discriminator_width: int = 64,
        freeze_batchnorm: bool = True,
        working_size: int = 256,
    ) -> None:
        net = _create_encoder(encoder, encoder_weights)
        info = net.feature_info
        reductions, channels = list(info.reduction()), list(info.channels())
        config = {
            "encoder": encoder,
            "decoder_width": decoder_width,
            "decoder_max": decoder_max,
            "discriminator": discriminator,
            "discriminator_width": discriminator_width,
            "freeze_batchnorm": freeze_batchnorm,
            "working_size": working_size,
        }
        conventions = Conventions(
            value_range=(0.0, 1.0),
            hole_value=1,
            pad_multiple=max(reductions),
            working_size=working_size,
            trains_on_crops=True,  # a CNN encoder and decoder: nothing tied to the input size
        )
        super().__init__(conventions, config)
        self.freeze_batchnorm = freeze_batchnorm
        self.feature_modules = list(info.module_name())
        self.reductions = reductions
        cfg = getattr(net, "pretrained_cfg", None) or {}
        mean, std = cfg.get("mean", (0.485, 0.456, 0.406)), cfg.get("std", (0.229, 0.224, 0.225))
        self.register_buffer("mean", torch.tensor(mean).reshape(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).reshape(1, 3, 1, 1), persistent=False)
        self.generator = UNetGenerator(net, channels, decoder_width, decoder_max)
        self.discriminator = PatchDiscriminator(discriminator_width) if discriminator else None

    def native_generate(self, image: Tensor, mask: Tensor) -> GeneratorOutput:
        """Masked image ⊕ mask; holes hold the encoder's mean colour (0 after normalisation)."""
        mask = mask.to(image.dtype)
        known = 1 - mask
        inputs = torch.cat([image * known, mask], dim=1)
        normalised = (image - self.mean) / self.std * known
        return GeneratorOutput(image=self.generator(inputs, torch.cat([normalised, mask], dim=1)))

    def native_discriminate(self, image: Tensor) -> Tensor:
        """Patch logits; the SN-PatchGAN reads ``[-1, 1]``."""
        if self.discriminator is None:
            raise NotImplementedError("this TimmUNet was built with discriminator=False")
        return self.discriminator(image * 2 - 1)

    def layer_groups(self) -> dict[str, nn.Module]:
        """``generator.encoder.1…S`` (encoder stage k ends at the k-th feature map, reduction
        ``reductions[k-1]``), ``generator.decoder.1…S`` (decoder stages coarse to fine, the last
        being the full-resolution output head), then ``discriminator.conv1…5``.

        Stages come from timm's ``feature_info``: every module before the first feature map's
        module (the stem) belongs to stage 1, and so on. If an encoder's layout defeats this
        (parameters outside the stage modules), the whole encoder is one group,
        ``generator.encoder.1``.
        """
        groups: dict[str, nn.Module] = {}
        for index, stage in enumerate(self._encoder_stages(), start=1):
            groups[f"generator.encoder.{index}"] = stage
        for index, stage in enumerate([*self.generator.decoder, self.generator.head], start=1):
            groups[f"generator.decoder.{index}"] = stage
        if self.discriminator is not None:
            for index, layer in enumerate(self.discriminator.layers, start=1):
                groups[f"discriminator.conv{index}"] = layer
        return groups

    def _encoder_stages(self) -> list[nn.Module]:
        encoder = self.generator.encoder
        stages = _split_at_features(encoder, self.feature_modules)
        covered = {id(p) for stage in stages for p in stage.parameters()}
        if stages and all(id(p) in covered for p in encoder.parameters()):
            return [stage for stage in stages if any(True for _ in stage.parameters())]
        return [encoder]


def _split_at_features(encoder: nn.Module, feature_modules: Sequence[str]) -> list[nn.ModuleList]:
    """Partition ``encoder``'s submodules, in registration order, into one list per feature map.

    timm's ``FeatureListNet`` flattens nested names (``stages.0`` → ``stages_0``), so each feature
    module name is resolved against the encoder's actual module names first.
    """
    names = dict(encoder.named_modules())
    boundaries = []
    for name in feature_modules:
        candidates = [name] + [name.replace(".", "_", n) for n in range(1, name.count(".") + 1)]
        resolved = next((c for c in candidates if c in names), None)
        if resolved is None:
            return []
        boundaries.append(resolved)
    stages: list[list[nn.Module]] = [[] for _ in boundaries]
    position = 0

    def visit(module: nn.Module, prefix: str) -> None:
        nonlocal position
        for name, child in module.named_children():
            path = prefix + name
            if any(b.startswith(path + ".") for b in boundaries[position:]):
                visit(child, path + ".")  # a stage boundary lies inside: split this child
                continue
            stages[min(position, len(stages) - 1)].append(child)
            if path in boundaries[position:]:
                position = boundaries.index(path, position) + 1

    visit(encoder, "")
    return [nn.ModuleList(stage) for stage in stages]


def _create_encoder(name: str, weights: str | Path | None) -> nn.Module:
    """A ``features_only`` timm model with pretrained weights from ``weights`` (a local file)."""
    import timm

    if name.startswith(REMOTE_PREFIXES):
        raise ValueError(
            f"encoder {name!r} would be fetched from the Hugging Face hub; tttkit never "
            "downloads: give a timm architecture name and a local encoder_weights file"
        )
    if not timm.is_model(name.split(".")[0]):  # "resnet18.a1_in1k": architecture.pretrained tag
        raise ValueError(f"unknown timm model {name!r} (see timm.list_models())")
    kwargs: dict[str, Any] = {"features_only": True, "pretrained": False}
    if weights is not None:
        path = Path(weights)
        if not path.is_file():
            raise CheckpointError(f"encoder weights {path} do not exist")
        # With a 'file' in the overlay timm loads that file and nothing else (no hub, no URL).
        kwargs.update(pretrained=True, pretrained_cfg_overlay={"file": str(path)})
    try:
        encoder = timm.create_model(name, **kwargs)
    except (RuntimeError, KeyError) as exc:  # timm's strict load: wrong keys or shapes
        if weights is None:
            raise
        raise CheckpointError(
            f"encoder weights {weights} do not fit timm model {name!r}: {exc}"
        ) from exc
    widen_first_conv(encoder)
    return encoder


def widen_first_conv(encoder: nn.Module, extra: int = 1) -> nn.Conv2d:
    """Give the first RGB convolution ``extra`` more input channels, with zero filters.

    Zero filters keep the encoder's response to the RGB part unchanged; they still get
    gradients (a weight's gradient depends on its input, not on its value), so the mask channel
    is learnt.
    """
    conv = next(
        (m for m in encoder.modules() if isinstance(m, nn.Conv2d) and m.in_channels == 3), None
    )
    if conv is None or conv.groups != 1:
        raise ValueError("the encoder has no ungrouped first convolution reading 3 channels")
    weight = conv.weight
    zeros = torch.zeros(
        weight.shape[0], extra, *weight.shape[2:], dtype=weight.dtype, device=weight.device
    )
    conv.weight = nn.Parameter(torch.cat([weight.detach(), zeros], dim=1))
    conv.in_channels = 3 + extra
    return conv


def timm_unet(**config: Any) -> TimmUNet:
    """The ``timm-unet`` backbone (ResNet-18 encoder unless ``encoder`` says otherwise)."""
    return TimmUNet(**config)


@hookimpl
def tttkit_register_backbones(register: Callable[..., None]) -> None:
    """Register ``timm-unet`` (the class, so ``tttkit list`` shows its options)."""
    register(
        "timm-unet",
        TimmUNet,
        description="U-Net decoder on any timm encoder (encoder=NAME, encoder_weights=FILE) "
        "+ SN-PatchGAN",
    )


__all__ = [
    "ConvBlock",
    "DecoderStage",
    "OutputHead",
    "TimmUNet",
    "UNetGenerator",
    "timm_unet",
    "widen_first_conv",
]
