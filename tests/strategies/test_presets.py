"""Every registered strategy is checked automatically, whoever registered it."""

from __future__ import annotations

import pytest
import torch

import tttkit
from tttkit.config import StrategySpec
from tttkit.errors import UnknownNameError
from tttkit.plugins import PluginHost
from tttkit.strategy import check_strategy

NAMES = PluginHost(autoload=False).load().registry("strategies").names()


@pytest.mark.parametrize("name", NAMES)
def test_every_strategy_is_valid_and_round_trips(name: str, host: PluginHost) -> None:
    spec = host.registry("strategies").get(name)
    check_strategy(spec, host)
    assert StrategySpec.from_json(spec.to_json()) == spec
    if spec.parent is not None:
        parent = host.registry("strategies").get(spec.parent)
        assert spec.parent in host.registry("strategies")
        assert spec.diff(parent) or name == "optimal", f"{name} changes nothing from {spec.parent}"


def test_thesis_settings(host: PluginHost) -> None:
    get = host.registry("strategies").get
    baseline = get("baseline")
    assert (baseline.steps, baseline.batch_size, baseline.eval_every) == (150, 4, 5)
    assert baseline.optim.lr == 1e-6 and baseline.optim.lr_milestones == (50, 100)
    assert dict(baseline.finetune_mask.params) == {"alpha": 0.15, "beta": 0.25}
    assert baseline.filler.name == "random-pixels" and not baseline.augment.enabled
    optimal = get("optimal")
    assert optimal.parent == "combo-i" and optimal.diff(get("combo-i")) == {}
    assert optimal.optim.lr == 2e-6 and optimal.optim.lr_milestones == () and optimal.steps == 150
    assert optimal.filler.name == "random-image" and not optimal.augment.mask_follows_geometry
    assert [s.ops[0].name for s in optimal.augment.steps] == [
        "brightness",
        "gaussian-blur",
        "crop",
        "hflip",
        "shear",
    ]
    assert get("combo-d").steps == 300 and get("combo-d").optim.lr_milestones == (150,)
    translate = next(s for s in get("combo-f").augment.steps if s.ops[0].name == "translate")
    assert (translate.p, translate.unless) == (0.8, ("crop",))
    flips = get("combo-a").augment.steps[2]
    assert [o.name for o in flips.ops] == ["hflip", "vflip"] and flips.then_other_p == 0.4
    assert get("zero-shot").reinitialize and get("zero-shot").optim.lr == 5e-6
    assert get("combo-c").freeze.name == "freeze-partial"


def test_get_strategy_public_api() -> None:
    assert tttkit.get_strategy("combo-j").optim.lr == 3e-6


@pytest.mark.parametrize("name", NAMES)
def test_every_strategy_runs_two_steps(name: str, perceptual_env) -> None:
    """Each registered strategy trains end to end on a tiny backbone at 64²."""
    from tests.helpers import photo_and_mask, tiny_backbone

    image, mask = photo_and_mask()
    result = tttkit.adapt(image, mask, backbone=tiny_backbone(), strategy=name, steps=2, seed=1)
    assert [r.step for r in result.history] == [1, 2]
    assert all(torch.isfinite(torch.tensor(r.losses["total"])) for r in result.history)
    assert result.finetuned.shape == image.shape
    known = mask.expand_as(image) == 0
    assert torch.equal(result.finetuned[known], image[known])


def test_every_builtin_preset_is_importable_as_an_object() -> None:
    from tttkit_strategies import presets

    host = PluginHost(autoload=False).load()
    builtin = [
        e.name for e in host.registry("strategies").entries() if e.plugin.startswith("tttkit_")
    ]
    for name in builtin:
        assert presets.preset(name) == host.registry("strategies").get(name)
    assert presets.BASELINE.name == "baseline" and presets.DEFAULT.name == "default"
    assert presets.FAST.diff(presets.DEFAULT) == {"steps": (20, 30)}  # the default, fewer steps
    with pytest.raises(UnknownNameError, match="did you mean 'optimal'"):
        presets.preset("optimall")
