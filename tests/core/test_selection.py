"""Self-validation: the returned output is never worse than raw on the held-out region."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tests.helpers import photo_and_mask
from tttkit.backbone import Backbone, Conventions, GeneratorOutput
from tttkit.components import MaskSamplingError
from tttkit.config import StrategySpec
from tttkit.engine import run_ttt
from tttkit.engine.self_validation import Selector, validation_area
from tttkit.imageops import dilate
from tttkit.strategy import get_strategy, override


class Oracle(Backbone):
    """Its output is the true image plus a learnable colour offset (0 unless given): at 0 it
    fills every hole perfectly, and training on translated views pulls the offset away from 0,
    so training can only hurt. Started off 0, plain training pulls it back: training helps."""

    def __init__(self, truth: torch.Tensor, offset: float = 0.0) -> None:
        super().__init__(Conventions(value_range=(0.0, 1.0), working_size=64), {})
        self.generator = nn.Module()
        self.generator.offset = nn.Parameter(torch.full((1, 3, 1, 1), offset))
        self.register_buffer("truth", truth[None])

    def native_generate(self, image: torch.Tensor, mask: torch.Tensor) -> GeneratorOutput:
        return GeneratorOutput(image=(self.truth + self.generator.offset).expand_as(image))

    def layer_groups(self) -> dict[str, nn.Module]:
        return {"generator.offset": self.generator}


def destructive(select: str, early_stop: int = 0) -> StrategySpec:
    """Translated views and a large learning rate: every step moves the oracle off the truth."""
    return override(
        get_strategy("baseline"), steps=4, select=select, early_stop=early_stop,
        augment="translate:1", sets=["losses.perceptual=0", "optim.lr=0.05", "eval_every=2"],
    )  # fmt: skip


def test_best_picks_step_zero_when_training_only_hurts() -> None:
    image, mask = photo_and_mask()
    best = run_ttt(Oracle(image), image, mask, destructive("best"), ground_truth=image)
    last = run_ttt(Oracle(image), image, mask, destructive("last"), ground_truth=image)
    assert best.selection.chosen_step == 0
    assert torch.equal(best.finetuned, best.raw)
    scores = [score for _, score in best.selection.validation]
    assert [step for step, _ in best.selection.validation] == [0, 2, 4]
    assert min(scores[1:]) > scores[0]  # training made the held-out region worse
    assert last.selection.chosen_step == 4 and last.selection.validation == ()
    assert last.metrics()["l1_hole"] > best.metrics(0)["l1_hole"]  # and the true holes too
    assert best.metrics() == best.metrics(0)  # the returned output's metrics
    assert torch.all(best.network.generator.offset == 0)  # and the network that made it
    assert torch.all(last.network.generator.offset != 0)


def helpful(
    select: str, refit: bool = False, steps: int = 4, lr: float = 0.02, early_stop: int = 0
) -> StrategySpec:
    """Plain views: every step moves an offset oracle towards the truth (at a large ``lr``, past
    it after a few steps)."""
    return override(
        get_strategy("baseline"), steps=steps, select=select, augment="none",
        early_stop=early_stop, refit=refit,
        sets=["losses.perceptual=0", f"optim.lr={lr}", "eval_every=2"],
    )  # fmt: skip


def test_refit_reruns_the_chosen_steps_on_the_whole_known_region() -> None:
    image, mask = photo_and_mask()
    refit = run_ttt(Oracle(image, 0.2), image, mask, helpful("best", refit=True))
    probe = run_ttt(Oracle(image, 0.2), image, mask, helpful("best"))
    plain = run_ttt(Oracle(image, 0.2), image, mask, helpful("last"))
    assert probe.selection.chosen_step == 4 and refit.selection.refit.steps == 4
    assert refit.selection.validation == probe.selection.validation
    # The output is a plain run's of the chosen length, not the held-out run's.
    assert torch.equal(refit.finetuned, plain.finetuned)
    assert [r.step for r in refit.history] == [1, 2, 3, 4]


def test_refit_of_an_earlier_step_and_after_an_early_stop() -> None:
    image, mask = photo_and_mask()
    # At lr 0.15 the offset overshoots: V scores best at step 4 of 6, worse again at 6.
    chosen = run_ttt(Oracle(image, 0.2), image, mask, helpful("best", True, steps=6, lr=0.15))
    plain = run_ttt(Oracle(image, 0.2), image, mask, helpful("last", steps=4, lr=0.15))
    assert chosen.selection.chosen_step == 4 and chosen.selection.refit.steps == 4
    assert len(chosen.selection.refit.held_out_evaluations) == 4  # steps 0, 2, 4, 6
    assert [r.step for r in chosen.history] == [1, 2, 3, 4]
    assert torch.equal(chosen.finetuned, plain.finetuned)
    assert torch.equal(chosen.network.generator.offset, plain.network.generator.offset)
    # select=last with early stopping holds V out too: the stop step is refit on everything.
    stopped = run_ttt(
        Oracle(image, 0.2), image, mask, helpful("last", True, steps=8, lr=0.15, early_stop=1)
    )
    assert stopped.selection.stopped_early_at == 6
    assert stopped.selection.refit.steps == 6
    plain = run_ttt(Oracle(image, 0.2), image, mask, helpful("last", steps=6, lr=0.15))
    assert torch.equal(stopped.finetuned, plain.finetuned)


def test_refit_is_skipped_when_the_raw_network_is_chosen() -> None:
    image, mask = photo_and_mask()
    spec = override(destructive("best"), refit=True)
    result = run_ttt(Oracle(image), image, mask, spec)
    assert result.selection.chosen_step == 0 and result.selection.refit is None
    assert torch.equal(result.finetuned, result.raw)


def test_early_stop_ends_the_run() -> None:
    image, mask = photo_and_mask()
    result = run_ttt(Oracle(image), image, mask, destructive("best", early_stop=1))
    assert result.selection.stopped_early_at == 2
    assert [r.step for r in result.history] == [1, 2]


def test_raw_rule_returns_the_raw_output() -> None:
    image, mask = photo_and_mask()
    result = run_ttt(Oracle(image), image, mask, destructive("raw"))
    assert torch.equal(result.finetuned, result.raw) and result.selection.chosen_step == 0


def test_validation_area_is_shaped_like_the_holes_and_away_from_them() -> None:
    user = torch.zeros(1, 1, 64, 64)
    user[..., 10:20, 5:30] = 1
    for seed in range(10):
        region = validation_area(user, torch.Generator().manual_seed(seed), margin=3)
        assert not torch.any((region > 0) & (dilate(user, 6) > 0))
        assert 0.5 * user.sum() <= region.sum() <= user.sum()


def test_several_copies_share_the_area_and_keep_apart() -> None:
    user = torch.zeros(1, 1, 96, 96)
    user[..., 40:50, 40:60] = 1  # 2.2% of the image
    one = validation_area(user, torch.Generator().manual_seed(0), margin=2, copies=1)
    three = validation_area(user, torch.Generator().manual_seed(0), margin=2, copies=3)
    assert not torch.any((three > 0) & (dilate(user, 4) > 0))
    assert _component_count(three) == 3 and one.sum() <= user.sum() < three.sum() <= 3 * user.sum()
    shared = validation_area(user, torch.Generator().manual_seed(0), margin=2, copies=4,
                               max_fraction=0.02)  # fmt: skip
    assert shared.mean() <= 0.02 + 1e-6


def _component_count(region: torch.Tensor) -> int:
    import cv2
    import numpy as np

    count, _ = cv2.connectedComponents(region[0, 0].numpy().astype(np.uint8))
    return count - 1  # label 0 is the background


def test_large_holes_give_a_bounded_region_and_impossible_cases_say_so() -> None:
    user = torch.zeros(1, 1, 64, 64)
    user[..., :, :30] = 1  # 47% of the image
    region = validation_area(user, torch.Generator().manual_seed(0), margin=2)
    assert 0 < region.mean() <= 0.1
    with pytest.raises(MaskSamplingError, match="no room"):
        validation_area(torch.ones(1, 1, 16, 16), torch.Generator().manual_seed(0), margin=2)


def test_selector_rules() -> None:
    outputs = {step: torch.full((1,), float(step)) for step in (0, 5, 10)}
    selector = Selector("best", patience=2)
    for step, score in ((0, 0.5), (5, 0.3), (10, 0.4)):
        selector.observe(step, outputs[step], score)
    assert selector.chosen()[0] == 5 and not selector.should_stop()
    selector.observe(15, torch.zeros(1), 0.6)
    assert selector.should_stop()
    with pytest.raises(ValueError, match="select must be one of"):
        Selector("median")
