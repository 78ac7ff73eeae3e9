"""The thesis's reference backbone: a three-scale attention inpainting network (after Yang, Qi &
Shi, AAAI 2020) with an SN-PatchGAN discriminator, in three sizes.

``python -m tttkit_backbones.attention_net`` prints the thesis-size parameter table.
"""

from .backbone import (
    AttentionNet,
    attention_net,
    attention_net_compact,
    attention_net_small,
    parameter_table,
    trainable_after_freezing,
)
from .inputs import build_input, canny_edges, sobel_gradients

__all__ = [
    "AttentionNet",
    "attention_net",
    "attention_net_compact",
    "attention_net_small",
    "build_input",
    "canny_edges",
    "parameter_table",
    "sobel_gradients",
    "trainable_after_freezing",
]
