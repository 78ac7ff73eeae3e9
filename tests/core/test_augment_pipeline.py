"""Semantics of the augmentation-pipeline executor (tttkit.engine.augment), with cheap fake ops."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import pytest
import torch

from tttkit.components import Augmentation, View
from tttkit.config import AugmentSpec, AugmentStep, Component
from tttkit.engine.augment import AugmentPipeline

H = W = 8


class Mark:
    """Intensity fake: adds ``amount`` to the image (so the application order is visible)."""

    geometric = False

    def __init__(self, amount: float = 0.0) -> None:
        self.amount = amount

    def __call__(self, view: View, generator: torch.Generator) -> View:
        return view.with_(image=view.image + self.amount)


class Refuse:
    """Never finds an acceptable sample."""

    geometric = True

    def __call__(self, view: View, generator: torch.Generator) -> View | None:
        return None


class Vacate:
    """Geometric fake: empties the left ``width`` columns (image left as 0.5 there)."""

    geometric = True

    def __init__(self, width: int = 3) -> None:
        self.width = width

    def __call__(self, view: View, generator: torch.Generator) -> View:
        empty = view.empty.clone()
        empty[..., : self.width] = 1
        image = view.image.clone()
        image[..., : self.width] = 0.5
        return view.with_(image=image, empty=empty, user_mask=view.user_mask * (1 - empty))


class Counting:
    """A factory that counts how often it is instantiated."""

    calls = 0

    def __new__(cls, amount: float = 0.0) -> Mark:  # type: ignore[misc]
        Counting.calls += 1
        return Mark(amount)


FACTORIES: dict[str, Callable[..., Augmentation]] = {
    "a": Mark,
    "b": Mark,
    "c": Mark,
    "refuse": Refuse,
    "vacate": Vacate,
    "counting": Counting,
}


def resolve(name: str) -> Callable[..., Augmentation]:
    return FACTORIES[name]


def view() -> View:
    return View(
        image=torch.full((1, 3, H, W), 0.25),
        user_mask=torch.zeros(1, 1, H, W),
        finetune_mask=torch.zeros(1, 1, H, W),
        empty=torch.zeros(1, 1, H, W),
    )


def step(
    *names: str, p: float = 1.0, then_other_p: float = 0.0, unless: tuple[str, ...] = ()
) -> AugmentStep:
    return AugmentStep(
        ops=tuple(Component(n) for n in names), p=p, then_other_p=then_other_p, unless=unless
    )


def draws(spec: AugmentSpec, n: int, seed: int = 0) -> list[tuple[str, ...]]:
    pipeline, g, v = AugmentPipeline(spec, resolve), torch.Generator().manual_seed(seed), view()
    return [pipeline(v, g)[1] for _ in range(n)]


def test_p_zero_never_augments() -> None:
    spec = AugmentSpec(p=0.0, steps=(step("a"), step("b", "c")))
    assert all(names == () for names in draws(spec, 300))


def test_p_one_with_certain_steps_applies_all_in_order() -> None:
    spec = AugmentSpec(steps=(step("a"), step("b"), step("c")))
    assert set(draws(spec, 50)) == {("a", "b", "c")}


def test_step_frequency_matches_p() -> None:
    spec = AugmentSpec(steps=(step("a", p=0.3),))
    n = 2000
    rate = sum(names == ("a",) for names in draws(spec, n, seed=1)) / n
    assert abs(rate - 0.3) < 0.035  # 3.4 standard deviations


def test_pipeline_probability_gates_all_steps() -> None:
    spec = AugmentSpec(p=0.6, steps=(step("a"), step("b", p=0.5)))
    results = draws(spec, 2000, seed=2)
    counts = Counter(results)
    assert set(counts) <= {(), ("a",), ("a", "b")}
    assert abs((counts[("a",)] + counts[("a", "b")]) / 2000 - 0.6) < 0.04
    assert abs(counts[("a", "b")] / 2000 - 0.3) < 0.04


def test_one_of_never_applies_two_when_then_other_p_is_zero() -> None:
    spec = AugmentSpec(steps=(step("a", "b", "c"),))
    counts = Counter(draws(spec, 1500, seed=3))
    assert set(counts) == {("a",), ("b",), ("c",)}
    assert all(abs(c / 1500 - 1 / 3) < 0.05 for c in counts.values())


def test_then_other_p_follows_the_chosen_alternative() -> None:
    spec = AugmentSpec(steps=(step("a", "b", then_other_p=0.4),))
    results = draws(spec, 2000, seed=4)
    assert all(r[0] in ("a", "b") and len(r) in (1, 2) and len(set(r)) == len(r) for r in results)
    both = sum(len(r) == 2 for r in results) / 2000
    assert abs(both - 0.4) < 0.04
    first = Counter(r[0] for r in results)
    assert abs(first["a"] / 2000 - 0.5) < 0.04  # the chosen one comes first, uniformly
    always = AugmentSpec(steps=(step("a", "b", then_other_p=1.0),))
    assert set(draws(always, 100)) == {("a", "b"), ("b", "a")}


def test_unless_skips_a_step_after_a_named_augmentation() -> None:
    spec = AugmentSpec(steps=(step("a", p=0.4), step("b", p=1.0, unless=("a",))))
    results = draws(spec, 500, seed=5)
    assert set(results) == {("a",), ("b",)}
    never = AugmentSpec(steps=(step("a"), step("b", unless=("a", "c"))))
    assert set(draws(never, 50)) == {("a",)}


def test_a_refusing_op_counts_as_not_applied() -> None:
    spec = AugmentSpec(steps=(step("refuse", "a", then_other_p=1.0), step("b", unless=("refuse",))))
    results = set(draws(spec, 200, seed=6))
    # "refuse" chosen: nothing applied, and no follow-up; "a" chosen: "refuse" follows but fails.
    assert results == {("b",), ("a", "b")}


def test_applied_ops_transform_the_view() -> None:
    spec = AugmentSpec(steps=(AugmentStep(ops=(Component("a", {"amount": 0.25}),)), step("b")))
    out, names = AugmentPipeline(spec, resolve)(view(), torch.Generator().manual_seed(0))
    assert names == ("a", "b")
    assert torch.allclose(out.image, torch.full_like(out.image, 0.5))


@pytest.mark.parametrize("fill", ["zero", "random"])
def test_empty_pixels_are_filled_after_geometric_ops(fill: str) -> None:
    spec = AugmentSpec(steps=(step("vacate"),), empty_fill=fill)
    out, _ = AugmentPipeline(spec, resolve)(view(), torch.Generator().manual_seed(0))
    left, rest = out.image[..., :3], out.image[..., 3:]
    assert torch.equal(rest, torch.full_like(rest, 0.25))
    if fill == "zero":
        assert not bool(left.any())
    else:
        assert left.min() >= 0 and left.max() <= 1 and left.std() > 0.1
        assert not bool((left == 0.5).any())


def test_intensity_ops_do_not_trigger_filling() -> None:
    v = view()
    v = v.with_(empty=torch.ones_like(v.empty))
    spec = AugmentSpec(steps=(step("a"),), empty_fill="random")
    out, _ = AugmentPipeline(spec, resolve)(v, torch.Generator().manual_seed(0))
    assert torch.equal(out.image, v.image)


def test_same_seed_reproduces_and_different_seed_differs() -> None:
    spec = AugmentSpec(p=0.7, steps=(step("a", "b", p=0.5, then_other_p=0.5), step("c", p=0.5)))
    assert draws(spec, 100, seed=7) == draws(spec, 100, seed=7)
    assert draws(spec, 100, seed=7) != draws(spec, 100, seed=8)
    random_fill = AugmentSpec(steps=(step("vacate"),), empty_fill="random")
    pipeline = AugmentPipeline(random_fill, resolve)
    one = pipeline(view(), torch.Generator().manual_seed(1))[0].image
    two = pipeline(view(), torch.Generator().manual_seed(1))[0].image
    three = pipeline(view(), torch.Generator().manual_seed(2))[0].image
    assert torch.equal(one, two) and not torch.equal(one, three)


def test_components_are_instantiated_once_with_their_params() -> None:
    Counting.calls = 0
    spec = AugmentSpec(steps=(AugmentStep(ops=(Component("counting", {"amount": 0.5}),)),))
    pipeline = AugmentPipeline(spec, resolve)
    g = torch.Generator().manual_seed(0)
    for _ in range(5):
        out, _ = pipeline(view(), g)
    assert Counting.calls == 1
    assert torch.allclose(out.image, torch.full_like(out.image, 0.75))


def test_unknown_parameter_is_a_clear_error() -> None:
    spec = AugmentSpec(steps=(AugmentStep(ops=(Component("a", {"amout": 1.0}),)),))
    with pytest.raises(ValueError, match=r"'a'.*'amout'.*'amount'"):
        AugmentPipeline(spec, resolve)
    spec = AugmentSpec(steps=(AugmentStep(ops=(Component("refuse", {"x": 1}),)),))
    with pytest.raises(ValueError, match=r"'refuse'.*'x'"):
        AugmentPipeline(spec, resolve)


def test_rejected_parameter_value_names_the_augmentation() -> None:
    def picky(level: int = 1) -> Augmentation:
        if level < 0:
            raise ValueError("level must be non-negative")
        return Mark()

    spec = AugmentSpec(steps=(AugmentStep(ops=(Component("picky", {"level": -1}),)),))
    with pytest.raises(ValueError, match=r"'picky'.*level must be non-negative"):
        AugmentPipeline(spec, {"picky": picky}.__getitem__)


def test_unknown_empty_fill_is_rejected() -> None:
    with pytest.raises(ValueError, match="empty_fill"):
        AugmentPipeline(AugmentSpec(steps=(step("a"),), empty_fill="noise"), resolve)


def test_apply_batch_augments_each_view_independently() -> None:
    spec = AugmentSpec(steps=(step("vacate", p=0.5),))
    pipeline = AugmentPipeline(spec, resolve)
    b = 16
    images = torch.full((b, 3, H, W), 0.25)
    users, fines = torch.zeros(b, 1, H, W), torch.zeros(b, 1, H, W)
    out = pipeline.apply_batch(images, users, fines, torch.Generator().manual_seed(0))
    assert out.image.shape == images.shape and out.empty.shape == users.shape
    assert out.finetune_mask is not None and out.finetune_mask.shape == fines.shape
    assert len(out.applied) == b and set(out.applied) == {(), ("vacate",)}
    for i, names in enumerate(out.applied):
        assert bool(out.empty[i].any()) == (names == ("vacate",))
    without = pipeline.apply_batch(images, users, None, torch.Generator().manual_seed(0))
    assert without.finetune_mask is None
    assert without.applied == out.applied  # the finetuning mask does not change the draws
