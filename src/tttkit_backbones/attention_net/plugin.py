"""Registers the attention-network variants as backbones."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tttkit.plugins import hookimpl
from tttkit.weights_store import Checkpoint
from tttkit_backbones.attention_net.backbone import (
    attention_net,
    attention_net_compact,
    attention_net_small,
)

#: Weights of the compact default, pretrained here (see docs/model-card.md).
COMPACT_WEIGHTS = (
    Path(__file__).resolve().parent.parent / "weights" / "attention-net-compact.safetensors"
)


@hookimpl
def tttkit_register_backbones(register: Callable[..., None]) -> None:
    """The thesis's three-scale attention network and its variants."""
    register(
        "attention-net",
        attention_net,
        description="three-scale attention network + PatchGAN, thesis size (17.85 M parameters)",
    )
    register(
        "attention-net-small",
        attention_net_small,
        description="the thesis's zero-shot small variant (§4.6.5)",
    )
    register(
        "attention-net-compact",
        attention_net_compact,
        description="compact CPU variant (width 32, 256²): the default, with shipped weights",
        weights=COMPACT_WEIGHTS,
        checkpoints={
            "default": Checkpoint(
                file=COMPACT_WEIGHTS.name, bundled=COMPACT_WEIGHTS,
                licence="MIT, trained here on licence-clean photos (docs/model-card.md)",
            )
        },
    )  # fmt: skip
