"""LaMa (Suvorov et al., 2022): an FFC-ResNet inpainting generator that loads the official weights.

The module tree reproduces the official ``FFCResNetGenerator`` layer for layer, so the state-dict
keys and shapes are those under ``generator.`` in the official PyTorch Lightning checkpoints
(``big-lama/models/best.ckpt``): a user's file loads with no conversion. Written from the
published architecture and configuration (``configs/training/big-lama.yaml``,
``generator/ffc_resnet_075.yaml``); no code is taken from the LaMa repository.

``generator.model`` is one ``nn.Sequential`` (indices for 3 downsamplings and N blocks):

====================  ===========================================================================
index                 module
====================  ===========================================================================
0                     reflection pad 3
1                     FFC 7×7, 4 → ngf, all local (``ratio_gin = ratio_gout = 0``)
2, 3                  FFC 3×3 stride 2, local → local, doubling the channels
4                     FFC 3×3 stride 2, local → ``ratio`` global (the split the blocks expect)
5 … 4+N               FFC ResNet blocks: two 3×3 FFCs with ``ratio_gin = ratio_gout = ratio``
5+N                   concatenate local and global channels
6+N … 14+N            3 × (transposed conv 3×3 stride 2, BatchNorm, ReLU)
15+N, 16+N, 17+N      reflection pad 3, conv 7×7 ngf → 3, sigmoid
====================  ===========================================================================

An FFC splits its channels into a *local* part (ordinary convolutions) and a *global* part (a
:class:`SpectralTransform`: a 1×1 convolution on the 2-D real FFT of the feature map, whose
receptive field is the whole image). Big LaMa is ``ngf=64``, 3 downsamplings, 18 blocks, ratio
0.75 (51.0 M generator parameters — the paper's 51 M); LaMa-Fourier the same with 9 blocks (27.0 M
— the paper's 27 M). Neither uses the FFC's local Fourier unit (``enable_lfu: false``), which is
therefore not implemented.

The discriminator is LaMa's ``NLayerDiscriminator`` (pix2pixHD PatchGAN, ``ndf=64``,
``n_layers=4``, BatchNorm, no spectral norm) with the official ``discriminator.model0…`` keys, so a
checkpoint that kept them fills it too and test-time training starts from the adversary LaMa was
trained against. (LaMa's ``bin/make_checkpoint.py`` drops ``discriminator.*`` and ``loss_*`` unless
asked to keep them, so a published ``best.ckpt`` may hold the generator only: the discriminator
then starts untrained, with a warning.)
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from tttkit.backbone import Backbone, Conventions, GeneratorOutput
from tttkit.checkpoint import CheckpointError, load_state_dict_strict, read_torch_state_dict
from tttkit.plugins import hookimpl
from tttkit.weights_store import Checkpoint

#: A pair of local and global feature maps; either may be absent (``None``).
Features = tuple[Tensor | None, Tensor | None]

#: Big LaMa's generator and discriminator configuration (``configs/training/big-lama.yaml``).
BIG_LAMA_CONFIG: dict[str, Any] = {
    "ngf": 64,
    "n_downsampling": 3,
    "n_blocks": 18,
    "ratio": 0.75,
    "max_features": 1024,
    "discriminator": True,
    "ndf": 64,
    "discriminator_layers": 4,
}
#: LaMa-Fourier (``configs/training/lama-fourier.yaml`` → ``generator/ffc_resnet_075.yaml``).
LAMA_FOURIER_CONFIG: dict[str, Any] = {**BIG_LAMA_CONFIG, "n_blocks": 9}

#: Checkpoint key prefixes that belong to the network; the rest of a Lightning ``state_dict``
#: (``loss_resnet_pl.*``, ``val_evaluator.*``, …) is training machinery and is ignored.
NETWORK_PREFIXES = ("generator.", "discriminator.")


def _as_pair(x: Tensor | Features) -> Features:
    return x if isinstance(x, tuple) else (x, None)


def _add(*terms: Tensor | None) -> Tensor | None:
    present = [t for t in terms if t is not None]
    if not present:
        return None
    total = present[0]
    for term in present[1:]:
        total = total + term
    return total


class FourierUnit(nn.Module):
    """A 1×1 convolution + BatchNorm + ReLU applied to the 2-D real FFT of a feature map.

    The spectrum's real and imaginary parts are stacked as channels ``2c`` (real) and ``2c + 1``
    (imaginary) of input channel ``c`` — the layout LaMa's weights were trained with, so it must
    not change. Orthonormal FFT; the inverse restores the input's exact size, odd sizes included.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv_layer = nn.Conv2d(2 * in_channels, 2 * out_channels, 1, bias=False)
        self.bn = nn.BatchNorm2d(2 * out_channels)
        self.relu = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C_in, H, W)`` → ``(B, C_out, H, W)``."""
        batch, _, height, width = x.shape
        # cuFFT and the CPU FFT do not take half precision for all sizes: compute in float32.
        spectrum = torch.fft.rfft2(x.float(), norm="ortho")  # (B, C, H, W // 2 + 1)
        stacked = torch.stack((spectrum.real, spectrum.imag), dim=2)  # (B, C, 2, H, W')
        stacked = stacked.reshape(batch, -1, *stacked.shape[-2:]).to(x.dtype)
        y = self.relu(self.bn(self.conv_layer(stacked)))
        y = y.reshape(batch, -1, 2, *y.shape[-2:]).float()
        spectrum = torch.complex(y[:, :, 0], y[:, :, 1])
        return torch.fft.irfft2(spectrum, s=(height, width), norm="ortho").to(x.dtype)


class SpectralTransform(nn.Module):
    """The global-to-global path of an FFC: 1×1 reduce, :class:`FourierUnit`, residual, 1×1 expand.

    Args:
        in_channels: global input channels.
        out_channels: global output channels (the Fourier unit works at half of them).
        stride: 2 average-pools the input first (LaMa's downsampling FFCs).
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        hidden = out_channels // 2
        self.downsample = nn.AvgPool2d(2, 2) if stride == 2 else nn.Identity()
        self.conv1 = nn.Sequential(
            nn.Conv2d(in_channels, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU()
        )
        self.fu = FourierUnit(hidden, hidden)
        self.conv2 = nn.Conv2d(hidden, out_channels, 1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C_in, H, W)`` → ``(B, C_out, H / stride, W / stride)``."""
        x = self.conv1(self.downsample(x))
        return self.conv2(x + self.fu(x))


class FFC(nn.Module):
    """Fast Fourier convolution (Chi et al., 2020): four paths between local and global channels.

    ``convl2l``, ``convl2g`` and ``convg2l`` are ordinary (reflect-padded, bias-free) convolutions;
    ``convg2g`` is a :class:`SpectralTransform`. A path is absent (``None``) when either of its
    ends has no channels, which is why the all-local first layers have only ``convl2l``.

    Args:
        in_channels, out_channels: total channels (local + global).
        kernel_size, stride, padding, dilation: of the spatial convolutions.
        ratio_gin, ratio_gout: fraction of global channels at the input and the output.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        ratio_gin: float,
        ratio_gout: float,
        stride: int = 1,
        padding: int = 0,
        dilation: int = 1,
    ) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"FFC stride must be 1 or 2, got {stride}")
        in_g = int(in_channels * ratio_gin)
        out_g = int(out_channels * ratio_gout)
        in_l, out_l = in_channels - in_g, out_channels - out_g
        self.ratio_gout = ratio_gout

        def conv(cin: int, cout: int) -> nn.Conv2d | None:
            if cin == 0 or cout == 0:
                return None
            return nn.Conv2d(
                cin, cout, kernel_size, stride, padding, dilation, bias=False,
                padding_mode="reflect",
            )  # fmt: skip

        self.convl2l = conv(in_l, out_l)
        self.convl2g = conv(in_l, out_g)
        self.convg2l = conv(in_g, out_l)
        self.convg2g = SpectralTransform(in_g, out_g, stride) if in_g and out_g else None

    def forward(self, x: Tensor | Features) -> Features:
        """``(local, global)`` (or a tensor: all local) → ``(local, global)``."""
        x_l, x_g = _as_pair(x)

        def run(module: nn.Module | None, inp: Tensor | None) -> Tensor | None:
            return None if module is None or inp is None else module(inp)

        # As in LaMa: an output with ratio 0 (or 1) is absent even if a path could feed it.
        out_l = out_g = None
        if self.ratio_gout != 1:
            out_l = _add(run(self.convl2l, x_l), run(self.convg2l, x_g))
        if self.ratio_gout != 0:
            out_g = _add(run(self.convl2g, x_l), run(self.convg2g, x_g))
        return out_l, out_g


class FFCBNAct(nn.Module):
    """An :class:`FFC` followed by BatchNorm and an activation on each of its two outputs.

    The official ``FFC_BN_ACT``: the norm and activation of an output are identities when the
    output has no channels of that kind (``ratio_gout`` 0 or 1).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        ratio_gin: float,
        ratio_gout: float,
        stride: int = 1,
        padding: int = 0,
        activation: Callable[[], nn.Module] = nn.ReLU,
    ) -> None:
        super().__init__()
        self.ffc = FFC(
            in_channels, out_channels, kernel_size, ratio_gin, ratio_gout, stride, padding
        )
        out_g = int(out_channels * ratio_gout)
        self.bn_l = nn.BatchNorm2d(out_channels - out_g) if ratio_gout != 1 else nn.Identity()
        self.bn_g = nn.BatchNorm2d(out_g) if ratio_gout != 0 else nn.Identity()
        self.act_l = activation() if ratio_gout != 1 else nn.Identity()
        self.act_g = activation() if ratio_gout != 0 else nn.Identity()

    def forward(self, x: Tensor | Features) -> Features:
        """``(local, global)`` → ``(local, global)``."""
        x_l, x_g = self.ffc(x)
        return (
            None if x_l is None else self.act_l(self.bn_l(x_l)),
            None if x_g is None else self.act_g(self.bn_g(x_g)),
        )


class FFCResnetBlock(nn.Module):
    """Two 3×3 :class:`FFCBNAct` layers with a residual connection on both branches."""

    def __init__(self, channels: int, ratio: float) -> None:
        super().__init__()
        self.conv1 = FFCBNAct(channels, channels, 3, ratio, ratio, padding=1)
        self.conv2 = FFCBNAct(channels, channels, 3, ratio, ratio, padding=1)

    def forward(self, x: Tensor | Features) -> Features:
        """``(local, global)`` → ``(local, global)`` of the same shapes."""
        x_l, x_g = _as_pair(x)
        y_l, y_g = self.conv2(self.conv1((x_l, x_g)))
        return _add(x_l, y_l), _add(x_g, y_g)


class ConcatTuple(nn.Module):
    """Concatenate the local and global channels into one tensor (local first)."""

    def forward(self, x: Tensor | Features) -> Tensor:
        """``(local, global)`` → ``(B, C_local + C_global, H, W)``."""
        x_l, x_g = _as_pair(x)
        parts = [t for t in (x_l, x_g) if t is not None]
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)


class FFCResNetGenerator(nn.Module):
    """LaMa's generator: ``model`` maps image·(1−mask) ⊕ mask in [0, 1] to an RGB image in [0, 1].

    Args:
        input_nc, output_nc: input (4: masked RGB + mask) and output (3) channels.
        ngf: channels of the first layer.
        n_downsampling: stride-2 FFCs; the bottleneck has ``ngf · 2^n_downsampling`` channels
            (at most ``max_features``).
        n_blocks: FFC ResNet blocks at the bottleneck.
        ratio: global fraction in the blocks (and at the output of the last downsampling).
        max_features: channel cap, as in the official code.
    """

    def __init__(
        self,
        input_nc: int = 4,
        output_nc: int = 3,
        ngf: int = 64,
        n_downsampling: int = 3,
        n_blocks: int = 18,
        ratio: float = 0.75,
        max_features: int = 1024,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), FFCBNAct(input_nc, ngf, 7, 0, 0)]
        for i in range(n_downsampling):
            ratio_out = ratio if i == n_downsampling - 1 else 0.0
            cin, cout = min(max_features, ngf * 2**i), min(max_features, ngf * 2 ** (i + 1))
            layers.append(FFCBNAct(cin, cout, 3, 0, ratio_out, stride=2, padding=1))
        bottleneck = min(max_features, ngf * 2**n_downsampling)
        layers += [FFCResnetBlock(bottleneck, ratio) for _ in range(n_blocks)]
        layers.append(ConcatTuple())
        for i in range(n_downsampling):
            mult = 2 ** (n_downsampling - i)
            cin, cout = min(max_features, ngf * mult), min(max_features, ngf * mult // 2)
            layers += [
                nn.ConvTranspose2d(cin, cout, 3, stride=2, padding=1, output_padding=1),
                nn.BatchNorm2d(cout),
                nn.ReLU(),
            ]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, 7), nn.Sigmoid()]
        self.model = nn.Sequential(*layers)
        self.n_downsampling = n_downsampling
        self.n_blocks = n_blocks

    def forward(self, x: Tensor) -> Tensor:
        """``(B, input_nc, H, W)`` with H, W multiples of ``2^n_downsampling``."""
        return self.model(x)


class NLayerDiscriminator(nn.Module):
    """LaMa's PatchGAN discriminator (pix2pixHD ``NLayerDiscriminator``) for RGB in [0, 1].

    ``model0`` is a 4×4 stride-2 conv + LeakyReLU(0.2); ``model1…model{n-1}`` add BatchNorm
    (stride 2, channels doubling up to 512); ``model{n}`` is the same at stride 1;
    ``model{n+1}`` is the 4×4 conv to one logit channel. All convolutions pad by 2.
    """

    def __init__(self, input_nc: int = 3, ndf: int = 64, n_layers: int = 4) -> None:
        super().__init__()
        if n_layers < 1:
            raise ValueError(f"discriminator_layers must be at least 1, got {n_layers}")
        self.n_layers = n_layers

        def block(cin: int, cout: int, stride: int, norm: bool) -> nn.Sequential:
            parts: list[nn.Module] = [nn.Conv2d(cin, cout, 4, stride, 2)]
            if norm:
                parts.append(nn.BatchNorm2d(cout))
            parts.append(nn.LeakyReLU(0.2))
            return nn.Sequential(*parts)

        stages = [block(input_nc, ndf, 2, norm=False)]
        channels = ndf
        for _ in range(1, n_layers):
            out = min(channels * 2, 512)
            stages.append(block(channels, out, 2, norm=True))
            channels = out
        out = min(channels * 2, 512)
        stages.append(block(channels, out, 1, norm=True))
        stages.append(nn.Sequential(nn.Conv2d(out, 1, 4, 1, 2)))
        for index, stage in enumerate(stages):
            self.add_module(f"model{index}", stage)

    def stages(self) -> list[nn.Module]:
        """``model0 … model{n+1}`` in order."""
        return [getattr(self, f"model{i}") for i in range(self.n_layers + 2)]

    def forward(self, image: Tensor) -> Tensor:
        """Patch logits ``(B, 1, h, w)``."""
        x = image
        for stage in self.stages():
            x = stage(x)
        return x


class LaMa(Backbone):
    """LaMa as a tttkit backbone: FFC-ResNet generator + LaMa's PatchGAN discriminator.

    Conventions: RGB in ``[0, 1]``, mask 1 = hole, sizes padded to ``2^n_downsampling`` (8; LaMa's
    own ``pad_out_to_modulo``, symmetric: the edge pixel repeated), trained at 256² crops. The
    network sees ``image·(1−mask) ⊕ mask`` and returns its sigmoid output (not composited).

    Official weights: ``tttkit inpaint --backbone lama --weights big-lama/models/best.ckpt``
    (the core calls :meth:`convert_state_dict`), or :func:`load_lama_checkpoint` from Python.

    Args:
        ngf, n_downsampling, n_blocks, ratio, max_features: the generator (see
            :class:`FFCResNetGenerator`).
        discriminator: build the discriminator (needed for adversarial losses).
        ndf, discriminator_layers: its width and depth (LaMa: 64 and 4).
        freeze_batchnorm: keep every BatchNorm in inference mode while training, so test-time
            training on views of one photo does not overwrite the statistics learnt on Places2
            (affine parameters still train). Set ``False`` to pretrain from scratch.
        working_size: the square resolution the weights were trained at.
    """

    generator: FFCResNetGenerator
    discriminator: NLayerDiscriminator | None

    def __init__(
        self,
        ngf: int = 64,
        n_downsampling: int = 3,
        n_blocks: int = 18,
        ratio: float = 0.75,
        max_features: int = 1024,
        discriminator: bool = True,
        ndf: int = 64,
        discriminator_layers: int = 4,
        freeze_batchnorm: bool = True,
        working_size: int = 256,
    ) -> None:
        if ngf < 1 or n_downsampling < 1 or n_blocks < 0 or not 0.0 <= ratio < 1.0:
            raise ValueError(
                "need ngf >= 1, n_downsampling >= 1, n_blocks >= 0 and 0 <= ratio < 1; got "
                f"{ngf}, {n_downsampling}, {n_blocks}, {ratio}"
            )
        config = {
            "ngf": ngf,
            "n_downsampling": n_downsampling,
            "n_blocks": n_blocks,
            "ratio": ratio,
            "max_features": max_features,
            "discriminator": discriminator,
            "ndf": ndf,
            "discriminator_layers": discriminator_layers,
            "freeze_batchnorm": freeze_batchnorm,
            "working_size": working_size,
        }
        conventions = Conventions(
            value_range=(0.0, 1.0),
            hole_value=1,
            pad_multiple=2**n_downsampling,
            working_size=working_size,
            pad_mode="symmetric",  # LaMa pads with np.pad(mode="symmetric") (evaluation/data.py)
            trains_on_crops=True,  # fully convolutional (FFC: global FFT, no fixed grid)
        )
        super().__init__(conventions, config)
        self.freeze_batchnorm = freeze_batchnorm
        self.generator = FFCResNetGenerator(
            4, 3, ngf, n_downsampling, n_blocks, ratio, max_features
        )
        self.discriminator = (
            NLayerDiscriminator(3, ndf, discriminator_layers) if discriminator else None
        )

    def native_generate(self, image: Tensor, mask: Tensor) -> GeneratorOutput:
        """LaMa's input (``concat_mask: true``): the masked image and the mask, 4 channels."""
        mask = mask.to(image.dtype)
        return GeneratorOutput(image=self.generator(torch.cat([image * (1 - mask), mask], dim=1)))

    def native_discriminate(self, image: Tensor) -> Tensor:
        """Patch logits for RGB in ``[0, 1]`` (the range LaMa's discriminator was trained on)."""
        if self.discriminator is None:
            raise NotImplementedError("this LaMa was built with discriminator=False")
        return self.discriminator(image)

    def layer_groups(self) -> dict[str, nn.Module]:
        """Thesis-style names, so the thesis's freezing policies apply to LaMa unchanged.

        ``generator.encoder`` (``model.1`` … ``model.{1+d}``: the 7×7 FFC and the d downsampling
        FFCs), ``generator.residual.1…N`` (the FFC ResNet blocks, ``model.{2+d}`` onwards),
        ``generator.decoder.1…d`` (transposed conv + BatchNorm per scale, coarse to fine),
        ``generator.decoder.{d+1}`` (the output 7×7 conv), then ``discriminator.conv1…`` for
        ``discriminator.model0…`` in order.
        """
        model = self.generator.model
        d, n = self.generator.n_downsampling, self.generator.n_blocks
        groups: dict[str, nn.Module] = {
            "generator.encoder": nn.ModuleList(model[1 : 2 + d]),
        }
        for index in range(n):
            groups[f"generator.residual.{index + 1}"] = model[2 + d + index]
        up = 3 + d + n  # first transposed convolution
        for index in range(d):
            groups[f"generator.decoder.{index + 1}"] = nn.ModuleList(
                model[up + 3 * index : up + 3 * index + 2]
            )
        groups[f"generator.decoder.{d + 1}"] = model[up + 3 * d + 1]
        if self.discriminator is not None:
            for index, stage in enumerate(self.discriminator.stages(), start=1):
                groups[f"discriminator.conv{index}"] = stage
        return groups

    def convert_state_dict(self, state: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Select this network's tensors from an official LaMa checkpoint, renaming nothing.

        Keeps the ``generator.*`` keys (a bare generator state dict with ``model.*`` keys gets the
        ``generator.`` prefix) and the ``discriminator.*`` keys; drops the rest of a Lightning
        ``state_dict`` (losses, evaluators). If the file has no discriminator tensors, this
        backbone's current discriminator tensors are kept, with a warning: the generator is what
        must load strictly. The result goes to the strict loader, whose error lists any missing,
        unexpected or mis-shaped keys.
        """
        kept = {k: v for k, v in state.items() if k.startswith(NETWORK_PREFIXES)}
        if not any(k.startswith("generator.") for k in kept):
            kept.update({f"generator.{k}": v for k, v in state.items() if k.startswith("model.")})
        has_disc = any(k.startswith("discriminator.") for k in kept)
        if self.discriminator is None:
            kept = {k: v for k, v in kept.items() if not k.startswith("discriminator.")}
        elif not has_disc and any(k.startswith("generator.") for k in kept):
            warnings.warn(
                "the LaMa checkpoint has no discriminator weights: the discriminator keeps its "
                "current (untrained) weights",
                stacklevel=2,
            )
            own = self.discriminator.state_dict()
            kept.update({f"discriminator.{k}": v for k, v in own.items()})
        return kept


def read_state_dict(path: str | Path) -> dict[str, Tensor]:
    """The tensors of a ``.ckpt``/``.pth``/``.pt`` or ``.safetensors`` file (see
    :func:`tttkit.checkpoint.read_torch_state_dict`)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    return read_torch_state_dict(path)


def load_lama_checkpoint(backbone: LaMa, path: str | Path) -> None:
    """Load an official LaMa checkpoint (Lightning ``best.ckpt`` or a generator state dict).

    Raises:
        CheckpointError: unreadable file, or keys/shapes that do not fit (the message lists the
            missing, unexpected and mis-shaped keys).
    """
    state = read_state_dict(path)
    load_state_dict_strict(backbone, backbone.convert_state_dict(state), Path(path))


def big_lama(**overrides: Any) -> LaMa:
    """Big LaMa: ngf 64, 3 downsamplings, 18 FFC blocks at ratio 0.75 (51.0 M generator
    parameters, 6.96 M discriminator)."""
    return LaMa(**{**BIG_LAMA_CONFIG, **overrides})


def lama_fourier(**overrides: Any) -> LaMa:
    """LaMa-Fourier: Big LaMa's layout with 9 FFC blocks (27.0 M generator parameters)."""
    return LaMa(**{**LAMA_FOURIER_CONFIG, **overrides})


#: The official Big LaMa release, as advimman/lama's README points to it (its Google Drive
#: folder holds the same big-lama.zip); the publishers give no checksum, so the first
#: download's is recorded (tttkit.weights_store).
BIG_LAMA_RELEASE = Checkpoint(
    file="big-lama.ckpt",
    url="https://huggingface.co/smartywu/big-lama/resolve/main/big-lama.zip",
    member="big-lama/models/best.ckpt",
    licence="Apache-2.0 (advimman/lama)",
)


@hookimpl
def tttkit_register_backbones(register: Callable[..., None]) -> None:
    """Register Big LaMa and LaMa-Fourier (weights: the user's official ``best.ckpt``).

    The class itself (and a partial) rather than the helper functions, so that ``tttkit list``
    shows every option with its default."""
    register(
        "lama",
        functools.partial(LaMa, **BIG_LAMA_CONFIG),
        description="Big LaMa FFC-ResNet (official best.ckpt loads as is), 51 M + 7 M parameters",
        checkpoints={"big-lama": BIG_LAMA_RELEASE},
    )
    register(
        "lama-fourier",
        functools.partial(LaMa, **LAMA_FOURIER_CONFIG),
        description="LaMa-Fourier: Big LaMa's layout with 9 FFC blocks, 27 M + 7 M parameters",
    )


__all__ = [
    "BIG_LAMA_CONFIG",
    "FFC",
    "LAMA_FOURIER_CONFIG",
    "FFCBNAct",
    "FFCResNetGenerator",
    "FFCResnetBlock",
    "FourierUnit",
    "LaMa",
    "NLayerDiscriminator",
    "SpectralTransform",
    "big_lama",
    "lama_fourier",
    "load_lama_checkpoint",
    "read_state_dict",
]
