from __future__ import annotations

import json
from pathlib import Path

import pytest

from tttkit.evaluation.aggregate import carry_forward, improvement
from tttkit.evaluation.layout import derive_seed
from tttkit.evaluation.results import append_record, read_records, repair
from tttkit.evaluation.runner import settings_differences, shard_pairs
from tttkit.io import InputError


def test_records_append_as_whole_lines_and_a_torn_tail_is_skipped_then_cut(
    tmp_path: Path,
) -> None:
    path = tmp_path / "shard.jsonl"
    for i in range(3):
        append_record(path, {"image": f"{i}.png", "strategy": "s", "evaluations": []})
    with path.open("ab") as handle:
        handle.write(b'{"image": "3.png", "strat')  # a write cut short
    assert [r["image"] for r in read_records(path)] == ["0.png", "1.png", "2.png"]
    assert repair(path) and path.read_bytes().endswith(b"\n")
    assert not repair(path)
    append_record(path, {"image": "3.png", "strategy": "s", "evaluations": []})
    assert len(read_records(path)) == 4


def test_a_damaged_line_in_the_middle_is_an_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "shard.jsonl"
    path.write_text('{"image": "a", "strategy": "s"}\nnot json\n{"image": "b", "strategy": "s"}\n')
    with pytest.raises(InputError, match=r"shard.jsonl:2"):
        read_records(path)


def test_seeds_depend_only_on_names() -> None:
    assert derive_seed(1, "a.png", "default") == derive_seed(1, "a.png", "default")
    assert len({derive_seed(1, "a.png", "default"), derive_seed(2, "a.png", "default"),
                derive_seed(1, "b.png", "default"), derive_seed(1, "a.png", "baseline"),
                derive_seed(1, "a.pn", "gdefault")}) == 5  # fmt: skip
    assert 0 <= derive_seed(0, "x") < 2**63


@pytest.mark.parametrize("world", [1, 2, 3])
def test_shards_cover_every_pair_once_and_share_the_expensive_ones(world: int) -> None:
    pending = [(f"{i}.png", row) for i in range(5) for row in ("none", "opencv-ns", "a", "b")]
    shares = [shard_pairs(pending, {"a", "b"}, rank, world) for rank in range(world)]
    assert sorted(p for share in shares for p in share) == sorted(pending)
    expensive = [sum(1 for p in share if p[1] in "ab") for share in shares]
    assert max(expensive) - min(expensive) <= 1
    for share in shares:
        assert share == [p for p in pending if p in share]  # image-major order kept


def test_settings_differences_name_the_setting() -> None:
    old = {"size": 64, "rows": {"s": {"strategy": {"steps": 2}}}, "info": {"device": "cpu"}}
    new = json.loads(json.dumps(old))
    new["rows"]["s"]["strategy"]["steps"] = 3
    new["info"]["device"] = "cuda"  # where it ran is not a setting
    assert settings_differences(old, new) == ["rows.s.strategy.steps: 2 in the run, 3 now"]


def test_improvement_sign_follows_the_metric_direction() -> None:
    assert improvement(0.10, 0.09, "l1") == pytest.approx(10.0)
    assert improvement(20.0, 22.0, "psnr") == pytest.approx(10.0)
    assert improvement(50.0, 55.0, "FID-VGG16") == pytest.approx(-10.0)
    assert improvement(0.0, 1.0, "l1") != improvement(0.0, 1.0, "l1")  # NaN: undefined


def test_carry_forward_keeps_the_last_output_of_a_run_that_stopped_early() -> None:
    assert carry_forward([0, 5, 10], [0, 5, 10, 15, 20]) == [0, 1, 2, 2, 2]
    assert carry_forward([0], [0]) == [0]
