"""LPIPS with a looked-up trunk, its naming rule, and the weight-free perceptual measures."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from tests.helpers import photo_and_mask
from tttkit.evaluation import lpips_metric
from tttkit.evaluation.lpips_metric import (
    find_lpips_trunk,
    load_lpips,
    perceptual_metrics,
    resolve_lpips,
)
from tttkit.io import InputError
from tttkit.metrics import weight_free_metrics

SHARED_VGG = (
    Path(__file__).resolve().parents[3] / "shared/weights/vgg16_imagenet_features.safetensors"
)


@pytest.fixture
def empty_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No torch hub cache and no configured weights: nothing to find."""
    hub = tmp_path / "hub"
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(hub))
    monkeypatch.delenv("TTTKIT_LPIPS_WEIGHTS", raising=False)
    monkeypatch.delenv("TTTKIT_PERCEPTUAL_WEIGHTS", raising=False)
    return hub


def _images() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    image, _ = photo_and_mask(64)
    blurred = F.avg_pool2d(image[None], 5, 1, 2)[0]
    noisy = image + 0.03 * torch.randn(image.shape, generator=torch.Generator().manual_seed(0))
    return image, blurred, noisy.clamp(0, 1)


def test_another_trunk_is_lpips_alt_and_only_torchvisions_is_lpips(
    vgg_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    metric = load_lpips(vgg_file)
    assert metric.name == "lpips_alt"
    assert metric.describe()["trunk_sha256"] == lpips_metric.file_sha256(vgg_file)
    # the same file, were its hash torchvision's, would be the standard trunk
    monkeypatch.setattr(lpips_metric, "STANDARD_SHA256_PREFIX", metric.trunk_sha256[:8])
    assert load_lpips(vgg_file).name == "lpips"


def test_the_heads_are_the_lpips_packages_and_the_trunk_is_the_files(vgg_file: Path) -> None:
    import lpips
    from safetensors.torch import load_file

    metric = load_lpips(vgg_file)
    heads = torch.load(
        Path(lpips.__file__).parent / "weights/v0.1/vgg.pth", map_location="cpu", weights_only=True
    )
    state = metric.module.state_dict()
    for name, value in heads.items():
        assert torch.equal(state[name], value), name
    trunk = load_file(str(vgg_file))
    assert torch.equal(state["net.slice1.0.weight"], trunk["0.weight"])
    assert torch.equal(state["net.slice5.28.bias"], trunk["28.bias"])


def test_scores_are_per_image_and_zero_for_the_original(vgg_file: Path) -> None:
    metric = load_lpips(vgg_file)
    image, blurred, noisy = _images()
    batch = metric(torch.stack([image, blurred, noisy]), image.expand(3, -1, -1, -1))
    assert batch.shape == (3,) and batch[0] == pytest.approx(0.0, abs=1e-6)
    assert batch[1] > 0 and batch[2] > 0
    assert batch[1] == pytest.approx(float(metric(blurred, image)[0]), rel=1e-4)


def test_a_whole_torchvision_checkpoint_in_the_hub_cache_is_found(
    empty_hub: Path, tmp_path: Path
) -> None:
    import torchvision

    assert find_lpips_trunk() is None
    assert resolve_lpips("auto") is None  # nothing anywhere: no LPIPS column, no error
    torch.manual_seed(1)
    whole = torchvision.models.vgg16(weights=None).state_dict()  # features.* and classifier.*
    path = empty_hub / "checkpoints" / lpips_metric.TORCHVISION_VGG16
    path.parent.mkdir(parents=True)
    torch.save(whole, path)
    assert find_lpips_trunk() == path
    metric = resolve_lpips("auto")
    assert metric is not None and metric.source == str(path)
    assert torch.equal(
        metric.module.state_dict()["net.slice3.10.weight"], whole["features.10.weight"]
    )
    with pytest.raises(InputError, match="not torchvision's ImageNet VGG16"):
        resolve_lpips("standard")  # a file of that name with other bytes is not the standard


def test_lookup_order_and_errors(empty_hub: Path, vgg_file: Path, monkeypatch) -> None:
    with pytest.raises(InputError, match="--lpips standard: no VGG16 trunk found"):
        resolve_lpips("standard")
    with pytest.raises(InputError, match="--lpips must be one of"):
        resolve_lpips("alex")
    with pytest.raises(InputError, match="--lpips-weights .*missing.pth is not a file"):
        resolve_lpips("auto", lpips_weights=vgg_file.parent / "missing.pth")
    monkeypatch.setenv("TTTKIT_LPIPS_WEIGHTS", str(vgg_file.parent / "gone.pth"))
    with pytest.raises(InputError, match=r"\$TTTKIT_LPIPS_WEIGHTS .*gone.pth is not a file"):
        resolve_lpips("auto")
    monkeypatch.setenv("TTTKIT_LPIPS_WEIGHTS", str(vgg_file))
    assert find_lpips_trunk() == vgg_file
    monkeypatch.delenv("TTTKIT_LPIPS_WEIGHTS")
    # without a trunk of its own, auto falls back to the perceptual loss's VGG16, as LPIPS-alt
    fallback = resolve_lpips("auto", perceptual_weights=vgg_file)
    assert fallback is not None and fallback.name == "lpips_alt"
    assert resolve_lpips("off", lpips_weights=vgg_file) is None


def test_a_file_that_is_no_vgg16_is_named(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pth"
    torch.save({"weight": torch.zeros(3)}, junk)
    with pytest.raises(InputError, match="LPIPS trunk: .*junk.pth is not a VGG-16/VGG-19"):
        load_lpips(junk)


def test_weight_free_measures_rank_the_original_first() -> None:
    image, blurred, _ = _images()
    original, blur = weight_free_metrics(torch.stack([image, blurred]), torch.stack([image] * 2))
    assert original["haarpsi"] == pytest.approx(1.0, abs=1e-4)
    assert original["gmsd"] == pytest.approx(0.0, abs=1e-6)
    assert blur["haarpsi"] < 0.95 and blur["gmsd"] > 0.01
    assert weight_free_metrics(image[:, :16, :16], image[:, :16, :16]) == []  # too small


def test_perceptual_metrics_skip_photos_too_large(vgg_file: Path, monkeypatch) -> None:
    metric = load_lpips(vgg_file)
    image, blurred, _ = _images()
    rows = perceptual_metrics(torch.stack([image, blurred]), image, metric)
    assert set(rows[1]) == {"lpips_alt", "haarpsi", "gmsd"} and rows[0]["lpips_alt"] == 0.0
    monkeypatch.setattr(lpips_metric, "PERCEPTUAL_MAX_PIXELS", 64 * 64 - 1)
    assert perceptual_metrics(torch.stack([image, blurred]), image, metric) == [{}, {}]


@pytest.mark.skipif(not SHARED_VGG.is_file(), reason="shared/weights is not beside the checkout")
def test_with_an_imagenet_trunk_blur_is_farther_than_light_noise() -> None:
    # LPIPS's point: a blurred fill is far from the truth even where L1 calls it closer.
    metric = load_lpips(SHARED_VGG)
    image, _ = photo_and_mask(128)
    blurred = F.avg_pool2d(image[None], 5, 1, 2, count_include_pad=False)[0]
    noise = 0.05 * torch.randn(image.shape, generator=torch.Generator().manual_seed(0))
    noisy = (image + noise).clamp(0, 1)
    blur_score, noise_score = metric(torch.stack([blurred, noisy]), image.expand(2, -1, -1, -1))
    assert blur_score > 2 * noise_score  # measured 0.205 against 0.080
    assert (blurred - image).abs().mean() < (noisy - image).abs().mean()  # 0.037 < 0.040
