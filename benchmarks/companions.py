"""The companion benchmark: test-time training on other shots of the same scene (issue 32).

    python benchmarks/companions.py run OUT --photos PHOTOS/tuning --split tuning [--scenes 20]
        [--steps 30] [--share 0.5] [--aligner homography] [--reference-masks random|holes]
        [--weights W] [--seed 0] [--reuse OTHER_OUT]
    python benchmarks/companions.py run OUT --real REAL_SCENES --split real [...]
    python benchmarks/companions.py report OUT --split reporting [--json F]
    python benchmarks/companions.py grid OUT --split reporting --figure docs/images/x.jpg

Scenes are made from photos nobody trained on (``benchmarks/photos``: the tuning split to
choose settings, the reporting split to report them once; a photo never changes side). Each
photo, scaled to a short side of 512, gives one scene, seeded by its name:

* the **target**: a 256² crop, with a LaMa "thick" hole (``tttkit masks --kind lama-thick``);
* 1–3 **companions**: shots of the same place rendered from the photo around the target, each
  moved (±32 px), zoomed (0.85–1.15×), turned (±6°), exposed differently (gain 0.8–1.25, offset
  ±0.03) and noisier (σ 0.01–0.03): the hidden content is visible in them;
* the **control**: as many shots made the same way from another photo of the split.

Four fills per scene, all with the default strategy and the same seed: the raw fill (no
finetuning), TTT on the target alone, TTT with the companions, TTT with the control. Per
scene: hole L1, PSNR, LPIPS-alt (the shared VGG16 trunk, when ``TTTKIT_LPIPS_WEIGHTS`` names
it), HaarPSI, GMSD and seconds. ``report`` gives paired improvements with bootstrap intervals
over scenes. Resumable: finished scenes are in ``OUT/SPLIT/scenes.jsonl``.

``--reuse OTHER_OUT`` copies the raw fill and TTT alone from another run of the same split,
steps, weights and seed (neither depends on the reference options), so comparing reference
options costs two runs a scene instead of four.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import random
import statistics
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quality import bootstrap_interval

from tttkit.references import DEFAULT_MASKS, REFERENCE_MASKS

SIDE, TARGET = 512, 256
VARIANTS = ("raw", "alone", "with", "control")
REUSABLE = ("raw", "alone")  # runs that see no reference
METRICS = {  # name: lower is better
    "l1_hole": True, "psnr": False, "lpips_alt": True, "lpips": True, "haarpsi": False,
    "gmsd": True,
}  # fmt: skip


def _seed(name: str, seed: int) -> int:
    return int(hashlib.sha256(f"{name}:{seed}".encode()).hexdigest()[:12], 16)


def _base(path: Path) -> torch.Tensor:
    from tttkit.io import read_image
    from tttkit.windows import area_downscale

    image = read_image(path, dtype=torch.uint8)
    height, width = image.shape[-2:]
    factor = SIDE / min(height, width)
    size = (round(height * factor), round(width * factor))
    return area_downscale(image, size) if factor < 1 else image.float() / 255


def _shot(base: torch.Tensor, centre: tuple[float, float], rng: random.Random) -> torch.Tensor:
    """Another shot around ``centre`` of ``base``: moved, zoomed, turned, exposed, noisy."""
    import cv2

    angle, zoom = rng.uniform(-6, 6), rng.uniform(0.85, 1.15)
    cx, cy = centre[0] + rng.uniform(-32, 32), centre[1] + rng.uniform(-32, 32)
    side = TARGET + 32
    matrix = cv2.getRotationMatrix2D((cx, cy), angle, zoom)
    matrix[:, 2] += (side / 2 - cx, side / 2 - cy)
    picture = base.permute(1, 2, 0).numpy()
    warped = cv2.warpAffine(picture, matrix, (side, side), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_REFLECT)  # fmt: skip
    shot = torch.from_numpy(warped).permute(2, 0, 1)
    shot = shot * rng.uniform(0.8, 1.25) + rng.uniform(-0.03, 0.03)
    noise = torch.randn(shot.shape, generator=torch.Generator().manual_seed(rng.randrange(2**31)))
    return (shot + rng.uniform(0.01, 0.03) * noise).clamp(0, 1)


def _target(base: torch.Tensor, rng: random.Random) -> tuple[torch.Tensor, torch.Tensor, tuple]:
    """A seeded 256² crop of ``base``, its LaMa "thick" holes, and the crop's centre."""
    import tttkit

    height, width = base.shape[-2:]
    top = rng.randrange(48, height - TARGET - 48)
    left = rng.randrange(48, width - TARGET - 48)
    target = base[:, top : top + TARGET, left : left + TARGET].clone()
    kind = tttkit.registry("eval-masks").get("lama-thick")()
    holes = kind(TARGET, torch.Generator().manual_seed(rng.randrange(2**31)))
    return target, holes, (left + TARGET / 2, top + TARGET / 2)


def make_scene(photo: Path, other: Path, seed: int) -> dict[str, Any]:
    """The target, its holes, its companions and the control shots of one photo."""
    rng = random.Random(_seed(photo.name, seed))
    base = _base(photo)
    target, holes, centre = _target(base, rng)
    count = rng.randint(1, 3)
    companions = [_shot(base, centre, rng) for _ in range(count)]
    other_base = _base(other)
    o_height, o_width = other_base.shape[-2:]
    control = [_shot(other_base, (o_width / 2, o_height / 2), rng) for _ in range(count)]
    return {"target": target, "holes": holes, "companions": companions, "control": control}


def make_real_scene(folder: Path, row: dict, other: dict, seed: int) -> dict[str, Any]:
    """A scene of real shots (``benchmarks/photos/companion_scenes.py``): the target crop of
    ``row``'s target shot; its companions are the other shots, whole (scaled to a short side
    of 512 like the target's shot); the control, ``other`` scene's companions."""
    rng = random.Random(_seed(row["target"], seed))
    target, holes, _ = _target(_base(folder / row["target"]), rng)
    shots = [[_base(folder / name) for name in r["companions"].split(";")] for r in (row, other)]
    return {"target": target, "holes": holes, "companions": shots[0], "control": shots[1]}


def scenes(args: argparse.Namespace) -> list[tuple[str, str, Any]]:
    """``(name, control's name, make)`` of each scene: from ``--photos`` (one made-up scene a
    photo) or from ``--real`` (a folder written by ``companion_scenes.py``). A scene's control
    comes from the next one."""
    if args.real:
        with (args.real / "scenes.csv").open() as handle:
            rows = list(csv.DictReader(handle))[: args.scenes]
        pairs = [(row, rows[(i + 1) % len(rows)]) for i, row in enumerate(rows)]
        return [(row["target"], other["target"],
                 partial(make_real_scene, args.real, row, other, args.seed))
                for row, other in pairs]  # fmt: skip
    photos = sorted(p for p in args.photos.iterdir() if p.is_file())[: args.scenes]
    pairs = [(photo, photos[(i + 1) % len(photos)]) for i, photo in enumerate(photos)]
    return [(photo.name, other.name, partial(make_scene, photo, other, args.seed))
            for photo, other in pairs]  # fmt: skip


def _metrics(fill: torch.Tensor, truth: torch.Tensor, holes: torch.Tensor, lpips: Any) -> dict:
    from tttkit.evaluation.lpips_metric import perceptual_metrics
    from tttkit.metrics import image_metrics

    scores = image_metrics(fill[None], truth[None], holes[None])
    scores.update(perceptual_metrics(fill[None], truth, lpips)[0])
    return {k: float(v) for k, v in scores.items()}


def run(args: argparse.Namespace) -> None:
    import tttkit
    from tttkit.evaluation.lpips_metric import resolve_lpips
    from tttkit.io import write_image

    torch.set_num_threads(args.threads) if args.threads else None
    folder = args.out / args.split
    (folder / "fills").mkdir(parents=True, exist_ok=True)
    results = folder / "scenes.jsonl"
    done = {json.loads(line)["photo"] for line in results.open()} if results.exists() else set()
    lpips = resolve_lpips("auto")
    reused = _reusable(args.reuse / args.split, args.seed) if args.reuse else {}
    for name, control_name, make in scenes(args):
        if name in done:
            continue
        scene = make()
        target, holes = scene["target"], scene["holes"]
        fills = folder / "fills" / Path(name).stem  # + "_VARIANT.png"
        row: dict[str, Any] = {
            "photo": name, "control_photo": control_name,
            "references": len(scene["companions"]), "seed": args.seed,
        }  # fmt: skip
        common = {"strategy": "default", "seed": args.seed, "weights": args.weights}
        for variant in VARIANTS:
            if variant in REUSABLE and name in reused:
                row[variant] = reused[name][variant]
                source = args.reuse / args.split / "fills" / f"{fills.name}_{variant}.png"
                (folder / "fills" / source.name).write_bytes(source.read_bytes())
                continue
            refs = {"with": scene["companions"], "control": scene["control"]}.get(variant)
            started = time.perf_counter()
            result = tttkit.adapt(
                target, holes, references=refs, reference_share=args.share,
                reference_aligner=args.aligner, reference_masks=args.reference_masks,
                steps=0 if variant == "raw" else args.steps,
                **common,
            )  # fmt: skip
            seconds = time.perf_counter() - started
            notices = [n for n in result.notices if n.startswith("reference")]
            scores = _metrics(result.finetuned, target, holes, lpips)
            row[variant] = {**scores, "seconds": seconds, "notices": notices}
            write_image(f"{fills}_{variant}.png", result.finetuned)
        write_image(f"{fills}_target.png", target)
        write_image(f"{fills}_masked.png", target * (1 - holes))
        write_image(f"{fills}_ref0.png", scene["companions"][0])
        with results.open("a") as handle:
            handle.write(json.dumps(row) + "\n")
        print(f"{name}: hole L1 raw {row['raw']['l1_hole']:.4f}, alone "
              f"{row['alone']['l1_hole']:.4f}, with {row['with']['l1_hole']:.4f}, control "
              f"{row['control']['l1_hole']:.4f}", flush=True)  # fmt: skip


def _reusable(folder: Path, seed: int) -> dict[str, dict]:
    """Rows of another run (same split) whose variants without references can be copied."""
    rows = [json.loads(line) for line in (folder / "scenes.jsonl").open()]
    return {r["photo"]: r for r in rows if r["seed"] == seed}


def improvement(rows: list[dict], metric: str, base: str, other: str) -> dict[str, Any]:
    """Mean improvement of ``other`` over ``base`` in % of ``base``'s mean, with a bootstrap
    interval over scenes, and the share of scenes where ``other`` is worse."""
    lower = METRICS[metric]
    pairs = [(r[base][metric], r[other][metric]) for r in rows if metric in r[base]]
    if not pairs:
        return {}
    scale = statistics.fmean(b for b, _ in pairs)
    gains = {
        str(i): [100 * ((b - o) if lower else (o - b)) / scale] for i, (b, o) in enumerate(pairs)
    }
    values = [g[0] for g in gains.values()]
    low, high = bootstrap_interval(gains)
    return {"base": scale, "other": statistics.fmean(o for _, o in pairs),
            "gain": statistics.fmean(values), "ci": (low, high),
            "worse": sum(v < 0 for v in values) / len(values)}  # fmt: skip


def report(args: argparse.Namespace) -> dict[str, Any]:
    rows = [json.loads(line) for line in (args.out / args.split / "scenes.jsonl").open()]
    table: dict[str, Any] = {"scenes": len(rows)}
    print(f"{args.split}: {len(rows)} scenes")
    for base, other in (("raw", "with"), ("alone", "with"), ("alone", "control"), ("raw", "alone")):
        for metric in METRICS:
            found = improvement(rows, metric, base, other)
            if not found:
                continue
            table[f"{other}_vs_{base}_{metric}"] = found
            low, high = found["ci"]
            print(f"  {other:>7} vs {base:<5} {metric:>9}: {found['base']:.4f} → "
                  f"{found['other']:.4f}, {found['gain']:+.2f}% ({low:+.2f} … {high:+.2f}), "
                  f"worse on {found['worse']:.0%}")  # fmt: skip
    ratio = [r["with"]["seconds"] / r["alone"]["seconds"] for r in rows]
    table["time_ratio"] = statistics.fmean(ratio)
    print(f"  time with references / alone: {table['time_ratio']:.2f}× "
          f"(max {max(ratio):.2f}×)")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(table, indent=2))
    return table


def grid(args: argparse.Namespace) -> None:
    from PIL import Image

    fills = args.out / args.split / "fills"
    rows = [json.loads(line) for line in (args.out / args.split / "scenes.jsonl").open()]
    chosen = random.Random(0).sample(rows, min(args.count, len(rows)))
    columns = ("masked", "ref0", "alone", "with", "target")
    tile = TARGET
    sheet = Image.new("RGB", (tile * len(columns), tile * len(chosen)), "white")
    for r, row in enumerate(chosen):
        stem = Path(row["photo"]).stem
        for c, column in enumerate(columns):
            picture = Image.open(fills / f"{stem}_{column}.png").convert("RGB")
            sheet.paste(picture.resize((tile, tile)), (c * tile, r * tile))
    args.figure.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.figure, quality=85)
    print(f"{args.figure}: columns {', '.join(columns)}; rows {[r['photo'] for r in chosen]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    runner = commands.add_parser("run")
    runner.add_argument("out", type=Path)
    source = runner.add_mutually_exclusive_group(required=True)
    source.add_argument("--photos", type=Path, help="one made-up scene per photo")
    source.add_argument("--real", type=Path, help="real scenes (companion_scenes.py's folder)")
    runner.add_argument("--split", required=True)
    runner.add_argument("--scenes", type=int, default=20)
    runner.add_argument("--steps", type=int, default=30)
    runner.add_argument("--share", type=float, default=0.5)
    runner.add_argument("--aligner", default="homography")
    runner.add_argument("--reference-masks", choices=REFERENCE_MASKS, default=DEFAULT_MASKS)
    runner.add_argument("--weights", type=Path)
    runner.add_argument("--seed", type=int, default=0)
    runner.add_argument("--threads", type=int, default=0)
    runner.add_argument("--reuse", type=Path, help="copy raw and alone from this run's OUT")
    reporter = commands.add_parser("report")
    reporter.add_argument("out", type=Path)
    reporter.add_argument("--split", required=True)
    reporter.add_argument("--json", type=Path)
    gridder = commands.add_parser("grid")
    gridder.add_argument("out", type=Path)
    gridder.add_argument("--split", required=True)
    gridder.add_argument("--figure", type=Path, required=True)
    gridder.add_argument("--count", type=int, default=6)
    args = parser.parse_args()
    {"run": run, "report": report, "grid": grid}[args.command](args)


if __name__ == "__main__":
    main()
