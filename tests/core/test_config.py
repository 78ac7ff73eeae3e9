from __future__ import annotations

import dataclasses
import json

import pytest

from tttkit.config import (
    AugmentSpec,
    AugmentStep,
    Component,
    OptimSpec,
    SpecError,
    StrategySpec,
    apply,
    parse_assignment,
)


def spec() -> StrategySpec:
    return StrategySpec(
        name="s",
        finetune_mask=Component("free-form", {"alpha": 0.15, "beta": 0.25}),
        augment=AugmentSpec(
            p=0.6,
            steps=(
                AugmentStep(ops=(Component("hflip"), Component("vflip")), p=0.5, then_other_p=0.4),
            ),
        ),
        optim=OptimSpec(lr=1e-6, lr_milestones=(50, 100)),
    )


def test_spec_is_immutable_all_the_way_down() -> None:
    s = spec()
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.steps = 3  # type: ignore[misc]
    with pytest.raises(TypeError):
        s.finetune_mask.params["alpha"] = 0.5  # type: ignore[index]


def test_json_round_trip_is_exact() -> None:
    s = spec()
    text = s.to_json()
    assert json.loads(text)["augment"]["steps"][0]["then_other_p"] == 0.4
    assert StrategySpec.from_json(text) == s


def test_derive_records_parent_and_changes_only_what_it_says() -> None:
    child = spec().derive("child", "more steps", {"steps": 300, "finetune_mask.params.alpha": 0.2})
    assert child.parent == "s" and child.description == "more steps"
    assert spec().diff(child) == {
        "steps": (150, 300),
        "finetune_mask.params.alpha": (0.15, 0.2),
    }


def test_apply_rejects_unknown_path_with_suggestion() -> None:
    with pytest.raises(
        SpecError, match=r"unknown field optim\.lr_milstones — did you mean optim\.lr_milestones"
    ):
        apply(spec(), {"optim.lr_milstones": [1]})


def test_apply_rejects_wrong_types() -> None:
    with pytest.raises(SpecError, match="steps: expected an integer"):
        apply(spec(), {"steps": "ten"})
    with pytest.raises(SpecError, match="losses.background: expected true or false"):
        apply(spec(), {"losses.background": 1})
    with pytest.raises(SpecError, match="optim.lr: expected a number"):
        apply(spec(), {"optim.lr": "fast"})


def test_apply_converts_json_shapes() -> None:
    out = apply(spec(), {"optim.lr_milestones": [10, 20], "optim.lr": 1})
    assert out.optim.lr_milestones == (10, 20) and out.optim.lr == 1.0
    assert isinstance(out.optim.lr, float)


def test_lr_schedule() -> None:
    optim = OptimSpec(lr=1e-6, lr_milestones=(50, 100), lr_gamma=0.5)
    assert [optim.lr_at(s) for s in (0, 49, 50, 99, 100, 149)] == [
        1e-6,
        1e-6,
        5e-7,
        5e-7,
        2.5e-7,
        2.5e-7,
    ]


def test_invalid_counts_are_rejected() -> None:
    with pytest.raises(SpecError, match="batch_size"):
        StrategySpec(name="x", batch_size=0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("steps=10", ("steps", 10)),
        ("a.b=[1,2]", ("a.b", [1, 2])),
        ("f.name=black", ("f.name", "black")),
    ],
)
def test_parse_assignment(text: str, expected: tuple[str, object]) -> None:
    assert parse_assignment(text) == expected


def test_parse_assignment_needs_equals() -> None:
    with pytest.raises(SpecError, match="path.to.field=value"):
        parse_assignment("steps")
