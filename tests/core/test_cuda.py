"""On a CUDA device (skipped elsewhere; `benchmarks/gpu_check.py` runs these on a GPU): a run
completes on the GPU, auto precision follows the device, and LoRA merges there too."""

from __future__ import annotations

import pytest
import torch

from tests.helpers import photo_and_mask, tiny_backbone
from tttkit.engine import run_ttt
from tttkit.engine.execution import resolve_precision
from tttkit.options import RunOptions
from tttkit.strategy import get_strategy, override

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
]


@pytest.mark.parametrize("policy", ["none", "lora", "norm-only", "last-k"])
def test_a_run_completes_on_the_gpu(policy: str) -> None:
    image, mask = photo_and_mask(64)
    spec = override(get_strategy("default"), steps=3, freeze=policy)
    result = run_ttt(tiny_backbone(), image, mask, spec, RunOptions(device="cuda", seed=1))
    known = mask.expand_as(image) == 0
    assert torch.equal(result.finetuned[known], image[known])
    assert torch.isfinite(result.finetuned).all()
    assert result.network is not None
    assert next(result.network.parameters()).device.type == "cuda"


def test_auto_precision_is_bf16_where_the_gpu_has_it() -> None:
    cuda = torch.device("cuda")
    expected = torch.bfloat16 if torch.cuda.is_bf16_supported() else None
    assert resolve_precision("auto", cuda) is expected


def test_the_same_seed_gives_the_same_fill_on_the_gpu() -> None:
    image, mask = photo_and_mask(64)
    spec = override(get_strategy("default"), steps=2)
    options = RunOptions(device="cuda", seed=4, precision="fp32")
    first = run_ttt(tiny_backbone(), image, mask, spec, options)
    second = run_ttt(tiny_backbone(), image, mask, spec, options)
    torch.testing.assert_close(first.finetuned, second.finetuned, atol=1e-4, rtol=0)
