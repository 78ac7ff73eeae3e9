"""Loss functions: values on known inputs, which pixels they see, gradients, empty selections."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tttkit.backbone import GeneratorOutput
from tttkit.config import LossSpec
from tttkit.engine.losses import (
    PerceptualLoss,
    StructureLoss,
    background_mask,
    completed_output,
    discriminator_loss,
    generator_losses,
    hinge_discriminator_loss,
    hinge_generator_loss,
    masked_l1,
    raw_output,
    select_patches,
)
from tttkit.engine.perceptual import build_vgg_features
from tttkit.imageops import sobel_gradients

SIZE = 32


def step_image(size: int = 64, edge_at: int = 32, batch: int = 1) -> Tensor:
    """Dark left part, bright right part: one vertical edge."""
    image = torch.full((batch, 3, size, size), 0.2)
    image[..., edge_at:] = 0.8
    return image


def masks(size: int = SIZE, batch: int = 2) -> tuple[Tensor, Tensor]:
    """F (a square on the left) and U (a square on the right), disjoint."""
    finetune = torch.zeros(batch, 1, size, size)
    finetune[..., 4:14, 4:14] = 1
    user = torch.zeros(batch, 1, size, size)
    user[..., 18:28, 18:28] = 1
    return finetune, user


@pytest.fixture(scope="module")
def tiny_perceptual() -> PerceptualLoss:
    torch.manual_seed(0)
    return PerceptualLoss(build_vgg_features("vgg16"), layers=("relu1_1", "relu2_1"))


class PatchCritic(nn.Module):
    """A stand-in SN-PatchGAN: 4×4 patch logits of a 32×32 image."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.conv = nn.Conv2d(3, 1, kernel_size=8, stride=8)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x)


# -- masked L1 ---------------------------------------------------------------------------------


def test_masked_l1_known_values() -> None:
    target = torch.zeros(1, 2, 2, 2)
    target[0, 0] = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    pred = torch.zeros_like(target)
    mask = torch.tensor([[[[1.0, 0.0], [0.0, 1.0]]]])
    # masked pixels 1 and 4 in channel 0, 0 and 0 in channel 1: mean over pixels and channels
    assert masked_l1(pred, target, mask).item() == pytest.approx((1 + 4 + 0 + 0) / 4)
    assert masked_l1(pred, target).item() == pytest.approx(10 / 8)


def test_masked_l1_zero_for_identical_and_empty_mask_is_safe() -> None:
    x = torch.rand(2, 3, 8, 8)
    assert masked_l1(x, x.clone(), torch.ones(2, 1, 8, 8)).item() == 0.0
    pred = torch.rand(2, 3, 8, 8, requires_grad=True)
    loss = masked_l1(pred, x, torch.zeros(2, 1, 8, 8))
    loss.backward()
    assert loss.item() == 0.0 and torch.equal(pred.grad, torch.zeros_like(pred))


def test_masked_l1_ignores_unmasked_pixels() -> None:
    torch.manual_seed(0)
    pred, target = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16)
    mask = torch.zeros(2, 1, 16, 16)
    mask[..., 2:9, 3:12] = 1
    changed = torch.where(mask.bool(), pred, torch.rand_like(pred))
    assert masked_l1(changed, target, mask).item() == pytest.approx(
        masked_l1(pred, target, mask).item()
    )
    inside = pred.clone()
    inside[..., 4, 5] += 0.5
    assert masked_l1(inside, target, mask).item() != pytest.approx(
        masked_l1(pred, target, mask).item()
    )


# -- structure ---------------------------------------------------------------------------------


def test_structure_zero_for_identical_images_with_and_without_heads() -> None:
    target = step_image() * torch.linspace(0.5, 1.0, 64)  # an edge and a ramp
    loss = StructureLoss()
    assert loss(target.clone(), target).item() == pytest.approx(0.0, abs=1e-7)
    heads = [sobel_gradients(F.interpolate(target, size=s, mode="area")) for s in (16, 32, 64)]
    assert loss(target, target, gradients=heads).item() == pytest.approx(0.0, abs=1e-7)


def test_structure_grows_with_edge_mismatch() -> None:
    target = step_image()
    loss = StructureLoss()
    values = [loss(step_image(edge_at=32 + shift), target).item() for shift in (0, 1, 4)]
    assert values[0] == pytest.approx(0.0, abs=1e-7)
    assert 0 < values[1] < values[2]


def test_edge_term_only_counts_near_edges() -> None:
    target = step_image()  # Canny finds the edge around column 32 only
    edge_only = StructureLoss(alpha=1.0, gradient_weight=0.0)
    spread = edge_only.edge_weights(target)
    assert spread[..., :24].abs().max() == 0 and spread[..., 40:].abs().max() == 0
    assert spread[..., 28:36].sum() > 0

    far = target.clone()
    far[..., 20:30, 4:12] = 0.6  # a new square far from the edge
    near = target.clone()
    near[..., 20:30, 28:32] = 0.6  # the same change against the edge
    assert edge_only(far, target).item() == 0.0
    assert edge_only(near, target).item() > 0.0
    # the plain gradient term sees both
    plain = StructureLoss(alpha=0.0)
    assert plain(far, target).item() > 0.0 and plain(near, target).item() > 0.0


def test_structure_with_gradient_heads_trains_the_heads() -> None:
    target = step_image(batch=2)
    heads = [
        sobel_gradients(F.interpolate(target, size=s, mode="area")).requires_grad_()
        for s in (16, 32, 64)
    ]
    with torch.no_grad():
        heads[1][..., 10:20, 10:20] += 0.5
    pred = target.clone().requires_grad_()
    loss = StructureLoss()(pred, target, gradients=heads)
    loss.backward()
    assert loss.item() > 0
    assert heads[1].grad is not None and heads[1].grad.abs().sum() > 0
    assert pred.grad is None  # with heads, the image itself is not what the loss reads


def test_structure_restricted_to_region() -> None:
    target = step_image(batch=2)
    region = torch.zeros(2, 1, 64, 64)
    region[..., :, 24:40] = 1  # a band around the edge
    loss = StructureLoss(alpha=0.5)
    outside = target.clone()
    outside[..., 10:20, 2:10] = 0.9  # Sobel reaches 1 px beyond: still outside the band
    inside = target.clone()
    inside[..., 10:20, 28:36] = 0.9
    assert loss(outside, target, region).item() == 0.0
    assert loss(inside, target, region).item() > 0.0
    assert loss(outside, target).item() > 0.0  # unrestricted, the change counts
    empty = loss(inside, target, torch.zeros_like(region))
    assert empty.item() == 0.0 and torch.isfinite(empty)


# -- completed/raw outputs and the composite --------------------------------------------------


def test_completed_and_raw_outputs() -> None:
    finetune, user = masks(batch=1)
    out, inp = torch.ones(1, 3, SIZE, SIZE), torch.zeros(1, 3, SIZE, SIZE)
    assert torch.equal(completed_output(out, inp, finetune), finetune.expand_as(out))
    assert torch.equal(raw_output(out, inp, user), (1 - user).expand_as(out))
    background = background_mask(finetune, user)
    assert torch.equal(background, 1 - finetune - user)


def run_generator(spec: LossSpec, perceptual: PerceptualLoss | None) -> tuple[dict, Tensor]:
    torch.manual_seed(2)
    finetune, user = masks()
    target = torch.rand(2, 3, SIZE, SIZE)
    image = torch.rand(2, 3, SIZE, SIZE, requires_grad=True)
    terms = generator_losses(
        GeneratorOutput(image=image), target, finetune, user, spec, perceptual, PatchCritic()
    )
    terms["total"].backward()
    assert image.grad is not None
    return terms, image.grad


def test_foreground_losses_train_only_the_finetuning_mask(tiny_perceptual) -> None:
    terms, grad = run_generator(LossSpec(background=False), tiny_perceptual)
    assert set(terms) == {"l1", "structural", "perceptual", "adversarial", "total"}
    finetune, _ = masks()
    outside = grad * (1 - finetune)
    assert torch.equal(outside, torch.zeros_like(outside))
    assert (grad * finetune).abs().sum() > 0
    assert terms["total"].item() == pytest.approx(
        sum(v.item() for k, v in terms.items() if k != "total")
    )


def test_background_losses_reach_background_never_user_holes(tiny_perceptual) -> None:
    terms, grad = run_generator(LossSpec(background=True), tiny_perceptual)
    assert {"l1_background", "structural_background", "perceptual_background"} <= set(terms)
    assert "adversarial_background" in terms
    finetune, user = masks()
    background = background_mask(finetune, user)
    assert torch.equal(grad * user, torch.zeros_like(grad))
    assert (grad * background).abs().sum() > 0 and (grad * finetune).abs().sum() > 0


def test_each_loss_alone_respects_the_regions(tiny_perceptual) -> None:
    finetune, user = masks()
    zero = LossSpec(l1=0, structural=0, perceptual=0, adversarial=0)
    for name in ("l1", "structural", "perceptual", "adversarial"):
        for background in (False, True):
            spec = replace(zero, **{name: 1.0}, background=background)
            _, grad = run_generator(spec, tiny_perceptual)
            blocked = user if background else 1 - finetune
            assert torch.equal(grad * blocked, torch.zeros_like(grad)), (name, background)


def test_zero_weight_terms_are_not_computed() -> None:
    class Forbidden(PerceptualLoss):
        def compare(self, preds, target):  # type: ignore[override]
            raise AssertionError("the feature network ran with perceptual weight 0")

    forbidden = Forbidden(build_vgg_features("vgg16"), layers=("relu1_1",))
    spec = LossSpec(perceptual=0.0, adversarial=0.0, background=True)
    terms, _ = run_generator(spec, forbidden)
    assert set(terms) == {"l1", "l1_background", "structural", "structural_background", "total"}
    nothing = LossSpec(l1=0, structural=0, perceptual=0, adversarial=0)
    terms, grad = run_generator(nothing, None)
    assert set(terms) == {"total"} and terms["total"].item() == 0.0
    assert torch.equal(grad, torch.zeros_like(grad))


def test_perceptual_weight_without_network_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"losses\.perceptual=0"):
        run_generator(LossSpec(), None)


def test_no_discriminator_skips_adversarial_terms() -> None:
    finetune, user = masks()
    target = torch.rand(2, 3, SIZE, SIZE)
    spec = LossSpec(perceptual=0.0, background=True)
    terms = generator_losses(GeneratorOutput(image=target.clone()), target, finetune, user, spec)
    assert not any(k.startswith("adversarial") for k in terms)


def test_structure_term_uses_gradient_heads_when_present() -> None:
    finetune, user = masks()
    target = torch.rand(2, 3, SIZE, SIZE)
    heads = (torch.zeros(2, 6, 16, 16, requires_grad=True), torch.zeros(2, 6, 32, 32))
    spec = LossSpec(l1=0, perceptual=0, adversarial=0)
    output = GeneratorOutput(image=target.clone().requires_grad_(), gradients=heads)
    terms = generator_losses(output, target, finetune, user, spec)
    terms["total"].backward()
    assert terms["structural"].item() > 0 and heads[0].grad.abs().sum() > 0


# -- adversarial -------------------------------------------------------------------------------


def test_select_patches_thresholds() -> None:
    mask = torch.zeros(1, 1, 4, 4)
    mask[0, 0, 0:2, 2:4] = torch.tensor([[1.0, 0.0], [0.0, 0.0]])  # 25%
    mask[0, 0, 2:4, 0:2] = torch.tensor([[1.0, 1.0], [0.0, 0.0]])  # 50%
    mask[0, 0, 2:4, 2:4] = torch.tensor([[1.0, 1.0], [1.0, 0.0]])  # 75%
    above = select_patches(mask, (2, 2), "above")
    below = select_patches(mask, torch.zeros(1, 1, 2, 2), "below")
    assert above.tolist() == [[[[0.0, 0.0], [0.0, 1.0]]]]
    assert below.tolist() == [[[[1.0, 1.0], [0.0, 0.0]]]]  # exactly 50% is in neither
    with pytest.raises(ValueError):
        select_patches(mask, (2, 2), "inside")  # type: ignore[arg-type]


def test_hinge_losses_on_known_logits() -> None:
    real = torch.tensor([2.0, 0.5, -1.0, 7.0]).view(1, 1, 2, 2)
    fake = torch.tensor([-2.0, 0.0, 1.0, -9.0]).view(1, 1, 2, 2)
    keep_three = torch.tensor([1.0, 1.0, 1.0, 0.0]).view(1, 1, 2, 2)
    # real: relu(1 − x) = 0, 0.5, 2 → 2.5/3; fake: relu(1 + x) = 0, 1, 2 → 1
    d = hinge_discriminator_loss(real, fake, keep_three, keep_three)
    assert d.item() == pytest.approx(2.5 / 3 + 1.0)
    assert hinge_generator_loss(fake, keep_three).item() == pytest.approx(1.0 / 3)
    assert hinge_generator_loss(fake).item() == pytest.approx(10.0 / 4)


def test_empty_selection_gives_zero_without_nan() -> None:
    logits = torch.randn(2, 1, 4, 4, requires_grad=True)
    none = torch.zeros(2, 1, 4, 4)
    g = hinge_generator_loss(logits, none)
    d = hinge_discriminator_loss(logits, logits, none, none)
    (g + d).backward()
    assert g.item() == 0.0 and d.item() == 0.0
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() == 0


def test_discriminator_loss_selects_patches_and_detaches_the_generator() -> None:
    finetune, user = masks()
    target = torch.rand(2, 3, SIZE, SIZE)
    image = torch.rand(2, 3, SIZE, SIZE, requires_grad=True)
    critic = PatchCritic()
    for background in (False, True):
        spec = LossSpec(background=background)
        terms = discriminator_loss(
            GeneratorOutput(image=image), target, finetune, user, spec, critic
        )
        assert set(terms) == {"real", "fake", "total"}
        terms["total"].backward()
        assert image.grad is None and critic.conv.weight.grad is not None
        critic.zero_grad()
    # by hand, foreground only: real patches where U < 50%, fake where F > 50%
    spec = LossSpec(background=False)
    terms = discriminator_loss(GeneratorOutput(image=image), target, finetune, user, spec, critic)
    with torch.no_grad():
        real_logits = critic(target)
        fake_logits = critic(completed_output(image, target, finetune))
    real_sel, fake_sel = select_patches(user, (4, 4), "below"), select_patches(finetune, (4, 4))
    real = (F.relu(1 - real_logits) * real_sel).sum() / real_sel.sum()
    fake = (F.relu(1 + fake_logits) * fake_sel).sum() / fake_sel.sum()
    assert terms["real"].item() == pytest.approx(real.item(), rel=1e-5)
    assert terms["fake"].item() == pytest.approx(fake.item(), rel=1e-5)


def test_structure_edge_weights_are_computed_once_per_target(monkeypatch) -> None:
    loss = StructureLoss()
    calls = []
    original = loss.edge_weights
    monkeypatch.setattr(loss, "edge_weights", lambda image: calls.append(1) or original(image))
    target = torch.rand(2, 3, 32, 32)
    pred = torch.rand(2, 3, 32, 32)
    region = torch.zeros(2, 1, 32, 32)
    region[..., 8:20, 8:20] = 1
    first = loss(pred, target, region)
    second = loss(pred, target, 1 - region)  # background against the same target: cached
    assert len(calls) == 1
    fresh = StructureLoss()
    torch.testing.assert_close(first, fresh(pred, target, region))
    torch.testing.assert_close(second, fresh(pred, target, 1 - region))
    target.mul_(0.5)  # edited in place: recomputed
    loss(pred, target, region)
    assert len(calls) == 2
    loss(pred, target.clone(), region)  # another tensor: recomputed
    assert len(calls) == 3
