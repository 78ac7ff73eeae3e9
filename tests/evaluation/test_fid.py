from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tttkit.evaluation.fid import (
    ENV_INCEPTION,
    frechet_distance,
    frechet_from_statistics,
    resolve_feature_network,
    trace_sqrt_product,
)
from tttkit.io import InputError


def test_trace_sqrt_matches_the_closed_form_for_non_commuting_2x2() -> None:
    # For 2×2 PSD A, B: Tr((AB)^½) = sqrt(Tr(AB) + 2·sqrt(det A · det B)).
    a = np.array([[2.0, 0.7], [0.7, 1.0]])
    b = np.array([[0.5, -0.3], [-0.3, 3.0]])
    assert not np.allclose(a @ b, b @ a)
    expected = np.sqrt(np.trace(a @ b) + 2 * np.sqrt(np.linalg.det(a) * np.linalg.det(b)))
    assert trace_sqrt_product(a, b) == pytest.approx(expected, rel=1e-12)


def test_frechet_of_diagonal_gaussians_matches_the_closed_form() -> None:
    rng = np.random.default_rng(0)
    var_1, var_2 = rng.uniform(0.1, 2, 16), rng.uniform(0.1, 2, 16)
    mean_1, mean_2 = rng.normal(size=16), rng.normal(size=16)
    expected = np.sum((mean_1 - mean_2) ** 2) + np.sum((np.sqrt(var_1) - np.sqrt(var_2)) ** 2)
    got = frechet_from_statistics(mean_1, np.diag(var_1), mean_2, np.diag(var_2))
    assert got == pytest.approx(expected, rel=1e-10)


def _exact_frechet(x: np.ndarray, y: np.ndarray) -> float:
    """The Fréchet distance in 50-digit arithmetic: rounding cannot fake small eigenvalues."""
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 50

    def cov(a: np.ndarray) -> object:
        m = mpmath.matrix(a.tolist())
        mean = [sum(m[i, j] for i in range(m.rows)) / m.rows for j in range(m.cols)]
        c = mpmath.matrix(m.cols, m.cols)
        for i in range(m.cols):
            for j in range(m.cols):
                c[i, j] = sum((m[k, i] - mean[i]) * (m[k, j] - mean[j]) for k in range(m.rows))
                c[i, j] /= m.rows - 1
        return mean, c

    (mean_x, c_x), (mean_y, c_y) = cov(x), cov(y)
    values, vectors = mpmath.eigsy(c_x)
    root = vectors * mpmath.diag([mpmath.sqrt(max(v, 0)) for v in values]) * vectors.T
    inner_values, _ = mpmath.eigsy(root * c_y * root)
    trace_sqrt = sum(mpmath.sqrt(max(v, 0)) for v in inner_values)
    traces = sum(c_x[i, i] + c_y[i, i] for i in range(c_x.rows))
    shift = sum((a - b) ** 2 for a, b in zip(mean_x, mean_y, strict=True))
    return float(shift + traces - 2 * trace_sqrt)


@pytest.mark.parametrize("count", [5, 40])  # fewer vectors than dimensions (SVD route), and more
def test_sample_routes_match_a_high_precision_reference(count: int) -> None:
    rng = np.random.default_rng(count)
    mix = rng.normal(size=(12, 12))
    x = rng.normal(size=(count, 12)) @ mix
    y = rng.normal(size=(count + 3, 12)) @ mix.T + 0.5
    exact = _exact_frechet(x, y)
    assert frechet_distance(x, y) == pytest.approx(exact, rel=1e-11)
    # the covariance route agrees, less precisely on singular covariances (√ of rounding noise)
    via_statistics = frechet_from_statistics(x.mean(0), np.cov(x.T), y.mean(0), np.cov(y.T))
    assert via_statistics == pytest.approx(exact, rel=1e-6)


def test_frechet_of_a_set_with_itself_is_zero_and_a_shift_adds_its_square() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(30, 64))  # singular covariance (30 < 64)
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-9)
    shift = rng.normal(size=64)
    assert frechet_distance(x, x + shift) == pytest.approx(float(shift @ shift), rel=1e-9)
    with pytest.raises(ValueError, match="at least 2"):
        frechet_distance(x[:1], x)


@pytest.fixture(scope="session")
def inception_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """torchvision Inception-v3 with random weights: exercises the loading path, not quality."""
    from torchvision.models import inception_v3

    torch.manual_seed(0)
    net = inception_v3(weights=None, aux_logits=True, init_weights=False)
    path = tmp_path_factory.mktemp("inception") / "inception_random.pth"
    torch.save(net.state_dict(), path)
    return path


@pytest.fixture
def no_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No weights anywhere: empty torch hub cache, no environment variables."""
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.delenv(ENV_INCEPTION, raising=False)
    monkeypatch.delenv("TTTKIT_PERCEPTUAL_WEIGHTS", raising=False)


def test_inception_weights_give_standard_fid(inception_file: Path, no_weights: None) -> None:
    network = resolve_feature_network("auto", inception_weights=inception_file)
    assert network is not None and network.metric == "FID" and network.arch == "inception-v3"
    features = network.features(torch.rand(2, 3, 40, 40))
    assert features.shape == (2, 2048) and np.isfinite(features).all()


def test_inception_from_the_hub_cache(
    inception_file: Path, no_weights: None, tmp_path: Path
) -> None:
    cache = tmp_path / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    (cache / "inception_v3_google-0cc3c7bd.pth").symlink_to(inception_file)
    network = resolve_feature_network("auto")
    assert network is not None and network.metric == "FID"


def test_vgg_fallback_is_never_called_fid(perceptual_env: Path, no_weights: None,
                                          monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.setenv("TTTKIT_PERCEPTUAL_WEIGHTS", str(perceptual_env))
    network = resolve_feature_network("auto")
    assert network is not None and network.metric == "FID-VGG16" and network.dims == 512
    assert network.features(torch.rand(3, 3, 48, 48)).shape == (3, 512)
    with pytest.raises(InputError, match="no Inception-v3 weights"):
        resolve_feature_network("inception")


def test_missing_files_are_errors_and_nothing_found_means_no_set_metric(
    no_weights: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert resolve_feature_network("auto") is None
    assert resolve_feature_network("off") is None
    with pytest.raises(InputError, match="is not a file"):
        resolve_feature_network("auto", inception_weights=tmp_path / "nope.pth")
    monkeypatch.setenv(ENV_INCEPTION, str(tmp_path / "nope.pth"))
    with pytest.raises(InputError, match=ENV_INCEPTION):
        resolve_feature_network("auto")
    junk = tmp_path / "junk.pth"
    torch.save({"a": torch.zeros(1)}, junk)
    with pytest.raises(InputError, match="not torchvision Inception-v3"):
        resolve_feature_network("inception", inception_weights=junk)
