"""A careless or hostile user at the command line: each case exits with a code, a message that
names the culprit, no traceback, and leaves every file the user had as it was."""

from __future__ import annotations

import hashlib
import shutil
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tttkit.cli import app

ENV = {"NO_COLOR": "1", "COLUMNS": "200", "TERM": "dumb"}
SENTINEL = b"the user's own file, which no failed run may touch"


@dataclass(frozen=True)
class Case:
    """One bad input: the command line, the exit code and what the message must say."""

    id: str
    args: tuple[str, ...]
    says: tuple[str, ...]
    code: int = 2
    prepare: Callable[[Path, dict[str, Path]], None] | None = None


def inpaint(*extra: str, image: str = "{photo}", mask: str = "{mask}") -> tuple[str, ...]:
    """``tttkit inpaint`` on the good files with ``extra`` options (the last value wins)."""
    base = ("inpaint", image, "--mask", mask, "--weights", "{weights}", "--device", "cpu")
    return (*base, "--steps", "1", "--out", "{dir}/out.png", *extra)


#: The zoo's tiny backbone, for weights files without tttkit metadata.
TINY = ("--backbone-option", "width=8", "--backbone-option", "residual_blocks=2")


def eval_(*extra: str) -> tuple[str, ...]:
    return (
        "eval", "{images}", "--masks", "{masks}", "--strategy", "default", "--weights",
        "{weights}", "--steps", "1", "--device", "cpu", "--out", "{dir}/run", *extra,
    )  # fmt: skip


def pretrain(*extra: str) -> tuple[str, ...]:
    return (
        "pretrain", "{images}", "--backbone", "attention-net-compact", "--backbone-option",
        "width=8", "--out", "{dir}/net.safetensors", "--steps", "1", "--batch-size", "1",
        "--size", "32", "--holdout", "0", "--loss", "perceptual=0", "--device", "cpu", *extra,
    )  # fmt: skip


def _resume_state(content: bytes) -> Callable[[Path, dict[str, Path]], None]:
    def prepare(work: Path, zoo: dict[str, Path]) -> None:
        shutil.copy(zoo["weights"], work / "old.safetensors")
        (work / "old.safetensors.state.pt").write_bytes(content)

    return prepare


CASES = [
    # -- inpaint: the photo ----------------------------------------------------------------
    Case("image-missing", inpaint(image="{dir}/nope.png"), ("nope.png", "does not exist")),
    Case("image-directory", inpaint(image="{folder}"), ("folder.png", "directory")),
    Case("image-fifo", inpaint(image="{fifo}"), ("fifo.png", "not a regular file")),
    Case("image-empty-file", inpaint(image="{empty}"), ("empty.png", "empty")),
    Case("image-text", inpaint(image="{text}"), ("text.png", "not an image")),
    Case("image-truncated-jpeg", inpaint(image="{truncated}"), ("truncated.jpg", "truncated")),
    Case(
        "image-truncated-png", inpaint(image="{truncated_png}"), ("truncated_png.png", "truncated")
    ),
    Case("image-nan-tiff", inpaint(image="{nan}"), ("nan.tiff", "not finite")),
    Case(
        "image-8x8",
        inpaint(image="{tiny8}", mask="{tiny8_mask}"),
        ("tiny8.png", "8×8", "too small"),
    ),
    # a narrow strip is completed in a window as long as the square it cannot hold
    Case(
        "image-4000x16-succeeds",
        (*inpaint(image="{strip}", mask="{strip_mask}"), "--out", "{dir}/strip_out.png"),
        (),
        code=0,
    ),
    Case("image-bomb", inpaint(image="{bomb}"), ("bomb.png", "megapixels", "--max-pixels")),
    Case(
        "image-over-max-pixels",
        inpaint("--max-pixels", "1000"),
        ("photo.png", "64×64", "--max-pixels"),
    ),
    Case("max-pixels-zero", inpaint("--max-pixels", "0"), ("--max-pixels",)),
    # -- inpaint: the mask -----------------------------------------------------------------
    Case("mask-missing", inpaint(mask="{dir}/nope.png"), ("nope.png", "does not exist")),
    Case("mask-directory", inpaint(mask="{folder}"), ("folder.png", "directory")),
    Case("mask-fifo", inpaint(mask="{fifo}"), ("fifo.png", "not a regular file")),
    Case("mask-zero-one", inpaint(mask="{mask01}"), ("mask01.png", "255", "white")),
    Case("mask-16bit-0-255", inpaint(mask="{mask16}"), ("mask16.png", "65535", "white")),
    Case("mask-all-white", inpaint(mask="{mask_white}"), ("covers 100%",)),
    Case("mask-other-size", inpaint(mask="{mask_small}"), ("mask_small.png", "--resize-mask")),
    Case("mask-truncated", inpaint(mask="{truncated}"), ("truncated.jpg", "truncated")),
    # -- inpaint: outputs, checked before any work -----------------------------------------
    Case("out-directory", inpaint("--out", "{folder}"), ("--out", "folder.png", "directory")),
    Case(
        "out-under-a-file", inpaint("--out", "{a_file}/x.png"), ("--out", "a_file", "not a folder")
    ),
    Case("out-unwritable", inpaint("--out", "/proc/tttkit-out.png"), ("--out", "/proc")),
    Case("out-bad-extension", inpaint("--out", "{dir}/out.xyz"), ("--out", ".xyz")),
    Case("out-is-the-photo", inpaint("--out", "{photo}"), ("--out", "photo.png", "input")),
    Case("out-is-the-mask", inpaint("--out", "{mask}"), ("--out", "mask.png", "input")),
    Case(
        "save-raw-same-as-out",
        inpaint("--save-raw", "{dir}/out.png"),
        ("--save-raw", "--out", "same"),
    ),
    Case("save-raw-bad-extension", inpaint("--save-raw", "{dir}/raw.xyz"), ("--save-raw", ".xyz")),
    Case("save-raw-directory", inpaint("--save-raw", "{folder}"), ("--save-raw", "directory")),
    Case("ground-truth-other-size", inpaint("--ground-truth", "{tiny8}"), ("tiny8.png", "size")),
    Case("ground-truth-missing", inpaint("--ground-truth", "{dir}/gt.png"), ("gt.png",)),
    # -- inpaint: option values ------------------------------------------------------------
    Case("lr-inf", inpaint("--lr", "inf"), ("--lr", "finite")),
    Case("lr-nan", inpaint("--lr", "nan"), ("--lr",)),
    Case("lr-negative", inpaint("--lr", "-1"), ("--lr",)),
    Case("steps-negative", inpaint("--steps", "-3"), ("--steps",)),
    Case("seed-65-bit", inpaint("--seed", str(2**65)), ("--seed",)),
    Case("seed-negative", inpaint("--seed", "-1"), ("--seed",)),
    Case(
        "windows-bogus",
        inpaint("--windows", "bogus"),
        ("error: --windows must be one of crop, resize, full, got 'bogus'",),
    ),
    Case(  # the old name is named as typed, with the new one (issue 30, item 15)
        "region-bogus",
        inpaint("--region", "bogus"),
        ("--region (now --windows) must be one of crop, resize, full, got 'bogus'",),
    ),
    Case("device-bogus", inpaint("--device", "toaster"), ("--device", "toaster")),
    Case("precision-bogus", inpaint("--precision", "fp7"), ("--precision", "fp7")),
    Case("select-bogus", inpaint("--select", "median"), ("select", "median")),
    Case("set-lr-nan", inpaint("--set", "optim.lr=NaN"), ("optim.lr", "finite")),
    Case("set-lr-negative", inpaint("--set", "optim.lr=-1"), ("optim.lr",)),
    Case("set-wrong-type", inpaint("--set", "steps=abc"), ("steps", "integer")),
    Case("set-unknown-field", inpaint("--set", "stpes=3"), ("stpes", "steps")),
    Case("set-no-value", inpaint("--set", "steps"), ("--set", "steps")),
    Case("set-loss-weight-inf", inpaint("--set", "losses.l1=Infinity"), ("losses.l1", "finite")),
    Case(
        "set-bad-param-type",
        inpaint("--set", "finetune_mask.params.alpha=x"),
        ("finetune_mask", "alpha"),
    ),
    Case("set-bad-optimizer", inpaint("--set", "optim.name=adamw"), ("optim.name", "adamw")),
    Case("set-betas-out-of-range", inpaint("--set", "optim.betas=[2, 0.9]"), ("optim.betas",)),
    Case("augment-bad-probability", inpaint("--augment", "lr-flip:2"), ("--augment", "lr-flip")),
    Case("augment-unknown", inpaint("--augment", "lr-flipp"), ("lr-flipp", "lr-flip")),
    Case("freeze-unknown", inpaint("--freeze", "everything"), ("everything", "freezing policy")),
    Case(
        "freeze-pattern-matching-no-group",
        inpaint("--freeze", "freeze-groups", "--set", 'freeze.params.patterns=["generator.nope"]'),
        ("freeze:", "'generator.nope'", "generator.encoder", "generator.decoder.3"),
    ),
    Case(
        "freeze-leaving-nothing-to-train",
        inpaint("--freeze", "freeze-groups", "--set", 'freeze.params.patterns=["*"]'),
        ("freeze:", "leaves nothing of the generator", "--steps 0"),
    ),
    Case(
        "freeze-norm-only-target-matching-no-group",
        inpaint("--freeze", "norm-only", "--set", 'freeze.params.targets=["generator.nope"]'),
        ("freeze:", "norm-only", "'generator.nope'", "generator.encoder"),
    ),
    Case("filler-unknown", inpaint("--filler", "black-hole"), ("black-hole", "filler")),
    Case("strategy-unknown", inpaint("--strategy", "defualt"), ("defualt", "default")),
    Case("backbone-unknown", inpaint("--backbone", "lama2"), ("lama2", "lama")),
    Case("backbone-option-bad-value", inpaint("--backbone-option", "width=abc"), ("width", "abc")),
    Case("backbone-option-unknown", inpaint("--backbone-option", "depth=3"), ("depth",)),
    Case(
        "backbone-option-vs-checkpoint",
        inpaint("--backbone-option", "width=16"),
        ("width", "weights.safetensors"),
    ),
    # -- inpaint: weights ------------------------------------------------------------------
    Case(
        "weights-missing",
        inpaint("--weights", "{dir}/nope.safetensors"),
        ("nope.safetensors", "does not exist"),
    ),
    Case("weights-directory", inpaint("--weights", "{weights_dir}"), ("weights_dir", "directory")),
    Case("weights-corrupt", inpaint("--weights", "{corrupt}"), ("corrupt.safetensors",)),
    Case("weights-text-pt", inpaint("--weights", "{junk}"), ("junk.pt",)),
    Case("weights-pickle-payload", inpaint("--weights", "{evil}"), ("evil.pt", "weights_only")),
    Case("weights-foreign-pt", inpaint("--weights", "{foreign}"), ("foreign.pt",)),
    Case(
        "weights-generator-only",
        inpaint("--weights", "{generator_only}", *TINY),
        (
            "generator_only.pt",
            "missing keys",
            "the keys differ only by the prefix 'generator.', which the file's lack",
            "override tttkit.Backbone.convert_state_dict(state)",
            "discriminator tensors",
        ),
    ),
    Case(
        "weights-other-backbone-named",
        inpaint("--backbone", "attention-net-compact", "--weights", "{other_backbone}"),
        ("other_backbone", "attention-net-small"),
    ),
    Case(
        "weights-other-backbone-unnamed",
        (*inpaint("--weights", "{other_backbone}"), "--out", "{dir}/other.png"),
        ("other_backbone", "attention-net-small", "using it"),
        code=0,
    ),
    Case(
        "perceptual-weights-missing",
        inpaint("--strategy", "optimal", "--perceptual-weights", "{dir}/vgg.safetensors"),
        ("vgg.safetensors",),
    ),
    # -- masks, eval, report ---------------------------------------------------------------
    Case("masks-folder-missing", ("masks", "{dir}/nope", "--out", "{dir}/m"), ("nope",)),
    Case("masks-no-images", ("masks", "{no_images}", "--out", "{dir}/m"), ("no_images",)),
    Case(
        "masks-out-is-a-file",
        ("masks", "{images}", "--out", "{a_file}"),
        ("--out", "a_file", "not a folder"),
    ),
    Case(
        "masks-seed-65-bit",
        ("masks", "{images}", "--out", "{dir}/m", "--seed", str(2**65)),
        ("--seed",),
    ),
    Case(
        "lpips-trunk-junk",
        inpaint("--ground-truth", "{photo}", "--lpips-weights", "{junk}"),
        ("LPIPS trunk", "junk.pt"),
    ),
    Case(
        "lpips-trunk-folder",
        eval_("--lpips-weights", "{folder}"),
        ("--lpips-weights", "folder.png", "is not a file"),
    ),
    Case(
        "lpips-trunk-pickle-payload",
        inpaint("--ground-truth", "{photo}", "--lpips-weights", "{evil}"),
        ("LPIPS trunk", "evil.pt"),
    ),
    Case("lpips-mode-unknown", eval_("--lpips", "alex"), ("--lpips must be one of",)),
    Case(
        "masks-kind-unknown",
        ("masks", "{images}", "--out", "{dir}/m", "--kind", "lama-thik"),
        ("--kind", "lama-thick"),
    ),
    Case(
        "masks-coverage-for-lama-kind",
        ("masks", "{images}", "--out", "{dir}/m", "--kind", "lama-thick", "--coverage", "0.2"),
        ("--coverage", "lama-thick"),
    ),
    Case("eval-out-is-a-file", eval_("--out", "{a_file}"), ("--out", "a_file", "not a folder")),
    # no --masks: LaMa's layout, and a folder of photos only has no masks beside them
    Case(
        "eval-no-masks-anywhere",
        tuple(a for a in eval_() if a not in ("--masks", "{masks}")),
        ("--masks", "name_mask000.png"),
    ),
    Case(
        "eval-resume-corrupt-run-json",
        eval_("--out", "{dir}/run", "--resume"),
        ("run.json",),
        prepare=lambda w, z: shutil.copytree(z["corrupt_run"], w / "run"),
    ),
    Case("eval-masks-missing", eval_("--masks", "{dir}/nope"), ("nope",)),
    Case("eval-strategy-unknown", eval_("--strategy", "defualt"), ("defualt",)),
    Case("eval-set-nan", eval_("--set", "optim.lr=NaN"), ("optim.lr",)),
    Case("eval-seed-65-bit", eval_("--seed", str(2**65)), ("--seed",)),
    Case("report-missing", ("report", "{dir}/nope"), ("nope",)),
    Case("report-corrupt-run-json", ("report", "{corrupt_run}"), ("run.json",)),
    Case(
        "report-out-is-a-file",
        ("report", "{corrupt_run}", "--out", "{a_file}"),
        ("--out", "a_file"),
    ),
    # -- pretrain ----------------------------------------------------------------------------
    Case(
        "pretrain-out-not-safetensors", pretrain("--out", "{dir}/net.pt"), ("--out", ".safetensors")
    ),
    Case(
        "pretrain-out-under-a-file",
        pretrain("--out", "{a_file}/net.safetensors"),
        ("--out", "a_file", "not a folder"),
    ),
    Case(
        "pretrain-resume-missing",
        pretrain("--resume", "{dir}/nope.safetensors"),
        ("nope.safetensors",),
    ),
    Case(
        "pretrain-resume-truncated-state",
        pretrain("--resume", "{dir}/old.safetensors"),
        ("old.safetensors.state.pt",),
        prepare=_resume_state(b"PK\x03\x04 truncated"),
    ),
    Case(
        "pretrain-resume-foreign-state",
        pretrain("--resume", "{dir}/old.safetensors"),
        ("old.safetensors.state.pt",),
        prepare=_resume_state(b"\x80\x04K\x01."),
    ),
    Case(
        "pretrain-backbone-option-bad-value",
        pretrain("--backbone-option", "width=abc"),
        ("width", "abc"),
    ),
    Case("pretrain-loss-unknown", pretrain("--loss", "vgg=1"), ("--loss", "vgg")),
    Case("pretrain-seed-65-bit", pretrain("--seed", str(2**65)), ("--seed",)),
    # -- list, strategies --------------------------------------------------------------------
    Case("list-unknown-kind", ("list", "backbone"), ("backbone", "backbones")),
    Case("strategies-show-unknown", ("strategies", "show", "defualt"), ("defualt", "default")),
    Case(
        "strategies-show-bad-set",
        ("strategies", "show", "default", "--set", "optim.lr=NaN"),
        ("optim.lr",),
    ),
    Case(
        "set-pipeline-step-out-of-range",
        inpaint("--set", "augment.steps.9.p=0.3"),
        ("cannot set augment.steps.9.p: augment.steps is a list of 5, indexed 0–4",),
    ),
    Case(
        "set-pipeline-step-not-a-number",
        ("strategies", "show", "default", "--set", "augment.steps.last.p=0.3"),
        ("augment.steps is a list of 5", "e.g. augment.steps.0.p"),
    ),
    Case(
        "set-step-of-an-empty-pipeline",
        ("strategies", "show", "baseline", "--set", "augment.steps.0.p=0.3"),
        ("augment.steps is empty in this strategy", "--augment NAME[:p]", "augment.steps='[{"),
    ),
    Case(
        "set-pipeline-step-unknown-field",
        ("strategies", "show", "default", "--set", "augment.steps.0.probability=0.3"),
        ("unknown field augment.steps.0.probability", "ops, p, then_other_p, unless"),
    ),
]


@pytest.fixture
def work(tmp_path: Path) -> Iterator[Path]:
    """A folder with an output file the user already had."""
    (tmp_path / "out.png").write_bytes(SENTINEL)
    yield tmp_path


def _digest(paths: list[Path]) -> dict[Path, str]:
    return {
        p: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in paths
        if p.is_file() and not p.is_fifo()
    }


class _Hang(Exception):
    pass


def _alarm(signum: int, frame: object) -> None:
    raise _Hang


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_command_line(case: Case, work: Path, zoo: dict[str, Path]) -> None:
    if case.prepare is not None:
        case.prepare(work, zoo)
    names = {**{k: str(v) for k, v in zoo.items()}, "dir": str(work)}
    args = [a.format(**names) for a in case.args]
    before = _digest([*zoo.values(), *work.rglob("*")])
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(60)  # a hang (e.g. reading a FIFO) fails the case instead of the suite
    try:
        result = CliRunner().invoke(app, args, env=ENV)
    except _Hang:
        pytest.fail(f"tttkit {' '.join(args)} hung")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    message = result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"uncaught {type(result.exception).__name__}: {result.exception}"
    )
    assert "Traceback" not in message + result.stdout
    assert result.exit_code == case.code, message
    for needle in case.says:
        assert needle.lower() in message.lower(), f"{needle!r} not in: {message}"
    assert _digest(list(before)) == before, "a file the user had was changed"
    assert not (zoo["photo"].parent / "pwned.txt").exists()
