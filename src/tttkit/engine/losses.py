"""Loss functions of test-time training (thesis §2.7, §3.2.3), for any backbone.

All images are RGB in ``[0, 1]``; masks are ``(B, 1, H, W)`` with 1 marking the region (a hole,
the finetuning mask F, or the background B). Every function is differentiable with respect to the
prediction and runs on whatever device its inputs are on.

Which pixels each loss sees (thesis §3.2.3)
-------------------------------------------
* Foreground F: losses on the *completed output* (eq. 3.3): F from the network's output, the rest
  from the input, so only F's outputs receive gradient.
* Background ``B = (F ∪ U)ᶜ`` (only with ``LossSpec.background``): pixel losses (L1, structure)
  restricted to B; perceptual and adversarial losses on the *raw output* (eq. 3.4): U from the
  input, the rest from the output.
* The user's holes U never receive gradient: there is no ground truth there.

Reductions
----------
Masked means pool over the whole batch (sum of the masked errors over the sum of the mask), as
Yang et al.'s code does and as thesis eq. 2.14 writes it (``P`` is the set of valid coordinates),
so a view with a larger mask weighs more. An empty mask gives 0, never NaN.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from kornia.filters import get_gaussian_kernel2d
from torch import Tensor, nn

from tttkit.backbone import GeneratorOutput
from tttkit.config import LossSpec
from tttkit.engine.perceptual import DEFAULT_LAYERS, IMAGENET_MEAN, IMAGENET_STD, resolve_layers
from tttkit.imageops import DEFAULT_EDGE_SIGMA, canny_edges, gaussian_kernel_size, sobel_gradients

Discriminate = Callable[[Tensor], Tensor]


# -- reductions --------------------------------------------------------------------------------


def weighted_mean(values: Tensor, weight: Tensor | None = None) -> Tensor:
    """Mean of ``values`` weighted by a mask broadcast over it; 0 when the mask is empty.

    Args:
        values: ``(B, C, H, W)`` (any shape ``weight`` broadcasts to).
        weight: ``(B, 1, H, W)`` or ``(B, C, H, W)`` non-negative weights, or ``None`` (plain mean).

    Returns:
        ``sum(values · weight) / sum(weight broadcast to values)``, a scalar.
    """
    if weight is None:
        return values.mean()
    weight = weight.expand_as(values)
    # clamp instead of a branch: with an empty mask the numerator and its gradient are exactly 0,
    # whereas torch.where would still propagate NaN gradients from a 0/0 branch.
    total = weight.sum().clamp_min(torch.finfo(values.dtype).tiny)
    return (values * weight).sum() / total


def masked_l1(pred: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
    """Mean absolute error over the masked pixels and all channels (thesis eq. 2.14).

    Args:
        pred: ``(B, C, H, W)`` prediction.
        target: ``(B, C, H, W)`` ground truth.
        mask: ``(B, 1, H, W)`` region (1 = counted; soft values weight pixels), or ``None`` for
            every pixel.

    Returns:
        ``Σ |pred − target| · mask / (C · Σ mask)`` over the whole batch; 0 for an empty mask.
    """
    return weighted_mean((pred - target).abs(), mask)


# -- structure ---------------------------------------------------------------------------------


class StructureLoss(nn.Module):
    """Pyramid structure loss (thesis eq. 2.16, after Yang et al. 2020).

    At every scale ``s`` of the prediction's gradient pyramid::

        L_s = w_g · mean_M |G_pred − G_true| + α · Σ(|G_pred − G_true| · E′ · M) / Σ(E′ · M)

    where ``G_true`` is the Sobel gradient of the target downscaled to ``s``, ``M`` the region
    (downscaled the same way, so coarse pixels straddling its border count partly), and
    ``E′`` the target's Canny edges at ``s`` convolved with a 5×5 Gaussian of standard deviation
    ``sigma`` — weight near edges. Both terms are means over pixels and the 6 gradient channels.
    The loss is the *sum* over scales, as in Yang et al.'s code.

    Without gradient heads, ``G_pred`` is the Sobel gradient of the predicted image at full
    resolution (one scale), which is what the thesis network does (§3.3).

    Args:
        alpha: weight of the edge term (thesis §3.3: 0.1).
        sigma: standard deviation of the Gaussian spreading the edges (thesis: "standard", 1).
        gradient_weight: weight ``w_g`` of the plain gradient term. 1 is thesis eq. 2.16; Yang et
            al.'s code puts 0.1 here (their ``GRAD_ALPHA``) and 1 on the edge term, whose β = 20
            (``EDGE_ALPHA``) multiplies ``E′`` in both numerator and denominator and so cancels.
        kernel_size: size of the spreading Gaussian (thesis: 5).
        edge_sigma: σ of Canny's smoothing (Yang et al.: 1.5).
        blur_passes: how many times the Gaussian is applied (thesis: 1; Yang's code: 2).
        downscale: interpolation bringing the target (and region) to a coarser scale. ``"area"``
            averages, like a camera at lower resolution; Yang et al. used ``"nearest"``.
    """

    def __init__(
        self,
        alpha: float = 0.1,
        sigma: float = 1.0,
        *,
        gradient_weight: float = 1.0,
        kernel_size: int = 5,
        edge_sigma: float = DEFAULT_EDGE_SIGMA,
        blur_passes: int = 1,
        downscale: Literal["area", "nearest", "bilinear"] = "area",
    ) -> None:
        super().__init__()
        self.alpha = alpha
        self.gradient_weight = gradient_weight
        self.edge_sigma = edge_sigma
        self.blur_passes = blur_passes
        self.downscale = downscale
        kernel = get_gaussian_kernel2d((kernel_size, kernel_size), (sigma, sigma))
        self.register_buffer(
            "spread", kernel.view(1, 1, kernel_size, kernel_size), persistent=False
        )
        # Canny is the costly part of this loss; a step scores foreground and background against
        # the same target, so the edge weights of the latest target are kept per scale.
        # The target is held (not just its address) so its memory cannot be reused meanwhile.
        self._edge_target: tuple[Tensor, int] | None = None
        self._edge_cache: dict[tuple[int, ...], Tensor] = {}

    def forward(
        self,
        pred: Tensor,
        target: Tensor,
        mask: Tensor | None = None,
        gradients: Sequence[Tensor] = (),
    ) -> Tensor:
        """Structure loss of a prediction against a target.

        Args:
            pred: ``(B, 3, H, W)`` predicted image in ``[0, 1]`` (used only without ``gradients``).
            target: ``(B, 3, H, W)`` ground truth in ``[0, 1]``.
            mask: ``(B, 1, H, W)`` region the loss is restricted to, or ``None`` for all pixels.
            gradients: predicted Sobel gradients ``(B, 6, h, w)`` per scale (any order), in units
                of a ``[0, 1]`` image — :attr:`GeneratorOutput.gradients`; empty to use
                ``sobel_gradients(pred)``.

        Returns:
            The sum over scales of the per-scale loss, a scalar.
        """
        predicted = list(gradients) if len(gradients) > 0 else [sobel_gradients(pred)]
        total = pred.new_zeros(())
        for grad in predicted:
            size = tuple(grad.shape[-2:])
            target_s = self._resize(target, size)
            mask_s = None if mask is None else self._resize(mask, size)
            error = (grad - sobel_gradients(target_s)).abs()
            if self.gradient_weight:
                total = total + self.gradient_weight * weighted_mean(error, mask_s)
            if self.alpha:
                spread = self._cached_edge_weights(target, target_s)
                region = spread if mask_s is None else spread * mask_s
                total = total + self.alpha * weighted_mean(error, region)
        return total

    @torch.no_grad()
    def edge_weights(self, image: Tensor) -> Tensor:
        """``E′``: Canny edges of ``image`` spread by the Gaussian, ``(B, 1, H, W)`` (no gradient).

        Images too small for Canny's smoothing kernel get no edge weight (the edge term is then 0).
        """
        pad = gaussian_kernel_size(self.edge_sigma) // 2
        if min(image.shape[-2:]) <= pad:  # reflect padding needs pad < size
            return image.new_zeros(image.shape[0], 1, *image.shape[-2:])
        edges = canny_edges(image, self.edge_sigma)
        kernel = self.spread.to(edges)
        for _ in range(self.blur_passes):
            # zero padding, like TensorFlow's "SAME" in Yang et al.: no edges outside the image
            edges = F.conv2d(edges, kernel, padding=kernel.shape[-1] // 2)
        return edges

    def _cached_edge_weights(self, target: Tensor, target_s: Tensor) -> Tensor:
        # The version counter changes with any in-place write, so an edited target is recomputed.
        held = self._edge_target
        if held is None or held[0] is not target or held[1] != target._version:
            self._edge_target, self._edge_cache = (target, target._version), {}
        scale = tuple(target_s.shape[-2:])
        if scale not in self._edge_cache:
            self._edge_cache[scale] = self.edge_weights(target_s)
        return self._edge_cache[scale]

    def _resize(self, x: Tensor, size: tuple[int, ...]) -> Tensor:
        if tuple(x.shape[-2:]) == size:
            return x
        if self.downscale == "bilinear":
            return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
        return F.interpolate(x, size=size, mode=self.downscale)


# -- perceptual --------------------------------------------------------------------------------


class PerceptualLoss(nn.Module):
    """L1 between feature maps of a frozen network (thesis eq. 2.17).

    ``Σ_i w_i · mean |φ_i(pred) − φ_i(target)| / s_i`` over the chosen layers (``w_i = 1/n`` by
    default: the thesis's mean over layers); inputs are first normalised with the ImageNet mean
    and standard deviation. With ``normalize`` (default), ``s_i = mean |φ_i(target)|`` makes
    each layer's term a relative error: raw VGG feature differences are ~30× the pixel L1 on
    real photos, while Yang et al.'s weight of 0.1 was set for features they fed an un-centred
    image (tiny activations); normalised, 0.1 weighs the perceptual term like theirs did.
    The network is frozen (``requires_grad=False``, kept in eval mode
    even if a parent calls ``.train()``): gradients reach the prediction only. Target features
    are computed without a graph.

    Args:
        features: a VGG-like ``nn.Sequential``
            (:func:`tttkit.engine.perceptual.load_feature_network`).
        layers: layer names (``"relu3_1"``) or indices to compare; default ``relu1_1`` …
            ``relu5_1`` as in Yang et al.'s code (which compares them with an L2 loss).
        weights: per-layer weights (default: equal, so the loss is the mean over layers).
        normalize: divide each layer's L1 by the mean magnitude of the target's features.
    """

    def __init__(
        self,
        features: nn.Module,
        layers: Sequence[str | int] = DEFAULT_LAYERS,
        weights: Sequence[float] | None = None,
        normalize: bool = True,
    ) -> None:
        super().__init__()
        self.normalize = normalize
        if not isinstance(features, nn.Sequential):
            raise TypeError("features must be an nn.Sequential of VGG layers")
        self.indices = resolve_layers(features, layers)
        if weights is not None and len(weights) != len(self.indices):
            raise ValueError(f"{len(weights)} layer weights for {len(self.indices)} layers")
        self.layer_weights = (
            [1.0 / len(self.indices)] * len(self.indices)
            if weights is None
            else [float(w) for w in weights]
        )
        self.features = nn.Sequential(*list(features)[: self.indices[-1] + 1])
        self.features.requires_grad_(False).eval()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def train(self, mode: bool = True) -> PerceptualLoss:
        """Keep the feature network in eval mode whatever the caller asks."""
        super().train(mode)
        self.features.eval()
        return self

    def extract(self, image: Tensor) -> list[Tensor]:
        """Feature maps of ``image`` (``[0, 1]`` RGB) at the chosen layers, shallowest first."""
        x = (image - self.mean.to(image)) / self.std.to(image)
        taps: list[Tensor] = []
        wanted = set(self.indices)
        for index, module in enumerate(self.features):
            x = module(x)
            if index in wanted:
                taps.append(x)
        return taps

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        """Perceptual loss of ``pred`` against ``target`` (both ``(B, 3, H, W)`` in ``[0, 1]``)."""
        return self.compare([pred], target)[0]

    def compare(self, preds: Sequence[Tensor], target: Tensor) -> list[Tensor]:
        """Perceptual losses of several predictions against one target, whose features are
        computed once (the completed and raw outputs of a step share their target).

        Args:
            preds: ``(B, 3, H, W)`` predictions in ``[0, 1]``.
            target: ``(B, 3, H, W)`` ground truth in ``[0, 1]``.

        Returns:
            One scalar loss per prediction.
        """
        with torch.no_grad():
            reference = self.extract(target)
        batch = len(target)
        features = self.extract(torch.cat(list(preds)))  # one pass for all predictions
        losses = []
        for k in range(len(preds)):
            loss = target.new_zeros(())
            for weight, fp, ft in zip(self.layer_weights, features, reference, strict=True):
                term = (fp[k * batch : (k + 1) * batch] - ft).abs().mean()
                if self.normalize:
                    term = term / ft.abs().mean().clamp_min(1e-6)
                loss = loss + weight * term
            losses.append(loss)
        return losses


_WRAPPED: weakref.WeakKeyDictionary[nn.Module, PerceptualLoss] = weakref.WeakKeyDictionary()


def as_perceptual_loss(network: PerceptualLoss | nn.Module) -> PerceptualLoss:
    """A :class:`PerceptualLoss` for a bare feature network (wrapped once, then reused)."""
    if isinstance(network, PerceptualLoss):
        return network
    wrapped = _WRAPPED.get(network)
    if wrapped is None:
        wrapped = _WRAPPED[network] = PerceptualLoss(network)
    return wrapped


# -- adversarial -------------------------------------------------------------------------------


def select_patches(
    mask: Tensor,
    logits_hw: Tensor | Sequence[int],
    keep: Literal["above", "below"] = "above",
) -> Tensor:
    """Which discriminator patches count: average-pool a mask to the logits' size, threshold 0.5.

    Thesis §3.2.3: real patches where the pooled U is below 50%; fake-foreground patches where the
    pooled F is above 50%; fake-background patches where the pooled U is below 50%. Exactly 50%
    counts for neither side.

    Args:
        mask: ``(B, 1, H, W)`` in ``[0, 1]``.
        logits_hw: the logits tensor, or its ``(h, w)``.
        keep: ``"above"`` keeps patches whose pooled value is > 0.5, ``"below"`` those < 0.5.

    Returns:
        ``(B, 1, h, w)`` float selection, 1 for kept patches.
    """
    size = tuple(logits_hw.shape[-2:]) if isinstance(logits_hw, Tensor) else tuple(logits_hw)
    pooled = F.adaptive_avg_pool2d(mask, size)
    if keep == "above":
        return (pooled > 0.5).to(mask.dtype)
    if keep == "below":
        return (pooled < 0.5).to(mask.dtype)
    raise ValueError(f"keep must be 'above' or 'below', not {keep!r}")


def hinge_discriminator_loss(
    real_logits: Tensor, fake_logits: Tensor, real_select: Tensor, fake_select: Tensor
) -> Tensor:
    """SN-PatchGAN hinge loss of the discriminator (thesis eq. 2.18) over selected patches.

    Args:
        real_logits: ``(B, C, h, w)`` scores of real images.
        fake_logits: ``(B', C, h, w)`` scores of generated images.
        real_select: ``(B, 1, h, w)`` 1 where a real patch counts (:func:`select_patches`).
        fake_select: ``(B', 1, h, w)`` 1 where a fake patch counts.

    Returns:
        ``mean_sel max(0, 1 − D(real)) + mean_sel max(0, 1 + D(fake))``; a side with no selected
        patch contributes 0.
    """
    real = weighted_mean(F.relu(1.0 - real_logits), real_select)
    fake = weighted_mean(F.relu(1.0 + fake_logits), fake_select)
    return real + fake


def hinge_generator_loss(fake_logits: Tensor, select: Tensor | None = None) -> Tensor:
    """SN-PatchGAN hinge loss of the generator: ``−mean D(fake)`` over selected patches.

    Thesis eq. 2.18 writes the generator objective as the mean score to maximise; this is its
    negation to minimise. 0 when no patch is selected.
    """
    return -weighted_mean(fake_logits, select)


# -- composites the engine calls ---------------------------------------------------------------


def completed_output(output: Tensor, image: Tensor, finetune_mask: Tensor) -> Tensor:
    """Thesis eq. 3.3: F from the output, everything else from the input image."""
    return finetune_mask * output + (1.0 - finetune_mask) * image


def raw_output(output: Tensor, image: Tensor, user_mask: Tensor) -> Tensor:
    """Thesis eq. 3.4: U from the input image (no ground truth there), the rest from the output."""
    return (1.0 - user_mask) * output + user_mask * image


def background_mask(finetune_mask: Tensor, user_mask: Tensor) -> Tensor:
    """Thesis eq. 3.2: ``B = (F ∪ U)ᶜ``."""
    return 1.0 - torch.maximum(finetune_mask, user_mask)


def structure_loss_for(spec: LossSpec) -> StructureLoss:
    """The :class:`StructureLoss` a :class:`LossSpec` describes."""
    return StructureLoss(
        alpha=spec.structural_alpha,
        sigma=spec.structural_sigma,
        # optional field: thesis eq. 2.16 weighs the plain gradient term 1
        gradient_weight=spec.structural_gradient_weight,
    )


def generator_losses(
    output: GeneratorOutput,
    target: Tensor,
    finetune_mask: Tensor,
    user_mask: Tensor,
    spec: LossSpec,
    perceptual: PerceptualLoss | nn.Module | None = None,
    discriminate: Discriminate | None = None,
) -> dict[str, Tensor]:
    """Weighted generator loss terms of one step (thesis §3.2.3).

    Foreground terms use the completed output (eq. 3.3) against ``target`` on F; with
    ``spec.background``, L1 and structure are added on ``B = (F ∪ U)ᶜ`` and perceptual and
    adversarial terms on the raw output (eq. 3.4). A term whose weight is 0 is not computed.

    Args:
        output: the generator's prediction for the view whose F is hidden.
        target: ``(B, 3, H, W)`` the view itself in ``[0, 1]`` (U holds the filler content).
        finetune_mask: ``(B, 1, H, W)`` F, 1 on the pixels hidden for finetuning.
        user_mask: ``(B, 1, H, W)`` U, 1 on the user's holes.
        spec: weights and options.
        perceptual: a :class:`PerceptualLoss` or bare feature network; required when
            ``spec.perceptual > 0``.
        discriminate: patch logits of an image in ``[0, 1]``; ``None`` skips the adversarial
            terms (a backbone without discriminator).

    Returns:
        ``{"l1", "structural", "perceptual", "adversarial"}`` (those with weight > 0), the same
        with ``_background`` when ``spec.background``, each already weighted, and ``"total"``.

    Raises:
        ValueError: ``spec.perceptual > 0`` but no feature network was given.
    """
    image = output.image
    completed = completed_output(image, target, finetune_mask)
    background = background_mask(finetune_mask, user_mask) if spec.background else None
    raw = raw_output(image, target, user_mask) if spec.background else None
    terms: dict[str, Tensor] = {}

    if spec.l1 > 0:
        terms["l1"] = spec.l1 * masked_l1(image, target, finetune_mask)
        if background is not None:
            terms["l1_background"] = spec.l1 * masked_l1(image, target, background)

    if spec.structural > 0:
        structure = structure_loss_for(spec).to(image.device)
        heads = output.gradients
        terms["structural"] = spec.structural * structure(completed, target, finetune_mask, heads)
        if background is not None:
            assert raw is not None
            terms["structural_background"] = spec.structural * structure(
                raw, target, background, heads
            )

    if spec.perceptual > 0:
        if perceptual is None:
            raise ValueError(
                f"the perceptual loss has weight {spec.perceptual} but no feature network was "
                "given: load one with tttkit.engine.perceptual.load_feature_network, or set "
                "losses.perceptual=0"
            )
        preds = [completed] if raw is None else [completed, raw]
        values = as_perceptual_loss(perceptual).compare(preds, target)
        terms["perceptual"] = spec.perceptual * values[0]
        if raw is not None:
            terms["perceptual_background"] = spec.perceptual * values[1]

    if spec.adversarial > 0 and discriminate is not None:
        fakes = completed if raw is None else torch.cat((completed, raw))
        logits = discriminate(fakes)  # one call: spectral norm's power iteration runs once
        fg_logits = logits[: len(completed)]
        terms["adversarial"] = spec.adversarial * hinge_generator_loss(
            fg_logits, select_patches(finetune_mask, fg_logits, "above")
        )
        if raw is not None:
            bg_logits = logits[len(completed) :]
            terms["adversarial_background"] = spec.adversarial * hinge_generator_loss(
                bg_logits, select_patches(user_mask, bg_logits, "below")
            )

    terms["total"] = _total(terms, image)
    return terms


def discriminator_loss(
    output: GeneratorOutput,
    target: Tensor,
    finetune_mask: Tensor,
    user_mask: Tensor,
    spec: LossSpec,
    discriminate: Discriminate,
) -> dict[str, Tensor]:
    """Hinge loss of the discriminator for one step (thesis §3.2.3, eq. 2.18).

    Real: ``target`` with patches kept where the pooled U is below 50%. Fake: the completed output
    with patches where the pooled F is above 50%, plus, with ``spec.background``, the raw output
    with patches where the pooled U is below 50%. Fake patches of both kinds are pooled into one
    mean so real and fake sides keep equal weight. The generator's output is detached.

    Args:
        output, target, finetune_mask, user_mask, spec: as for :func:`generator_losses`.
        discriminate: patch logits of an image in ``[0, 1]``.

    Returns:
        ``{"real", "fake", "total"}`` (unweighted: the adversarial weight scales the generator's
        side only, as in Yang et al.'s code).
    """
    image = output.image.detach()
    completed = completed_output(image, target, finetune_mask)
    fakes, selects_from = [completed], [(finetune_mask, "above")]
    if spec.background:
        fakes.append(raw_output(image, target, user_mask))
        selects_from.append((user_mask, "below"))
    logits = discriminate(torch.cat([target, *fakes]))
    batch = len(target)
    real_logits, fake_logits = logits[:batch], logits[batch:]
    real_select = select_patches(user_mask, real_logits, "below")
    fake_select = torch.cat(
        [select_patches(mask, real_logits, keep) for mask, keep in selects_from]  # type: ignore[arg-type]
    )
    real = weighted_mean(F.relu(1.0 - real_logits), real_select)
    fake = weighted_mean(F.relu(1.0 + fake_logits), fake_select)
    return {"real": real, "fake": fake, "total": real + fake}


def _total(terms: Mapping[str, Tensor], like: Tensor) -> Tensor:
    if not terms:
        return like.sum() * 0.0  # keeps backward() valid when every weight is 0
    return torch.stack(list(terms.values())).sum()


__all__ = [
    "PerceptualLoss",
    "StructureLoss",
    "as_perceptual_loss",
    "background_mask",
    "completed_output",
    "discriminator_loss",
    "generator_losses",
    "hinge_discriminator_loss",
    "hinge_generator_loss",
    "masked_l1",
    "raw_output",
    "select_patches",
    "structure_loss_for",
    "weighted_mean",
]
