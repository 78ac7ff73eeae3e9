from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.evaluation.conftest import invoke
from tttkit.errors import InputError, PluginContractError
from tttkit.evaluation.masks import draw_mask, mask_kind, simulate_mask
from tttkit.io import read_mask
from tttkit.plugins import PluginHost, hookimpl
from tttkit_strategies.eval_masks import lama_size


def test_masks_are_deterministic_per_key_and_seed() -> None:
    first = simulate_mask("a.jpg", seed=1, size=64)
    assert torch.equal(first, simulate_mask("a.jpg", seed=1, size=64))
    assert not torch.equal(first, simulate_mask("b.jpg", seed=1, size=64))
    assert not torch.equal(first, simulate_mask("a.jpg", seed=2, size=64))
    assert first.shape == (1, 64, 64) and set(first.unique().tolist()) <= {0.0, 1.0}


def test_mean_coverage_is_near_the_target() -> None:
    coverages = [float(simulate_mask(f"img{i}.jpg", seed=0, size=64).mean()) for i in range(30)]
    assert abs(np.mean(coverages) - 0.29) < 0.02
    assert min(coverages) > 0.17 and max(coverages) < 0.41  # targets spread over 0.29 ± 0.10
    assert np.std(coverages) > 0.02  # sizes vary like a user's
    high = [float(simulate_mask(f"img{i}.jpg", 0, 64, coverage=0.5).mean()) for i in range(10)]
    assert abs(np.mean(high) - 0.5) < 0.03


def test_masks_command_names_files_after_images_and_ignores_other_images(
    photos: Path, tmp_path: Path
) -> None:
    out = tmp_path / "m1"
    code, stdout, _ = invoke("masks", str(photos), "--out", str(out), "--seed", "5",
                             "--size", "32", "--json")  # fmt: skip
    assert code == 0
    assert json.loads(stdout)["masks"] == 3
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png")) == [
        "a.png", "b.png", "sub/c.png",
    ]  # fmt: skip
    manifest = json.loads((out / "masks.json").read_text())
    assert manifest["seed"] == 5 and set(manifest["masks"]) == {"a.png", "b.png", "sub/c.png"}
    assert read_mask(out / "a.png").shape == (1, 32, 32)
    # adding a photo leaves the other masks unchanged
    (photos / "b.png").rename(photos / "a0.png")
    again = tmp_path / "m2"
    assert invoke("masks", str(photos), "--out", str(again), "--seed", "5", "--size", "32")[0] == 0
    assert (again / "a.png").read_bytes() == (out / "a.png").read_bytes()
    assert (again / "sub/c.png").read_bytes() == (out / "sub/c.png").read_bytes()


def test_masks_are_never_written_among_the_photos(photos: Path) -> None:
    code, _, stderr = invoke("masks", str(photos), "--out", str(photos / "masks"))
    assert code == 2 and "inside the images folder" in stderr
    assert not (photos / "masks").exists()


@pytest.mark.parametrize("coverage", ["0", "0.95"])
def test_masks_command_rejects_bad_coverage(photos: Path, tmp_path: Path, coverage: str) -> None:
    code, _, _ = invoke("masks", str(photos), "--out", str(tmp_path / "m"), "--coverage", coverage)
    assert code == 2


# -- mask kinds: LaMa's thin, medium and thick masks -----------------------------------------------

LAMA_KINDS = ["lama-thin", "lama-medium", "lama-thick"]

#: LaMa's coverage (hidden share) per kind and size: mean, 5th and 95th percentile of 10,000
#: masks, measured by running LaMa's own generators (advimman/lama at 786f593:
#: saicinpainting/training/data/masks.py, MixedMaskGenerator) with the parameters of
#: configs/data_gen/random_<kind>_<size>.yaml on square canvases, and bin/gen_mask_dataset.py's
#: selection (5 candidates per image, those hiding more than max_tamper_area 0.5 dropped, one of
#: the rest kept). The standard deviation is 0.13–0.14 for every kind and size.
LAMA_COVERAGE = {
    ("lama-thin", 256): (0.2873, 0.0739, 0.4730),
    ("lama-medium", 256): (0.2373, 0.0186, 0.4274),
    ("lama-thick", 256): (0.2645, 0.0572, 0.4760),
    ("lama-thin", 512): (0.2855, 0.0638, 0.4756),
    ("lama-medium", 512): (0.2751, 0.0412, 0.4734),
    ("lama-thick", 512): (0.2656, 0.0454, 0.4725),
}
LAMA_SD, LAMA_N = 0.14, 10_000
#: The kinds hide about the same share, so coverage cannot tell them apart; their shapes can:
#: the share of hole pixels on a hole's border (a 4-neighbour is not a hole), mean and standard
#: deviation over 3,000 of LaMa's masks measured as above (thin strokes are mostly border).
LAMA_BORDER = {
    ("lama-thin", 256): (0.1442, 0.0173),
    ("lama-medium", 256): (0.0723, 0.0420),
    ("lama-thick", 256): (0.0381, 0.0210),
    ("lama-thin", 512): (0.0975, 0.0123),
    ("lama-medium", 512): (0.0318, 0.0113),
    ("lama-thick", 512): (0.0200, 0.0154),
}
BORDER_N = 3_000


def _border_share(mask: torch.Tensor) -> float:
    hole = mask[0] > 0.5
    padded = torch.nn.functional.pad(hole[None, None].float(), (1, 1, 1, 1), mode="replicate")[0, 0]
    inner = hole.clone()
    for dy, dx in ((0, 1), (2, 1), (1, 0), (1, 2)):
        inner &= padded[dy : dy + hole.shape[0], dx : dx + hole.shape[1]] > 0.5
    return 1 - float(inner.sum()) / float(hole.sum())


def _lama(kind: str, key: str, seed: int, size: int) -> torch.Tensor:
    return draw_mask(kind, mask_kind(kind), key, seed, size)


@pytest.mark.parametrize("kind", LAMA_KINDS)
def test_lama_masks_are_binary_deterministic_and_differ_across_seeds(kind: str) -> None:
    for size in (48, 256, 600):
        first = _lama(kind, "a.jpg", 1, size)
        assert first.shape == (1, size, size) and set(first.unique().tolist()) == {0.0, 1.0}
        assert torch.equal(first, _lama(kind, "a.jpg", 1, size))
        assert not torch.equal(first, _lama(kind, "a.jpg", 2, size))
        assert not torch.equal(first, _lama(kind, "b.jpg", 1, size))
    # kinds draw from their own streams: a seed and key do not tie one kind's masks to another's
    assert not torch.equal(_lama(kind, "a.jpg", 1, 256), simulate_mask("a.jpg", 1, 256))


@pytest.mark.parametrize(("kind", "size"), list(LAMA_COVERAGE))
def test_lama_coverage_matches_lamas(kind: str, size: int) -> None:
    n = 1000 if size == 256 else 400
    shape = mask_kind(kind)
    masks = [draw_mask(kind, shape, f"img{i}.png", 0, size) for i in range(n)]
    coverages = np.array([float(m.mean()) for m in masks])
    mean, p5, p95 = LAMA_COVERAGE[(kind, size)]
    # LaMa's filter, and at least one stroke or box: every mask hides (0, 50 %]
    assert coverages.min() > 0 and coverages.max() <= 0.5
    # the mean of n masks lies within 3 standard errors of LaMa's (±0.014 at 256, ±0.021 at 512)
    assert abs(coverages.mean() - mean) < 3 * LAMA_SD * np.sqrt(1 / n + 1 / LAMA_N)
    # and so do the tails (a 5th/95th percentile of n draws moves by well under 0.01)
    assert abs(np.percentile(coverages, 5) - p5) < 0.02
    assert abs(np.percentile(coverages, 95) - p95) < 0.02
    # the shapes are LaMa's: the border share's mean within 3 standard errors of LaMa's
    border, sd = LAMA_BORDER[(kind, size)]
    shares = np.array([_border_share(m) for m in masks[:400]])
    assert abs(shares.mean() - border) < 3 * sd * np.sqrt(1 / len(shares) + 1 / BORDER_N)


def test_lama_parameters_follow_the_size_and_scale_with_it() -> None:
    assert [lama_size(s) for s in (16, 256, 362, 363, 512, 2048)] == [256] * 3 + [512] * 3
    for kind in LAMA_KINDS:  # drawn at 512, scaled exactly: the same share of the image hidden
        at_512, at_1024 = _lama(kind, "a.jpg", 3, 512), _lama(kind, "a.jpg", 3, 1024)
        assert torch.equal(at_1024[:, ::2, ::2], at_512)


def test_masks_command_draws_lama_kinds(photos: Path, tmp_path: Path) -> None:
    out = tmp_path / "m"
    code, stdout, stderr = invoke("masks", str(photos), "--out", str(out), "--seed", "5",
                                  "--size", "64", "--kind", "lama-thick", "--json")  # fmt: skip
    assert code == 0, stderr
    assert json.loads(stdout)["kind"] == "lama-thick"
    manifest = json.loads((out / "masks.json").read_text())
    assert manifest["kind"] == "lama-thick" and "coverage" not in manifest
    assert torch.equal(read_mask(out / "sub/c.png"), _lama("lama-thick", "sub/c.png", 5, 64))
    # the default kind is the thesis's, with the masks it always had
    again = tmp_path / "t"
    assert invoke("masks", str(photos), "--out", str(again), "--seed", "5", "--size", "32")[0] == 0
    assert torch.equal(read_mask(again / "a.png"), simulate_mask("a.png", 5, 32))
    assert json.loads((again / "masks.json").read_text())["kind"] == "thesis"


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (["--kind", "lama-thik"], ["--kind lama-thik", "did you mean 'lama-thick'"]),
        (["--kind", "lama-thick", "--coverage", "0.2"], ["--coverage", "lama-thick"]),
    ],
)
def test_masks_command_refuses_a_wrong_kind_and_writes_nothing(
    photos: Path, tmp_path: Path, extra: list[str], says: list[str]
) -> None:
    out = tmp_path / "m"
    code, stdout, stderr = invoke("masks", str(photos), "--out", str(out), *extra)
    assert code == 2 and stdout == ""
    assert len(stderr.strip().splitlines()) == 1 and all(s in stderr for s in says)
    assert not out.exists()


def test_mask_kinds_are_a_registry_plugins_extend() -> None:
    host = PluginHost(autoload=False).load()
    assert set(LAMA_KINDS) | {"thesis"} <= set(host.registry("eval-masks").names())

    class Square:
        def __init__(self, side: float = 0.5) -> None:
            self.side = side

        def __call__(self, size: int, generator: torch.Generator) -> torch.Tensor:
            mask = torch.zeros(1, size, size)
            mask[:, : int(size * self.side), : int(size * self.side)] = 1
            return mask

    class Plugin:
        @hookimpl
        def tttkit_register_eval_masks(self, register) -> None:  # type: ignore[no-untyped-def]
            register("square", Square)
            register("broken", lambda: lambda size, generator: torch.ones(size, size))

    host.register(Plugin(), "squares")
    shape = mask_kind("square", {"side": 0.25}, host=host)
    assert float(draw_mask("square", shape, "a.png", 0, 64).mean()) == pytest.approx(1 / 16)
    with pytest.raises(PluginContractError, match="'broken' must return a \\(1, 64, 64\\)"):
        draw_mask("broken", mask_kind("broken", host=host), "a.png", 0, 64)
    with pytest.raises(InputError, match="--coverage does not apply to --kind square"):
        mask_kind("square", {"coverage": 0.2}, host=host)
