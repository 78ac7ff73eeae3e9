"""The moving average of finetuned weights: its arithmetic, and the engine evaluating with it."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tests.core.test_selection import Oracle, helpful
from tests.helpers import photo_and_mask
from tttkit.config import SpecError
from tttkit.engine import run_ttt
from tttkit.engine.averaging import WeightAverage
from tttkit.strategy import override


def test_average_follows_the_recurrence_and_restores_live_weights() -> None:
    weight = nn.Parameter(torch.zeros(3))
    average = WeightAverage([weight], decay=0.75)
    expected = torch.zeros(3)
    for value in (4.0, 8.0):
        with torch.no_grad():
            weight.fill_(value)
        average.update()
        expected = 0.75 * expected + 0.25 * value
    assert torch.allclose(average.shadow[0], expected)  # 1.0, then 2.75
    with average.applied():
        assert torch.allclose(weight, expected)
    assert torch.equal(weight, torch.full((3,), 8.0))
    average.commit()
    assert torch.allclose(weight, expected)
    with pytest.raises(ValueError, match="weight_average"):
        WeightAverage([weight], decay=1.0)


def test_engine_evaluates_and_returns_the_averaged_weights() -> None:
    image, mask = photo_and_mask()
    plain = run_ttt(Oracle(image, 0.2), image, mask, helpful("last"))
    spec = override(helpful("last"), sets=["weight_average=0.5"])
    averaged = run_ttt(Oracle(image, 0.2), image, mask, spec, ground_truth=image)
    live = plain.network.generator.offset.detach()
    lagging = averaged.network.generator.offset.detach()
    # Training walks the offset from 0.2 towards 0; the average lags behind the walk.
    assert torch.all((live > 0.0) & (live < lagging) & (lagging < 0.2))
    filled = (image + lagging[0]) * mask + image * (1 - mask)
    assert torch.allclose(averaged.finetuned, filled, atol=1e-5)
    with pytest.raises(SpecError, match="weight_average"):
        override(helpful("last"), sets=["weight_average=1.5"])


def test_averaging_with_every_generator_weight_frozen_is_refused_not_run() -> None:
    # Nothing of the generator to train (and so nothing to average): steps would return the
    # raw fill, which the engine refuses to do silently (issue 30).
    image, mask = photo_and_mask()
    spec = override(
        helpful("last"),
        sets=["weight_average=0.5", 'freeze={"name": "freeze-groups", '
              '"params": {"patterns": ["generator.offset"]}}'],
    )  # fmt: skip
    with pytest.raises(SpecError, match="leaves nothing of the generator"):
        run_ttt(Oracle(image, 0.2), image, mask, spec)
