"""The two attention layers the decoder can use at each scale.

* :class:`PooledSelfAttention` (default) — Yang, Qi & Shi (AAAI 2020)'s non-local attention with a
  downsampled query and a max-pooled key/value, which is what the thesis's network uses.
* :class:`ContextualAttention` — the patch-matching contextual attention of Yu et al. (CVPR 2018):
  every location is rebuilt from patches of the *known* region, chosen by cosine similarity.

Both share the outer structure of the reference code: a 4×4 stride-2 conv block down, the attention
at half resolution, a 4×4 stride-2 transposed conv block up, and ``gamma * out + x`` with ``gamma``
initialised to 0 so that a freshly built layer is the identity.

The attention cores go through :func:`torch.nn.functional.scaled_dot_product_attention` with
contiguous ``(B, 1, L, E)`` tensors: for the self-attention that takes the CPU flash kernel, which
never materialises the ``(L_q, L_k)`` logits (≈ 3× faster and ~150× less memory than the naive
product at the 256² scale; transposed views silently fall back to the naive path). The contextual
attention's values are wider than its keys, which the flash kernel refuses; see
``_FLASH_MIN_LOGITS``.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .layers import ConvBlock, UpBlock

AttentionKind = Literal["self", "contextual"]
ATTENTION_KINDS: tuple[str, ...] = ("self", "contextual")


class PooledSelfAttention(nn.Module):
    """Yang et al.'s pooled self-attention.

    ``x`` → 4×4 s2 conv block → 1×1 projections to ``channels // 16`` (query ``g``, key ``f`` and
    value ``h`` in their code; key and value are 2×2 max-pooled) → ``softmax(q kᵀ) v`` → 4×4 s2
    transposed conv block back to ``channels`` → ``gamma * o + x``.

    The reference projects the value to ``channels // 16`` too (not to ``channels`` as SAGAN does)
    and lets the transposed convolution restore the width; the logits are not scaled by
    ``1/sqrt(d)``. Both are kept: they fix the parameter count and the pretrained behaviour.

    Args:
        channels: feature channels at this scale.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        inner = max(1, channels // 16)
        self.inner = inner
        self.down = ConvBlock(channels, channels, 4, stride=2, activation=nn.ReLU())
        self.query = nn.Conv2d(channels, inner, 1)
        self.key = nn.Conv2d(channels, inner, 1)
        self.value = nn.Conv2d(channels, inner, 1)
        self.up = UpBlock(inner, channels)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """Attend over the whole feature map (``mask`` is accepted for a uniform interface)."""
        y = self.down(x)
        batch, _, height, width = y.shape
        query = _tokens(self.query(y))
        # ceil_mode mirrors TensorFlow's SAME pooling on odd sizes instead of dropping a row.
        key = _tokens(F.max_pool2d(self.key(y), 2, ceil_mode=True))
        value = _tokens(F.max_pool2d(self.value(y), 2, ceil_mode=True))
        out = F.scaled_dot_product_attention(query, key, value, scale=1.0)
        out = out.squeeze(1).transpose(1, 2).reshape(batch, self.inner, height, width)
        return self.gamma * self.up(out) + x


def _tokens(x: Tensor) -> Tensor:
    """``(B, C, H, W)`` → contiguous ``(B, 1, H*W, C)``, the layout SDPA's CPU flash path needs."""
    return x.flatten(2).transpose(1, 2).contiguous().unsqueeze(1)


# Above this many logits per call, zero-pad the queries and keys to the values' width so that SDPA
# can take the flash kernel (it needs equal widths) instead of materialising the logits; below it
# the naive kernel is faster (measured: 1.3 s vs 1.5 s forward for 4 × 4096² logits).
_FLASH_MIN_LOGITS = 2**27


def contextual_attention(features: Tensor, holes: Tensor, softmax_scale: float = 10.0) -> Tensor:
    """Rebuild every location of ``features`` from patches of the known region (Yu et al. 2018).

    As in the paper (``ksize=3, rate=2``): features are halved (2×2 average) for matching; every
    3×3 patch of that map is a query, and the 3×3 patches that do not touch a hole are the keys,
    L2-normalised, so a score is the cosine similarity times the query's norm. Scores are scaled
    by ``softmax_scale`` and soft-maxed over the keys; each query then receives the matching *raw*
    4×4 full-resolution patches (stride 2), pasted back with overlap averaging — the paper's
    transposed-convolution paste, written as ``fold``. Matching at half resolution makes the
    ``N_q × N_k`` score matrix 16× smaller.

    Hole content cannot leak through keys or values: an output pixel more than 4 pixels from every
    hole does not depend on anything inside the holes. When no patch is hole-free the sample
    attends over all patches rather than producing NaN.

    Args:
        features: ``(B, C, H, W)`` feature map.
        holes: ``(B, 1, H, W)``, nonzero at holes (at the feature map's resolution).
        softmax_scale: multiplier of the similarities before the softmax.

    Returns:
        ``(B, C, H, W)``: the attended features.
    """
    height, width = features.shape[-2:]
    # The stride-2 paste covers an even size exactly; pad odd sizes and crop at the end.
    pad_h, pad_w = height % 2, width % 2
    if pad_h or pad_w:
        features = F.pad(features, (0, pad_w, 0, pad_h), mode="replicate")
        holes = F.pad(holes, (0, pad_w, 0, pad_h), mode="replicate")
    small = F.avg_pool2d(features, 2)
    queries = F.unfold(small, 3, padding=1).transpose(1, 2).contiguous()
    keys = queries / queries.norm(dim=-1, keepdim=True).clamp_min(1e-4)
    # Raw 4×4 patches at stride 2, one per position of the half-resolution map.
    values = F.unfold(features, 4, padding=1, stride=2).transpose(1, 2).contiguous()
    # A key's footprint at full resolution (3×3 half-resolution cells) covers its 4×4 raw patch.
    hole_cells = F.max_pool2d(holes.to(features.dtype), 2)
    allowed = F.max_pool2d(hole_cells, 3, stride=1, padding=1).flatten(1) == 0
    allowed = allowed | ~allowed.any(dim=1, keepdim=True)
    tokens = queries.shape[1]
    if (
        queries.shape[0] * tokens * tokens >= _FLASH_MIN_LOGITS
        and values.shape[-1] > keys.shape[-1]
    ):
        extra = values.shape[-1] - keys.shape[-1]
        queries, keys = F.pad(queries, (0, extra)), F.pad(keys, (0, extra))
    out = F.scaled_dot_product_attention(
        queries.unsqueeze(1),
        keys.unsqueeze(1),
        values.unsqueeze(1),
        attn_mask=allowed[:, None, None, :],
        scale=softmax_scale,
    )
    out = out.squeeze(1).transpose(1, 2)
    # 4×4 patches at stride 2 overlap 4 times (fewer at the zero-padded border, as in the paper's
    # SAME transposed convolution, which divides by the same constant).
    out = F.fold(out, features.shape[-2:], 4, padding=1, stride=2) / 4.0
    return out[..., :height, :width]


class ContextualAttention(nn.Module):
    """Contextual attention (Yu et al. 2018) inside the reference's down/up structure.

    ``x`` → 4×4 s2 conv block → :func:`contextual_attention` with the holes at that resolution →
    4×4 s2 transposed conv block → ``gamma * o + x``. Yu et al.'s score propagation ("fuse") step is
    left out, as in Yang et al.'s neighbourhood variant.

    Args:
        channels: feature channels at this scale.
        softmax_scale: multiplier of the cosine similarities (10 in the paper).
    """

    def __init__(self, channels: int, softmax_scale: float = 10.0) -> None:
        super().__init__()
        self.softmax_scale = softmax_scale
        self.down = ConvBlock(channels, channels, 4, stride=2, activation=nn.ReLU())
        self.up = UpBlock(channels, channels)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """Attend from every location to the known patches; ``mask`` (1 = hole) is required."""
        if mask is None:
            raise ValueError("contextual attention needs the hole mask at the feature resolution")
        y = self.down(x)
        # A downsampled cell is a hole when any pixel under its 4×4 stride-2 window is one, so
        # hole content cannot enter a "known" cell through the down convolution.
        holes = F.max_pool2d(mask, 4, stride=2, padding=1)
        y = contextual_attention(y, holes, softmax_scale=self.softmax_scale)
        return self.gamma * self.up(y) + x


def make_attention(kind: str, channels: int) -> nn.Module:
    """Build the attention layer named ``kind`` (``"self"`` or ``"contextual"``)."""
    if kind == "self":
        return PooledSelfAttention(channels)
    if kind == "contextual":
        return ContextualAttention(channels)
    raise ValueError(f"unknown attention {kind!r}; expected one of {', '.join(ATTENTION_KINDS)}")


__all__ = [
    "ATTENTION_KINDS",
    "AttentionKind",
    "ContextualAttention",
    "PooledSelfAttention",
    "contextual_attention",
    "make_attention",
]
