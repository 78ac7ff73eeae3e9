from __future__ import annotations

import pytest
from torch import nn

from tttkit_strategies.freezing import (
    FreezeEarly,
    FreezeGroups,
    FreezeNothing,
    FreezePartial,
    GeneratorOnly,
)

GROUPS: dict[str, nn.Module] = {
    name: nn.Linear(1, 1)
    for name in [
        "generator.encoder",
        *(f"generator.residual.{i}" for i in range(1, 9)),
        "generator.decoder.1",
        *(f"discriminator.conv{i}" for i in range(1, 6)),
    ]
}


def test_thesis_policies_select_the_right_groups() -> None:
    assert FreezeNothing()(GROUPS) == set()
    assert GeneratorOnly()(GROUPS) == {f"discriminator.conv{i}" for i in range(1, 6)}
    assert FreezeEarly()(GROUPS) == {
        "generator.encoder",
        *(f"generator.residual.{i}" for i in range(1, 9)),
        "discriminator.conv1",
        "discriminator.conv2",
    }
    assert FreezePartial()(GROUPS) == {
        "generator.encoder",
        *(f"generator.residual.{i}" for i in range(1, 5)),
        "discriminator.conv1",
        "discriminator.conv2",
        "discriminator.conv3",
    }


def test_pattern_matching_nothing_names_the_groups() -> None:
    with pytest.raises(ValueError, match="matches no layer group.*generator.encoder"):
        FreezeGroups(("generator.bottleneck",))(GROUPS)


def test_generator_only_on_a_backbone_without_discriminator() -> None:
    assert GeneratorOnly()({"generator.all": nn.Linear(1, 1)}) == set()


@pytest.mark.parametrize(
    ("policy", "trainable"),
    [("freeze-early", 7_574_817), ("freeze-partial", 11_775_009), ("none", 17_849_825)],
)
def test_registered_policies_on_the_reference_backbone(policy: str, trainable: int) -> None:
    """The thesis's trainable-parameter counts (§4.5.3, §4.6.1), through the registry."""
    import torch

    import tttkit

    with torch.device("meta"):
        net = tttkit.backbones().get("attention-net")()
    groups = net.layer_groups()
    for name in tttkit.freezing_policies().get(policy)()(groups):
        groups[name].requires_grad_(False)
    assert sum(p.numel() for p in net.parameters() if p.requires_grad) == trainable
