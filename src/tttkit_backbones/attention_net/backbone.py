"""The thesis's reference backbone as a :class:`tttkit.backbone.Backbone`.

Three factories give the variants used in the thesis and here:

* :func:`attention_net` — the thesis network (§3.3): 17,849,825 parameters, exactly.
* :func:`attention_net_small` — the zero-shot variant of §4.6.5: 2,022,192 parameters, exactly.
* :func:`attention_net_compact` — a narrower network for CPU test-time training.

How the thesis's counts were matched
------------------------------------
Yang et al.'s TensorFlow graph has 15,089,000 generator parameters; the thesis's total implies
15,085,088 (its two freezing counts pin the encoder at 691,200, each residual block at 1,181,184
and the decoder at 4,944,416, given the 2,764,737-parameter discriminator). The difference,
3,912, is exactly the five auxiliary 1×1 heads of Yang's pyramid supervision (gradient heads at
64², 128², 256²: 1,554 + 786 + 402; RGB heads at 64², 128²: 777 + 393). §4.5.3 agrees: the layers
after the residual blocks are "the three attention layers, the two deconvolutional layers, and the
last four convolution layers" — three 5×5 convolutions and the RGB head. So the thesis network has
no auxiliary heads (``aux_heads=False``): it outputs the final RGB only, and its structure loss
takes Sobel gradients of that output (thesis eq. 2.16). ``aux_heads=True`` restores Yang's heads.

The small variant's 2,022,192 is less than the full discriminator alone, so it cannot be "small
generator + full discriminator". The small generator (64 channels, one downsampling, internal 128²
for a 256² input, 2 residual blocks, no auxiliary heads) has 1,885,807 parameters; the remaining
136,385 is exactly a discriminator whose two 256/512-channel layers were removed with the
generator's deeper scale: 4×4 convs 3→64 (s2), 64→128 (s2), 128→1 (3,136 + 131,200 + 2,049).
No generator-only layout (with or without auxiliary heads, other widths or block counts) gives
2,022,192, while this pair gives it to the parameter, so that is what the thesis counted.
``attention_net_small`` builds it (``discriminator_layers=2``: 64×64 logits for a 256² image).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from tttkit.backbone import Backbone, Conventions, GeneratorOutput
from tttkit.imageops import smooth_fill

from .attention import ATTENTION_KINDS
from .discriminator import PatchDiscriminator
from .generator import AttentionGenerator
from .inputs import DEFAULT_EDGE_SIGMA, build_input

THESIS_CONFIG: dict[str, Any] = {
    "width": 64,
    "residual_blocks": 8,
    "downsamplings": 2,
    "attention": "self",
    "discriminator": True,
    "discriminator_layers": 4,
    "aux_heads": False,
    "head_norm": True,
    "edge_sigma": DEFAULT_EDGE_SIGMA,
    "prefill": "zeros",
}
#: How hole pixels start: ``"zeros"`` (the thesis) or ``"smooth"`` (a membrane fill of the known
#: pixels, which the network then corrects; see :class:`AttentionNet`).
PREFILLS = ("zeros", "smooth")
THESIS_TOTAL = 17_849_825
THESIS_DISCRIMINATOR = 2_764_737
SMALL_TOTAL = 2_022_192


class AttentionNet(Backbone):
    """Three-scale attention inpainting network with an SN-PatchGAN discriminator.

    Conventions: RGB in ``[-1, 1]``, mask 1 = hole, sizes padded to a multiple of
    ``2 ** (downsamplings + 2)`` (the coarsest decoder scale is halved by the attention's down
    convolution and again by its key/value pooling), trained at ``working_size`` (256² in the
    thesis).

    Args:
        width: channels of the first generator layer (64 in the thesis) and of the first
            discriminator layer; the attention's projection width is ``channels // 16``.
        residual_blocks: residual blocks at the bottleneck (8 in the thesis).
        downsamplings: stride-2 encoder convolutions (2 in the thesis: bottleneck at H/4).
        attention: ``"self"`` (Yang et al.'s pooled self-attention) or ``"contextual"``
            (Yu et al.'s patch attention over the known region).
        discriminator: whether to build the discriminator.
        discriminator_layers: discriminator convolutions before the 1-channel output (4 in the
            thesis; 2 for the small variant).
        aux_heads: Yang et al.'s coarse RGB heads and per-scale gradient heads (absent in the
            thesis's network; see the module docstring).
        head_norm: instance norm inside the 1×1 output heads, as in the reference.
        edge_sigma: Gaussian σ of the Canny edge channel.
        working_size: the square resolution the weights are trained at (declared in the
            conventions so callers resize to it).
        prefill: ``"zeros"`` (the thesis: holes enter as zeros, RGB heads output tanh images)
            or ``"smooth"``: holes enter filled by :func:`tttkit.imageops.smooth_fill` and every
            RGB head predicts a correction to that fill inside the holes (zero at
            initialisation, clamped to the value range; known pixels are returned as given), so
            an untrained network already returns the membrane fill and training only has to
            learn what the fill gets wrong. The fill depends on the known pixels only.
    """

    generator: AttentionGenerator
    discriminator: PatchDiscriminator | None

    def __init__(
        self,
        width: int = 64,
        residual_blocks: int = 8,
        downsamplings: int = 2,
        attention: str = "self",
        discriminator: bool = True,
        discriminator_layers: int = 4,
        aux_heads: bool = True,
        head_norm: bool = True,
        edge_sigma: float = DEFAULT_EDGE_SIGMA,
        working_size: int = 256,
        prefill: str = "zeros",
    ) -> None:
        if prefill not in PREFILLS:
            raise ValueError(f"unknown prefill {prefill!r}; expected one of {', '.join(PREFILLS)}")
        if attention not in ATTENTION_KINDS:
            raise ValueError(
                f"unknown attention {attention!r}; expected one of {', '.join(ATTENTION_KINDS)}"
            )
        if width < 1 or residual_blocks < 0 or downsamplings < 0 or discriminator_layers < 1:
            raise ValueError(
                "need width >= 1, residual_blocks >= 0, downsamplings >= 0 and "
                f"discriminator_layers >= 1; got {width}, {residual_blocks}, {downsamplings}, "
                f"{discriminator_layers}"
            )
        config = {
            "width": width,
            "residual_blocks": residual_blocks,
            "downsamplings": downsamplings,
            "attention": attention,
            "discriminator": discriminator,
            "discriminator_layers": discriminator_layers,
            "aux_heads": aux_heads,
            "head_norm": head_norm,
            "edge_sigma": edge_sigma,
            "working_size": working_size,
            "prefill": prefill,
        }
        conventions = Conventions(
            value_range=(-1.0, 1.0),
            hole_value=1,
            pad_multiple=2 ** (downsamplings + 2),
            working_size=working_size,
            # Both attentions attend over whatever grid they are given (no position embedding,
            # nothing sized at build time), and pretraining itself learns from random crops.
            trains_on_crops=True,
        )
        super().__init__(conventions, config)
        self.edge_sigma = edge_sigma
        self.prefill = prefill
        self.generator = AttentionGenerator(
            width,
            residual_blocks,
            downsamplings,
            attention,
            aux_heads,
            head_norm,
            residual_rgb=prefill == "smooth",
        )
        self.discriminator = (
            PatchDiscriminator(width, discriminator_layers) if discriminator else None
        )

    def native_generate(self, image: Tensor, mask: Tensor) -> GeneratorOutput:
        """Inpaint ``image`` (``[-1, 1]``; hole content is ignored) where ``mask`` is 1.

        Returns the full-size tanh output, the coarser RGB predictions (coarsest first) and the
        predicted Sobel gradients of every scale in units of a ``[-1, 1]`` image (coarsest first,
        ending at full size); both tuples are empty without ``aux_heads``.
        """
        mask = mask.to(image.dtype)
        base = None
        if self.prefill == "smooth":
            with torch.no_grad():
                base = smooth_fill(image, mask)
        rgb, pyramid, gradients = self.generator(
            build_input(image, mask, self.edge_sigma, fill=base), mask, base
        )
        return GeneratorOutput(image=rgb, pyramid=tuple(pyramid), gradients=tuple(gradients))

    def native_discriminate(self, image: Tensor) -> Tensor:
        """Patch logits for an RGB image in ``[-1, 1]``."""
        if self.discriminator is None:
            raise NotImplementedError("this AttentionNet was built with discriminator=False")
        return self.discriminator(image)

    def layer_groups(self) -> dict[str, nn.Module]:
        """``generator.encoder``, ``generator.residual.1…N``, ``generator.decoder.1…`` (coarse to
        fine: attention, 5×5 conv, heads and the upsampling of that scale), then
        ``discriminator.conv1…`` in order."""
        groups: dict[str, nn.Module] = {"generator.encoder": self.generator.encoder}
        for index, block in enumerate(self.generator.residual, start=1):
            groups[f"generator.residual.{index}"] = block
        for index, stage in enumerate(self.generator.decoder, start=1):
            groups[f"generator.decoder.{index}"] = stage
        if self.discriminator is not None:
            for index, layer in enumerate(self.discriminator.layers, start=1):
                groups[f"discriminator.conv{index}"] = layer
        return groups


def attention_net(**overrides: Any) -> AttentionNet:
    """The thesis's network (§3.3): 17,849,825 parameters (generator 15,085,088).

    Freezing the encoder, all residual blocks and discriminator conv1–2 leaves 7,574,817
    trainable (§4.5.3); freezing the encoder, residual blocks 1–4 and discriminator conv1–3
    leaves 11,775,009 (§4.6, combination C).
    """
    return AttentionNet(**{**THESIS_CONFIG, **overrides})


def attention_net_small(**overrides: Any) -> AttentionNet:
    """The thesis's small zero-shot variant (§4.6.5): 2,022,192 parameters.

    6 of the 8 residual blocks removed and one downsampling less (bottleneck at H/2, 128
    channels), and a discriminator with two hidden layers (module docstring explains why).
    """
    config = {**THESIS_CONFIG, "residual_blocks": 2, "downsamplings": 1, "discriminator_layers": 2}
    return AttentionNet(**{**config, **overrides})


def attention_net_compact(width: int = 32, **overrides: Any) -> AttentionNet:
    """A narrower network for test-time training on a CPU: the shipped default.

    The thesis architecture at ``width`` channels (discriminator included, 4.48 M parameters at
    width 32), working at 256², with Yang et al.'s auxiliary gradient heads for the multi-scale
    structure loss, and ``prefill="smooth"``: holes start as a membrane fill of their
    surroundings and the network learns corrections to it, which is what let it overtake
    OpenCV's inpainting within CPU-hours of pretraining (``docs/model-card.md``). Width 32 was
    chosen by measured step time on a 2-core CPU (``docs/performance.md``); it was pretrained at
    128² and then at 256², where its fills beat the 128² ones (``docs/quality.md``); the
    default strategy finetunes it on whole 256² views (128² crops were cheaper per step but
    made test-time training a net loss there).
    """
    config = {
        **THESIS_CONFIG,
        "width": width,
        "aux_heads": True,
        "working_size": 256,
        "prefill": "smooth",
    }
    return AttentionNet(**{**config, **overrides})


def _count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def trainable_after_freezing(net: Backbone, frozen: list[str]) -> int:
    """Parameters left trainable when the named layer groups are frozen."""
    groups = net.layer_groups()
    unknown = sorted(set(frozen) - groups.keys())
    if unknown:
        raise KeyError(f"unknown layer groups: {', '.join(unknown)}")
    frozen_ids = {id(p) for name in frozen for p in groups[name].parameters()}
    return sum(p.numel() for p in net.parameters() if id(p) not in frozen_ids)


def parameter_table(net: Backbone) -> str:
    """Markdown table of parameters per layer group, broken down to single convolutions."""
    lines = ["| layer group | module | parameters |", "|---|---|---:|"]
    for group, module in net.layer_groups().items():
        lines.append(f"| `{group}` | | **{_count(module):,}** |")
        if len(_convs(module)) > 1:
            lines.extend(f"| | {name} | {count:,} |" for name, count in _rows(module, ""))
    counts = net.parameter_counts()
    lines.append(f"| **generator** | | **{counts['generator']:,}** |")
    lines.append(f"| **discriminator** | | **{counts['discriminator']:,}** |")
    lines.append(f"| **total** | | **{counts['total']:,}** |")
    return "\n".join(lines)


def _convs(module: nn.Module) -> list[nn.Conv2d | nn.ConvTranspose2d]:
    return [m for m in module.modules() if isinstance(m, nn.Conv2d | nn.ConvTranspose2d)]


def _rows(module: nn.Module, prefix: str) -> list[tuple[str, int]]:
    """One row per submodule holding a single convolution (with its norm), plus loose tensors."""
    rows: list[tuple[str, int]] = []
    for name, child in module.named_children():
        if not _count(child):
            continue
        convs = _convs(child)
        if len(convs) == 1:
            conv = convs[0]
            kind = "deconv" if isinstance(conv, nn.ConvTranspose2d) else "conv"
            k, stride = conv.kernel_size[0], conv.stride[0]
            shape = f"{k}×{k} {kind} {conv.in_channels}→{conv.out_channels}, s{stride}"
            rows.append((f"`{prefix}{name}` ({shape})", _count(child)))
        else:
            rows.extend(_rows(child, f"{prefix}{name}."))
    for name, param in module.named_parameters(recurse=False):
        rows.append((f"`{prefix}{name}`", param.numel()))
    return rows


__all__ = [
    "PREFILLS",
    "SMALL_TOTAL",
    "THESIS_CONFIG",
    "THESIS_DISCRIMINATOR",
    "THESIS_TOTAL",
    "AttentionNet",
    "attention_net",
    "attention_net_compact",
    "attention_net_small",
    "parameter_table",
    "trainable_after_freezing",
]
