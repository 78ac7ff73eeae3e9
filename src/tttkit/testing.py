"""Checks for plugin authors: call them in a plugin's own tests.

Each check builds the component from its registered factory, exercises the contract the engine
relies on, and raises ``AssertionError`` with a message naming what is wrong. tttkit's own test
suite runs the same checks over every registered name, as timm's tests run over
``list_models()``::

    from tttkit.testing import check_augmentation, check_backbone, check_finetune_mask

    def test_my_backbone(tmp_path):
        check_backbone(my_factory, {"width": 8}, name="my-net", folder=tmp_path)

    def test_my_augmentation():
        check_augmentation(MyWarp, {"degrees": 10})

    def test_my_finetune_mask():
        check_finetune_mask(MyBoxes, {"alpha": 0.1, "beta": 0.3})

    def test_my_filler():
        check_filler(MyFiller)

    def test_my_freezing_policy():  # a ParameterAdapter (LoRA-like) is checked further
        check_freezing_policy(FreezeMyEncoder, backbone=my_factory(width=8))

A whole strategy is checked by :func:`tttkit.check_strategy` (every component registered and
accepting its parameters), which raises :class:`tttkit.errors.SpecError`.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from tttkit.backbone import OUTPUT_HEAD, Backbone, check_layer_groups
from tttkit.components import FillContext, MaskSamplingError, ParameterAdapter, View
from tttkit.engine.contracts import MIN_AGREEMENT, binary, mask_agreement, pattern_view
from tttkit.imageops import dilate

__all__ = [
    "check_augmentation",
    "check_backbone",
    "check_filler",
    "check_finetune_mask",
    "check_freezing_policy",
]


def _same_state(a: torch.nn.Module, b: torch.nn.Module, what: str) -> None:
    left, right = a.state_dict(), b.state_dict()
    assert left.keys() == right.keys(), f"{what}: the state dict keys differ"
    for key in left:
        assert torch.equal(left[key], right[key]), f"{what}: {key} differs"


def check_backbone(
    factory: Callable[..., Backbone],
    config: Mapping[str, Any] | None = None,
    *,
    name: str | None = None,
    folder: str | Path | None = None,
    size: int = 64,
) -> Backbone:
    """Check a backbone factory against the engine's contract; return the built backbone.

    Checked: it builds a :class:`~tttkit.backbone.Backbone`; its ``config`` is JSON and rebuilds
    the same network; its conventions are sane; its layer groups cover every parameter once; it
    survives ``copy.deepcopy`` (the engine finetunes a copy); with ``name`` and ``folder``, a
    checkpoint written by :func:`tttkit.checkpoint.save_backbone` loads back exactly;
    ``generate`` fills a ``size``² image with an output of the input's shape, finite and in
    ``[0, 1]``, whatever the hole.

    Args:
        factory: the registered factory.
        config: its keyword options (keep the network small: tests run on a CPU).
        name: the backbone's registered name, for the checkpoint round trip.
        folder: where the checkpoint may be written (e.g. pytest's ``tmp_path``).
        size: the test image's side; a multiple of the backbone's ``pad_multiple`` is not needed.
    """
    from tttkit.checkpoint import load_weights, save_backbone

    torch.manual_seed(0)
    net = factory(**dict(config or {}))
    assert isinstance(net, Backbone), f"the factory returned {type(net).__name__}, not a Backbone"
    stored = json.loads(json.dumps(net.config))  # must be JSON: checkpoints carry it
    rebuilt = factory(**stored)
    assert rebuilt.config == net.config, "factory(**backbone.config) builds another configuration"
    shapes = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    assert shapes == {k: tuple(v.shape) for k, v in rebuilt.state_dict().items()}, (
        "factory(**backbone.config) builds a network of other shapes"
    )
    conventions = net.conventions
    low, high = conventions.value_range
    assert low < high and conventions.hole_value in (0, 1), f"odd conventions {conventions}"
    assert conventions.pad_multiple >= 1 and conventions.working_size >= 1, str(conventions)
    check_layer_groups(net)
    _same_state(copy.deepcopy(net), net, "copy.deepcopy")
    if name is not None and folder is not None:
        path = Path(folder) / f"{name}.safetensors"
        save_backbone(net, name, path)
        load_weights(rebuilt, path, name)
        _same_state(rebuilt, net, f"checkpoint round trip of {name!r}")
    _check_generate(net, size)
    return net


def _check_generate(net: Backbone, size: int) -> None:
    generator = torch.Generator().manual_seed(0)
    image = torch.rand(2, 3, size, size + 3, generator=generator)  # an odd width on purpose
    mask = torch.zeros(2, 1, size, size + 3)
    mask[0, :, size // 4 : size // 2, size // 4 : size // 2] = 1
    mask[1, :, : size // 2] = 1
    net.eval()
    with torch.no_grad():
        out = net.generate(image, mask)
    assert out.image.shape == image.shape, (
        f"generate() returned shape {tuple(out.image.shape)} for input {tuple(image.shape)}"
    )
    assert bool(torch.isfinite(out.image).all()), "generate() returned non-finite values"
    low, high = float(out.image.min()), float(out.image.max())
    assert low >= -1e-4 and high <= 1 + 1e-4, f"generate() left [0, 1]: {low:.3f}…{high:.3f}"


def _binary(mask: Tensor) -> bool:
    return binary(mask)


def _pattern_view(size: int) -> View:
    """A view whose image encodes the user mask in its red channel and the finetuning mask in
    its green, so that a geometric augmentation that moves the image without the masks (or the
    other way round) shows — the probe the engine runs on each geometric augmentation's first
    use in a run (:mod:`tttkit.engine.contracts`)."""
    user = torch.zeros(1, 1, size, size)
    user[:, :, size // 4 : size // 2, size // 3 : size // 3 + size // 4] = 1
    finetune = torch.zeros(1, 1, size, size)
    finetune[:, :, size // 2 + 2 : size - 4, 4 : size // 2] = 1
    generator = torch.Generator().manual_seed(1)
    image = torch.rand(1, 3, size, size, generator=generator) * 0.2 + 0.4
    view = View(image=image, user_mask=user, finetune_mask=finetune, empty=torch.zeros_like(user))
    return pattern_view(view)


def check_augmentation(
    factory: Callable[..., Any],
    params: Mapping[str, Any] | None = None,
    *,
    size: int = 48,
    trials: int = 12,
) -> None:
    """Check an augmentation factory against the engine's contract.

    Checked over ``trials`` seeds: the result is ``None`` or a view of the same shapes; masks
    stay binary; the image stays finite in ``[0, 1]``; a non-geometric augmentation leaves the
    masks alone; a geometric one moves the user and finetuning masks with the image (checked on
    pixels it did not leave empty, with nearest sampling for masks) and marks the pixels it
    left empty. The engine runs the same probe on each geometric augmentation's first use in a
    run.
    """
    augmentation = factory(**dict(params or {}))
    geometric = getattr(augmentation, "geometric", None)
    assert isinstance(geometric, bool), "an augmentation must say whether it is `geometric`"
    view = _pattern_view(size)
    for seed in range(trials):
        out = augmentation(view, torch.Generator().manual_seed(seed))
        if out is None:
            continue
        assert out.image.shape == view.image.shape, f"seed {seed}: the image changed shape"
        for field in ("user_mask", "finetune_mask", "empty"):
            mask = getattr(out, field)
            assert mask is not None and mask.shape == view.user_mask.shape, (
                f"seed {seed}: {field} is missing or changed shape"
            )
            assert _binary(mask), f"seed {seed}: {field} is no longer binary"
        assert bool(torch.isfinite(out.image).all()), f"seed {seed}: non-finite pixels"
        assert float(out.image.min()) >= -1e-4 and float(out.image.max()) <= 1 + 1e-4, (
            f"seed {seed}: the image left [0, 1]"
        )
        if not geometric:
            assert torch.equal(out.user_mask, view.user_mask), f"seed {seed}: masks moved"
            assert torch.equal(out.finetune_mask, view.finetune_mask), f"seed {seed}: masks moved"
            continue
        _check_moved_together(out, seed)


def _check_moved_together(out: View, seed: int) -> None:
    """Where the view has content, the masks drawn into the image (red: user mask, green:
    finetuning mask) must agree with the moved masks, away from edges that interpolation may
    soften (:func:`tttkit.engine.contracts.mask_agreement`)."""
    agreement = mask_agreement(out)
    if agreement is None:
        return
    label, share = agreement
    assert share >= MIN_AGREEMENT, (
        f"seed {seed}: the {label} did not move with the image ({share:.0%} agree)"
    )


def check_finetune_mask(
    factory: Callable[..., Any],
    params: Mapping[str, Any] | None = None,
    *,
    size: int = 64,
    batch: int = 4,
    trials: int = 6,
    margin: int = 3,
) -> None:
    """Check a finetuning-mask factory against the engine's contract.

    Checked over ``trials`` seeds: masks of shape ``(B, 1, H, W)``, binary, never touching the
    forbidden pixels (the user's hole dilated by ``margin``); when the strategy has ``alpha``
    and ``beta`` attributes, each mask's share of the image lies in ``[alpha, beta]``. A
    :class:`~tttkit.components.MaskSamplingError` is an acceptable answer; any other error is
    not.
    """
    strategy = factory(**dict(params or {}))
    user = torch.zeros(batch, 1, size, size)
    user[:, :, size // 3 : size // 2, size // 3 : size // 2] = 1
    forbidden = dilate(user, margin)
    bounds = (getattr(strategy, "alpha", None), getattr(strategy, "beta", None))
    for seed in range(trials):
        try:
            masks = strategy(user, forbidden, torch.Generator().manual_seed(seed))
        except MaskSamplingError:
            continue
        assert masks.shape == user.shape, f"seed {seed}: masks of shape {tuple(masks.shape)}"
        assert _binary(masks), f"seed {seed}: masks are not binary"
        assert not bool((masks * forbidden).any()), (
            f"seed {seed}: a finetuning mask covers the dilated user hole"
        )
        if all(isinstance(b, (int, float)) for b in bounds):
            low, high = bounds
            for share in masks.flatten(1).mean(dim=1).tolist():
                assert low - 1e-6 <= share <= high + 1e-6, (
                    f"seed {seed}: a mask covers {share:.1%}, outside [{low:.0%}, {high:.0%}]"
                )


def check_filler(
    factory: Callable[..., Any],
    params: Mapping[str, Any] | None = None,
    *,
    size: int = 64,
    batch: int = 2,
    trials: int = 3,
) -> None:
    """Check a filler factory against the engine's contract (the checks the engine also runs
    on each step, :mod:`tttkit.engine.contracts`, and more).

    Checked over ``trials`` seeds, with a ``context.predict`` that returns grey (what a coarse
    filler asks of the network): the filler returns a floating tensor of the images' shape,
    finite and in ``[0, 1]``; pixels outside the user's holes are the input's own; the input is
    not changed in place (the engine reuses it).
    """
    filler = factory(**dict(params or {}))
    user = torch.zeros(batch, 1, size, size)
    user[:, :, size // 4 : size // 2, size // 3 : size // 3 + size // 4] = 1
    user[-1, :, -size // 4 :, : size // 4] = 1

    def predict(image: Tensor, mask: Tensor) -> Tensor:
        return torch.full_like(image, 0.5)

    for seed in range(trials):
        generator = torch.Generator().manual_seed(seed)
        images = torch.rand(batch, 3, size, size, generator=generator)
        given = images.clone()
        out = filler(images, user, FillContext(torch.Generator().manual_seed(seed), predict))
        assert torch.equal(images, given), f"seed {seed}: the filler changed its input in place"
        assert isinstance(out, Tensor), f"seed {seed}: the filler returned {type(out).__name__}"
        assert out.shape == images.shape, (
            f"seed {seed}: the filler returned shape {tuple(out.shape)} for images of shape "
            f"{tuple(images.shape)}"
        )
        assert out.is_floating_point(), f"seed {seed}: the filler returned dtype {out.dtype}"
        assert bool(torch.isfinite(out).all()), (
            f"seed {seed}: the filler returned non-finite values"
        )
        low, high = float(out.min()), float(out.max())
        assert low >= 0.0 and high <= 1.0, (
            f"seed {seed}: the filler returned values in [{low:.3g}, {high:.3g}], not [0, 1]"
        )
        known = (user < 0.5).expand_as(images)
        assert torch.equal(out[known], images[known]), (
            f"seed {seed}: the filler changed pixels outside the user's holes"
        )


def _tiny_backbone() -> Backbone:
    """tttkit's default network at its smallest: fast enough for a plugin's tests on a CPU
    (found by name: the core imports no built-in plugin)."""
    from tttkit.api import DEFAULT_BACKBONE
    from tttkit.plugins import get_host

    torch.manual_seed(0)
    factory = get_host().registry("backbones").get(DEFAULT_BACKBONE)
    return factory(width=8, residual_blocks=2)


def check_freezing_policy(
    factory: Callable[..., Any],
    params: Mapping[str, Any] | None = None,
    *,
    backbone: Backbone | None = None,
    size: int = 32,
) -> set[str]:
    """Check a freezing policy factory against the engine's contract on ``backbone`` (by
    default tttkit's default network at its smallest); return the groups it freezes.

    Checked: the policy returns a set of names, each a layer group of the backbone, the same
    on a second call, without changing the groups itself (the engine freezes them); something
    of the generator is left to train. A :class:`~tttkit.components.ParameterAdapter` is also
    taken through what the engine does with it: ``prepare`` on a copy with the frozen groups
    frozen leaves some generator parameter trainable and the copy still fills finite values;
    after one training step, ``finalize`` gives back the backbone's own structure (same state
    dict keys and shapes, beside an :data:`~tttkit.backbone.OUTPUT_HEAD` it attached), and
    without training, ``prepare`` then ``finalize`` changes no weight and no fill (what it adds
    starts as no change).
    """
    policy = factory(**dict(params or {}))
    net = backbone if backbone is not None else _tiny_backbone()
    groups = net.layer_groups()
    before = {n: p.requires_grad for n, p in net.named_parameters()}
    frozen = policy(groups)
    assert isinstance(frozen, (set, frozenset, list, tuple)) and all(
        isinstance(name, str) for name in frozen
    ), f"the policy returned {frozen!r}: a freezing policy returns a set of layer-group names"
    unknown = sorted(set(frozen) - set(groups))
    assert not unknown, (
        f"the policy froze {unknown}: no such layer group (the groups: {', '.join(groups)})"
    )
    assert set(policy(net.layer_groups())) == set(frozen), "a second call froze other groups"
    after = {n: p.requires_grad for n, p in net.named_parameters()}
    assert after == before, "the policy changed requires_grad itself: return the names instead"
    if isinstance(policy, ParameterAdapter):
        _check_adapter(policy, net, set(frozen), size)
    else:
        left = [n for n in groups if n.startswith("generator") and n not in set(frozen)]
        assert left, "the policy freezes every generator group: nothing would train"
    return set(frozen)


def _trainable_copy(net: Backbone, frozen: set[str]) -> tuple[Backbone, dict[str, Any]]:
    copied = copy.deepcopy(net)
    groups = copied.layer_groups()
    for name in frozen:
        groups[name].requires_grad_(False)
    return copied, groups


def _own_shapes(net: Backbone) -> dict[str, tuple[int, ...]]:
    """State-dict shapes, without an attached :data:`~tttkit.backbone.OUTPUT_HEAD` (a structure
    on top that cannot be folded in, and stays)."""
    head = f"generator.{OUTPUT_HEAD}."
    return {k: tuple(v.shape) for k, v in net.state_dict().items() if not k.startswith(head)}


def _check_adapter(policy: ParameterAdapter, net: Backbone, frozen: set[str], size: int) -> None:
    """What the engine does with a :class:`~tttkit.components.ParameterAdapter`."""
    shapes = _own_shapes(net)
    image = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0))
    mask = torch.zeros(1, 1, size, size)
    mask[:, :, size // 4 : size // 2, size // 4 : size // 2] = 1
    untouched, groups = _trainable_copy(net, frozen)
    policy.prepare(untouched, groups)
    policy.finalize(untouched)
    assert _own_shapes(untouched) == shapes, (
        "prepare then finalize did not give back the backbone's own structure"
    )
    for key, value in net.state_dict().items():
        assert torch.allclose(untouched.state_dict()[key], value, atol=1e-6), (
            f"prepare then finalize, without training, changed {key}: what prepare adds must "
            "start as no change"
        )
    if hasattr(untouched.generator, OUTPUT_HEAD):
        with torch.no_grad():
            same = torch.allclose(
                untouched.eval().generate(image, mask).image,
                copy.deepcopy(net).eval().generate(image, mask).image,
                atol=1e-6,
            )
        assert same, "the output head, untrained, changes the fill: it must start as no change"
    trained, groups = _trainable_copy(net, frozen)
    policy.prepare(trained, groups)
    params = [p for p in trained.generator.parameters() if p.requires_grad]
    assert params, "after prepare nothing of the generator is left to train"
    fill = trained.generate(image, mask).image
    assert bool(torch.isfinite(fill).all()), "after prepare the network fills non-finite values"
    optimizer = torch.optim.SGD(params, lr=1e-2)
    fill.mean().backward()
    optimizer.step()
    policy.finalize(trained)
    assert _own_shapes(trained) == shapes, (
        "after a training step, finalize did not give back the backbone's own structure"
    )
