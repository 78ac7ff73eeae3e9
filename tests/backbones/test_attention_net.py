"""Tests of the reference attention backbone: sizes, freezing counts, shapes, conventions, inputs.

Kept fast: the thesis-size network is only instantiated (to count parameters), never run; forward
and backward passes use narrow variants at 64² (one 256² forward with a width-8 network).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from tttkit.backbone import check_layer_groups
from tttkit_backbones.attention_net import (
    AttentionNet,
    attention_net,
    attention_net_compact,
    attention_net_small,
    build_input,
    parameter_table,
    sobel_gradients,
    trainable_after_freezing,
)
from tttkit_backbones.attention_net import attention as attention_module
from tttkit_backbones.attention_net.attention import ContextualAttention, contextual_attention
from tttkit_backbones.attention_net.discriminator import PatchDiscriminator

DOC = Path(__file__).resolve().parents[2] / "docs" / "backbones" / "attention-net.md"
RESIDUAL = [f"generator.residual.{i}" for i in range(1, 9)]


@pytest.fixture(scope="module")
def thesis() -> AttentionNet:
    return attention_net()


def _rect_mask(batch: int, size: int, top: int, left: int, extent: int) -> torch.Tensor:
    mask = torch.zeros(batch, 1, size, size)
    mask[..., top : top + extent, left : left + extent] = 1.0
    return mask


def _frozen_trainable(net: AttentionNet, frozen: list[str]) -> int:
    """Freeze groups the way a freezing policy does (requires_grad) and count the rest."""
    groups = net.layer_groups()
    try:
        for name in frozen:
            groups[name].requires_grad_(False)
        return sum(p.numel() for p in net.parameters() if p.requires_grad)
    finally:
        net.requires_grad_(True)


# -- sizes -------------------------------------------------------------------------------------


def test_thesis_parameter_counts_match_the_thesis_exactly(thesis: AttentionNet) -> None:
    counts = thesis.parameter_counts()
    assert counts == {"generator": 15_085_088, "discriminator": 2_764_737, "total": 17_849_825}
    disc = [sum(p.numel() for p in layer.parameters()) for layer in thesis.discriminator.layers]
    assert disc == [3136, 131200, 524544, 2097664, 8193]


def test_thesis_freezing_counts(thesis: AttentionNet) -> None:
    freeze_early = ["generator.encoder", *RESIDUAL, "discriminator.conv1", "discriminator.conv2"]
    combination_c = ["generator.encoder", *RESIDUAL[:4]] + [
        f"discriminator.conv{i}" for i in (1, 2, 3)
    ]
    assert _frozen_trainable(thesis, freeze_early) == 7_574_817
    assert _frozen_trainable(thesis, combination_c) == 11_775_009
    assert trainable_after_freezing(thesis, freeze_early) == 7_574_817
    assert trainable_after_freezing(thesis, combination_c) == 11_775_009


def test_group_sizes_derived_from_the_thesis(thesis: AttentionNet) -> None:
    sizes = {
        name: sum(p.numel() for p in m.parameters()) for name, m in thesis.layer_groups().items()
    }
    assert sizes["generator.encoder"] == 691_200
    assert all(sizes[name] == 1_181_184 for name in RESIDUAL)
    decoder = sum(v for k, v in sizes.items() if k.startswith("generator.decoder."))
    assert decoder == 4_944_416


def test_yang_auxiliary_heads_add_exactly_3912() -> None:
    # Yang et al.'s TF graph (≈15,089,000 generator parameters per DESIGN.md).
    with_heads = attention_net(aux_heads=True, discriminator=False)
    assert with_heads.parameter_counts()["generator"] == 15_089_000


def test_small_variant_count() -> None:
    net = attention_net_small()
    counts = net.parameter_counts()
    assert counts["total"] == 2_022_192
    assert counts == {"generator": 1_885_807, "discriminator": 136_385, "total": 2_022_192}
    assert net.conventions.pad_multiple == 8


def test_compact_variant_count() -> None:
    net = attention_net_compact()
    assert net.config["width"] == 32 and net.config["prefill"] == "smooth"
    # Residual RGB heads carry no instance norm: 3 heads × 6 parameters fewer than with tanh heads
    assert net.parameter_counts() == {
        "generator": 3_786_508,
        "discriminator": 694_241,
        "total": 4_480_749,
    }
    assert attention_net_compact(prefill="zeros").parameter_counts()["total"] == 4_480_767


# -- structure ---------------------------------------------------------------------------------


def test_layer_groups_cover_every_parameter_once(thesis: AttentionNet) -> None:
    check_layer_groups(thesis)
    names = list(thesis.layer_groups())
    expected = (
        ["generator.encoder", *RESIDUAL]
        + [f"generator.decoder.{i}" for i in (1, 2, 3)]
        + [f"discriminator.conv{i}" for i in range(1, 6)]
    )
    assert names == expected
    for net in (
        attention_net_small(),
        attention_net_compact(width=16, attention="contextual"),
        attention_net_compact(width=16, discriminator=False),
    ):
        check_layer_groups(net)


@pytest.mark.parametrize(
    "factory",
    [
        attention_net,
        attention_net_small,
        lambda: attention_net_compact(width=16, attention="contextual", head_norm=False),
    ],
)
def test_config_recreates_the_architecture(factory: Callable[[], AttentionNet]) -> None:
    net = factory()
    config = json.loads(json.dumps(net.config))  # must survive a JSON round trip
    twin = AttentionNet(**config)
    assert twin.config == net.config
    assert twin.conventions == net.conventions
    shapes = {k: v.shape for k, v in net.state_dict().items()}
    assert {k: v.shape for k, v in twin.state_dict().items()} == shapes
    twin.load_state_dict(net.state_dict())


def test_conventions(thesis: AttentionNet) -> None:
    assert thesis.conventions.value_range == (-1.0, 1.0)
    assert thesis.conventions.hole_value == 1
    assert thesis.conventions.pad_multiple == 16
    assert thesis.conventions.working_size == 256


def test_rejects_unknown_attention() -> None:
    with pytest.raises(ValueError, match="contextual"):
        AttentionNet(width=16, attention="nonlocal")


# -- forward passes ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("factory", "size", "pyramid", "logits"),
    [
        (lambda: attention_net_compact(width=16), 64, [16, 32], 8),
        (lambda: attention_net(width=16), 64, [], 8),
        (lambda: attention_net_small(width=16), 64, [], 16),
        (lambda: attention_net_compact(width=16, attention="contextual"), 64, [16, 32], 8),
    ],
    ids=["compact", "thesis-layout", "small", "contextual"],
)
def test_shapes_and_ranges(
    factory: Callable[[], AttentionNet], size: int, pyramid: list[int], logits: int
) -> None:
    torch.manual_seed(0)
    net = factory()
    image = torch.rand(2, 3, size, size)
    mask = _rect_mask(2, size, 16, 20, 24)
    with torch.no_grad():
        native = net.native_generate(image * 2 - 1, mask)
        out = net.generate(image, mask)
        scores = net.discriminate(out.image)
    assert native.image.shape == (2, 3, size, size)
    assert native.image.abs().max() <= 1.0
    assert out.image.shape == (2, 3, size, size)
    assert out.image.min() >= 0.0 and out.image.max() <= 1.0
    assert [p.shape[-1] for p in out.pyramid] == pyramid
    assert all(p.shape[:2] == (2, 3) and p.min() >= 0 and p.max() <= 1 for p in out.pyramid)
    grads = [g.shape[-1] for g in out.gradients]
    assert grads == ([*pyramid, size] if pyramid else [])
    assert all(g.shape[:2] == (2, 6) for g in out.gradients)
    assert scores.shape == (2, 1, logits, logits)


def test_full_size_output_and_patch_logits_at_256() -> None:
    net = attention_net(width=8)
    with torch.no_grad():
        out = net.generate(torch.rand(1, 3, 256, 256), _rect_mask(1, 256, 60, 90, 80))
    assert out.image.shape == (1, 3, 256, 256)
    assert PatchDiscriminator(width=4)(torch.zeros(2, 3, 256, 256)).shape == (2, 1, 32, 32)
    small_d = PatchDiscriminator(width=4, hidden_layers=2)
    assert small_d(torch.zeros(1, 3, 256, 256)).shape == (1, 1, 64, 64)


@pytest.mark.parametrize("size", [(50, 70), (64, 33)])
def test_generate_keeps_sizes_that_are_not_multiples(size: tuple[int, int]) -> None:
    net = attention_net_compact(width=16)
    height, width = size
    assert height % net.conventions.pad_multiple or width % net.conventions.pad_multiple
    image = torch.rand(1, 3, height, width)
    mask = torch.zeros(1, 1, height, width)
    mask[..., 10:30, 5:25] = 1
    with torch.no_grad():
        out = net.generate(image, mask)
    assert out.image.shape == (1, 3, height, width)
    assert out.image.min() >= 0.0 and out.image.max() <= 1.0


@pytest.mark.parametrize("attention", ["self", "contextual"])
def test_forward_backward_reaches_every_parameter(attention: str) -> None:
    torch.manual_seed(0)
    net = attention_net_compact(width=16, attention=attention)
    image = torch.rand(2, 3, 64, 64)
    mask = _rect_mask(2, 64, 8, 30, 20)
    out = net.generate(image, mask)
    loss = (out.image - image).abs().mean()
    loss = loss + sum(p.mean() for p in out.pyramid) + sum(g.abs().mean() for g in out.gradients)
    loss = loss - net.discriminate(out.image).mean()
    loss.backward()
    for name, param in net.named_parameters():
        assert param.grad is not None, name
        assert torch.isfinite(param.grad).all(), name
    gammas = [m.gamma.grad for m in net.modules() if hasattr(m, "gamma")]
    assert len(gammas) == 3 and all(g.abs().sum() > 0 for g in gammas)


def test_output_ignores_hole_content() -> None:
    # The input is built from the known pixels only, so whatever filler the caller put into the
    # holes cannot change the prediction.
    torch.manual_seed(0)
    net = attention_net_compact(width=16).eval()
    image = torch.rand(1, 3, 64, 64)
    mask = _rect_mask(1, 64, 20, 20, 24)
    other = torch.where(mask.bool(), torch.rand_like(image), image)
    with torch.no_grad():
        first, second = net.generate(image, mask), net.generate(other, mask)
    torch.testing.assert_close(first.image, second.image, rtol=0, atol=0)


def test_smooth_prefill_network_starts_as_the_membrane_fill() -> None:
    from tttkit.imageops import smooth_fill

    torch.manual_seed(0)
    net = attention_net_compact(width=16, prefill="smooth").eval()
    image = torch.rand(1, 3, 64, 64)
    mask = _rect_mask(1, 64, 20, 20, 24)
    with torch.no_grad():
        out = net.generate(image, mask)
    # Zero-initialised residual heads: the untrained network returns the fill, at every scale.
    torch.testing.assert_close(out.image, smooth_fill(image, mask), atol=1e-6, rtol=0)
    assert len(out.pyramid) == 2
    other = torch.where(mask.bool(), torch.rand_like(image), image)
    with torch.no_grad():
        assert torch.equal(net.generate(other, mask).image, out.image)


def test_smooth_prefill_trains_its_residual_heads() -> None:
    torch.manual_seed(0)
    net = attention_net_compact(width=16, prefill="smooth")
    image = torch.rand(2, 3, 64, 64)
    mask = _rect_mask(2, 64, 8, 30, 20)
    optimizer = torch.optim.Adam(net.generator.parameters(), lr=1e-3)
    losses = []
    for _ in range(2):
        optimizer.zero_grad()
        out = net.generate(image, mask).image
        loss = ((out - image).abs() * mask).mean()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    head = net.generator.decoder[-1].rgb
    assert head is not None and head.block.conv.weight.abs().sum() > 0
    assert losses[1] < losses[0]


def test_rejects_unknown_prefill() -> None:
    with pytest.raises(ValueError, match="prefill"):
        attention_net_compact(width=8, prefill="telea")


# -- contextual attention ----------------------------------------------------------------------


def test_contextual_attention_never_reads_hole_content() -> None:
    torch.manual_seed(0)
    # Small features keep the softmax soft (a large norm makes every patch match only itself,
    # and then even an unmasked attention would ignore the hole).
    features = 0.1 * torch.randn(2, 8, 24, 24)
    holes = torch.zeros(2, 1, 24, 24)
    holes[..., 8:14, 6:16] = 1
    perturbed = features + 5 * torch.randn_like(features) * holes
    # An output pixel gets the pastes of queries whose half-resolution 3×3 patches span ±4 px.
    far = F.max_pool2d(holes, 9, 1, 4) == 0
    base = contextual_attention(features, holes)
    moved = contextual_attention(perturbed, holes)
    assert base.shape == features.shape
    assert torch.allclose(base * far, moved * far, atol=1e-5)
    assert not torch.allclose(base, moved, atol=1e-3)  # inside/near the hole it does change
    # Falsifiable: if the holes were not excluded, the far pixels would change too.
    blind = contextual_attention(features, torch.zeros_like(holes))
    blind_moved = contextual_attention(perturbed, torch.zeros_like(holes))
    assert not torch.allclose(blind * far, blind_moved * far, atol=1e-3)


def test_contextual_attention_copies_the_best_matching_known_patch() -> None:
    # With a sharp softmax, every known query matches its own patch (Cauchy–Schwarz), so the
    # pasted raw patches reproduce the input away from holes and the image border.
    torch.manual_seed(0)
    features = torch.randn(1, 16, 24, 24)
    holes = torch.zeros(1, 1, 24, 24)
    holes[..., 10:14, 10:14] = 1
    out = contextual_attention(features, holes, softmax_scale=1e4)
    inner = F.max_pool2d(holes, 9, 1, 4) == 0
    inner[..., :1, :] = inner[..., -1:, :] = inner[..., :, :1] = inner[..., :, -1:] = False
    assert inner.sum() > 100
    torch.testing.assert_close(out * inner, features * inner, atol=1e-3, rtol=0)


def test_contextual_attention_odd_sizes_and_all_holes() -> None:
    features = torch.randn(2, 4, 15, 17)
    holes = torch.zeros(2, 1, 15, 17)
    holes[1] = 1  # no known patch at all: falls back to attending everywhere, no NaN
    out = contextual_attention(features, holes)
    assert out.shape == features.shape
    assert torch.isfinite(out).all()


def test_contextual_attention_flash_padding_is_exact(monkeypatch: pytest.MonkeyPatch) -> None:
    # Large inputs zero-pad queries/keys so SDPA can use its flash kernel; scores must not change.
    torch.manual_seed(0)
    features = torch.randn(2, 4, 16, 16)
    holes = _rect_mask(2, 16, 4, 4, 5)
    reference = contextual_attention(features, holes)
    monkeypatch.setattr(attention_module, "_FLASH_MIN_LOGITS", 0)
    torch.testing.assert_close(contextual_attention(features, holes), reference)


def test_contextual_layer_starts_as_identity_and_needs_the_mask() -> None:
    # (Hole content does reach the layer's output through its instance norms' statistics; the
    # network as a whole is protected by building its input from known pixels only.)
    layer = ContextualAttention(16)
    x = torch.randn(1, 16, 16, 16)
    mask = _rect_mask(1, 16, 4, 4, 6)
    torch.testing.assert_close(layer(x, mask), x)
    with pytest.raises(ValueError, match="mask"):
        layer(x)


# -- inputs ------------------------------------------------------------------------------------


def test_input_builder_channels_and_hole_values() -> None:
    torch.manual_seed(0)
    image = torch.rand(2, 3, 48, 48) * 2 - 1
    mask = _rect_mask(2, 48, 10, 12, 16)
    x = build_input(image, mask)
    holes = mask.bool().expand(-1, 3, -1, -1)
    assert x.shape == (2, 11, 48, 48)
    assert (x[:, 0:3][holes] == 0).all()
    torch.testing.assert_close(x[:, 0:3][~holes], image[~holes])
    assert (x[:, 3:4][mask.bool()] == 1).all()
    assert set(x[:, 3].unique().tolist()) <= {0.0, 1.0}
    torch.testing.assert_close(x[:, 4:5], mask)
    assert (x[:, 5:11][mask.bool().expand(-1, 6, -1, -1)] == 0).all()
    assert x[:, 5:11].abs().sum() > 0


def test_edge_map_marks_edges_with_zero() -> None:
    image = -torch.ones(1, 3, 40, 40)
    image[..., 20:] = 1.0  # a vertical step between columns 19 and 20
    x = build_input(image, torch.zeros(1, 1, 40, 40))
    edge_map = x[0, 3]
    assert (edge_map[5:35, 19:21] == 0).any(dim=1).all()  # an edge pixel on every inner row
    assert (edge_map[:, :14] == 1).all() and (edge_map[:, 26:] == 1).all()


def test_input_builder_ignores_hole_content() -> None:
    torch.manual_seed(0)
    image = torch.rand(1, 3, 32, 32) * 2 - 1
    mask = _rect_mask(1, 32, 8, 8, 12)
    other = torch.where(mask.bool(), torch.rand_like(image), image)
    torch.testing.assert_close(build_input(image, mask), build_input(other, mask), rtol=0, atol=0)


def test_sobel_gradients_order_and_units() -> None:
    ramp_x = torch.arange(8.0).view(1, 1, 1, 8).expand(1, 3, 8, 8)
    grads = sobel_gradients(ramp_x)
    assert grads.shape == (1, 6, 8, 8)
    torch.testing.assert_close(grads[:, 0::2, 2:-2, 2:-2], torch.zeros(1, 3, 4, 4))  # d/dy
    torch.testing.assert_close(grads[:, 1::2, 2:-2, 2:-2], torch.full((1, 3, 4, 4), 8.0))  # d/dx
    ramp_y = ramp_x.transpose(-1, -2)
    torch.testing.assert_close(sobel_gradients(ramp_y)[:, 0, 3, 3], torch.tensor([8.0]))


# -- docs --------------------------------------------------------------------------------------


def test_documented_parameter_table_is_current(thesis: AttentionNet) -> None:
    assert parameter_table(thesis) in DOC.read_text(encoding="utf-8")
