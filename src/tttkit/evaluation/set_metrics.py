"""Set metrics (FID) of each strategy at each evaluation step, from the stored features.

Features are written during evaluation, per pair, so a set metric can be computed — or computed
again — at any time after: by rank 0 at the end of ``tttkit eval``, and by ``tttkit report`` if
the stored values are missing or older than the records. For strategy S at step t the score is
the Fréchet distance between the features of the ground truths and of S's completions at step
t, over the images that have both (a run that stopped early counts with its last output).
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from tttkit.evaluation.aggregate import carry_forward
from tttkit.evaluation.fid import frechet_distance
from tttkit.evaluation.layout import RunLayout, sha256_parts
from tttkit.evaluation.results import Record
from tttkit.io import atomic_write_bytes


def save_features(path: Any, features: np.ndarray) -> None:
    """Write a float32 feature array atomically (``.npy``)."""
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(features, np.float32), allow_pickle=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, buffer.getvalue())


def records_digest(records: Sequence[Record]) -> str:
    """Fingerprint of which pairs and steps a set of records covers."""
    items = sorted(
        f"{r['image']}\x1f{r['strategy']}\x1f{[e['step'] for e in r['evaluations']]}"
        for r in records
    )
    return sha256_parts([item.encode() for item in items])


def compute_set_metrics(
    layout: RunLayout, records: Sequence[Record], metric: str
) -> dict[str, Any]:
    """``{"metric", "digest", "values": {strategy: {step: score}}, "images": {…: {step: n}}}``.

    A (strategy, step) with fewer than two images has no score (a covariance needs two).
    """
    real: dict[str, np.ndarray] = {}
    for record in records:
        path = layout.real_features(record["image"])
        if record["image"] not in real and path.is_file():
            real[record["image"]] = np.load(path, allow_pickle=False)[0]
    steps: dict[str, list[int]] = {}  # every row's evaluation steps (runs may stop early)
    for record in records:
        known = steps.setdefault(record["strategy"], [])
        known.extend(e["step"] for e in record["evaluations"] if e["step"] not in known)
    outputs: dict[str, dict[int, list[tuple[str, np.ndarray]]]] = {}
    for record in records:
        if not record.get("features") or record["image"] not in real:
            continue
        features = np.load(layout.root / record["features"], allow_pickle=False)
        by_step = outputs.setdefault(record["strategy"], {})
        row_steps = sorted(steps[record["strategy"]])
        evaluated = [e["step"] for e in record["evaluations"]]
        for step, index in zip(row_steps, carry_forward(evaluated, row_steps), strict=True):
            by_step.setdefault(step, []).append((record["image"], features[index]))
    values: dict[str, dict[str, float]] = {}
    counts: dict[str, dict[str, int]] = {}
    for strategy, by_step in outputs.items():
        for step, items in sorted(by_step.items()):
            if len(items) < 2:
                continue
            ours = np.stack([v for _, v in items])
            theirs = np.stack([real[key] for key, _ in items])
            values.setdefault(strategy, {})[str(step)] = frechet_distance(theirs, ours)
            counts.setdefault(strategy, {})[str(step)] = len(items)
    return {"metric": metric, "digest": records_digest(records), "values": values, "images": counts}


def write_set_metrics(layout: RunLayout, data: dict[str, Any]) -> None:
    """Store set metrics in ``set_metrics.json`` (atomically)."""
    atomic_write_bytes(layout.set_metrics, (json.dumps(data, indent=2) + "\n").encode())


def load_set_metrics(
    layout: RunLayout, records: Sequence[Record], metric: str | None
) -> dict[str, Any] | None:
    """The stored set metrics if they match ``records``, else recomputed and stored again."""
    if metric is None:
        return None
    if layout.set_metrics.is_file():
        try:
            stored = json.loads(layout.set_metrics.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            stored = {}  # a damaged cache: recomputed below
        if (
            isinstance(stored, dict)
            and stored.get("digest") == records_digest(records)
            and stored.get("metric") == metric
        ):
            return stored
    data = compute_set_metrics(layout, records, metric)
    write_set_metrics(layout, data)
    return data
