"""Pretraining a backbone from scratch (thesis §3.3), resumable and data-parallel.

Random rescales and crops of the training photos, free-form masks mixed with boxes (as LaMa
mixes them), the thesis's four losses on foreground and background with weights 1, 1, 0.1, 0.4,
Adam. A checkpoint pair is written every ``checkpoint_every`` steps: ``OUT`` (safetensors,
the network, loadable by ``tttkit inpaint --weights``) and ``OUT.state.pt`` (optimizers, RNG
states, step — read back with ``weights_only=True``), so ``--resume OUT`` continues exactly.
``OUT.best.safetensors`` keeps the network with the best validation hole-L1 so far.
Under ``torchrun`` each process draws its own batches and gradients are averaged across
processes before every update (what DistributedDataParallel does), so N processes train like one
with an N-times larger batch; rank 0 writes checkpoints and logs.
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

from tttkit.backbone import Backbone
from tttkit.checkpoint import load_weights, read_metadata, save_backbone
from tttkit.components import free_form_masks
from tttkit.config import LossSpec
from tttkit.engine.execution import no_weight_grads
from tttkit.engine.losses import discriminator_loss, generator_losses
from tttkit.imageops import center_crop_resize
from tttkit.io import IMAGE_SUFFIXES, InputError, atomic_write_bytes, read_image
from tttkit.metrics import image_metrics

#: The thesis's pretraining losses: on foreground and background, weights 1, 1, 0.1, 0.4.
PRETRAIN_LOSSES = LossSpec(l1=1.0, structural=1.0, perceptual=0.1, adversarial=0.4, background=True)


@dataclass(frozen=True)
class PretrainConfig:
    """Settings of a pretraining run (stored in every checkpoint; resume refuses a mismatch).

    Attributes:
        backbone: registered backbone name.
        backbone_config: keyword arguments of the backbone factory.
        size: training crop size (the backbone's working size).
        steps: total optimisation steps.
        batch_size: crops per step and process.
        lr: Adam learning rate of generator and discriminator.
        betas: Adam betas.
        box_probability: share of masks that are rectangles instead of free-form strokes.
        mask_coverage: (min, max) fraction of a crop that a free-form mask hides.
        checkpoint_every: steps between checkpoints.
        validate_every: steps between validation passes.
        seed: seed of data sampling and initialisation.
        losses: loss weights.
    """

    backbone: str
    backbone_config: dict[str, Any]
    size: int = 256
    steps: int = 10_000
    batch_size: int = 8
    lr: float = 2e-4
    betas: tuple[float, float] = (0.0, 0.9)
    box_probability: float = 0.3
    mask_coverage: tuple[float, float] = (0.1, 0.45)
    checkpoint_every: int = 250
    validate_every: int = 250
    seed: int = 0
    losses: LossSpec = PRETRAIN_LOSSES

    def to_json(self) -> str:
        """JSON text, for checkpoint metadata."""
        return json.dumps(asdict(self), sort_keys=True)


def list_images(folder: str | Path) -> list[Path]:
    """Image files under ``folder`` (recursively), sorted; errors name the folder."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"image folder {folder} does not exist")
    paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise InputError(f"image folder {folder} contains no images")
    return paths


def split_holdout(
    paths: Sequence[Path], holdout: int, seed: int = 0
) -> tuple[list[Path], list[Path]]:
    """Split into (training, validation): ``holdout`` images chosen by a seeded permutation."""
    if not 0 <= holdout < len(paths):
        raise InputError(f"--holdout {holdout}: need fewer than the {len(paths)} images found")
    order = torch.randperm(len(paths), generator=torch.Generator().manual_seed(seed)).tolist()
    held = sorted(paths[i] for i in order[:holdout])
    return [p for p in paths if p not in held], held


class CropSampler:
    """Random rescale (short side in ``[size, short side]``), random crop, random flip.

    Photos are decoded once and kept as uint8 tensors.
    """

    def __init__(self, paths: Sequence[Path], size: int) -> None:
        self.size = size
        self.images = [read_image(p, dtype=torch.uint8) for p in paths]
        small = [p for p, im in zip(paths, self.images, strict=True) if min(im.shape[-2:]) < size]
        if small:
            raise InputError(f"images smaller than --size {size}: {', '.join(map(str, small[:3]))}")

    def __call__(self, batch: int, generator: torch.Generator) -> Tensor:
        crops = []
        for _ in range(batch):
            image = self.images[int(torch.randint(len(self.images), (1,), generator=generator))]
            height, width = image.shape[-2:]
            short = min(height, width)
            target = int(self.size + torch.rand((), generator=generator) * (short - self.size))
            scale = target / short
            resized = F.interpolate(
                image[None].float() / 255,
                scale_factor=scale,
                mode="area",
                recompute_scale_factor=False,
            )[0]
            h, w = resized.shape[-2:]
            top = int(torch.randint(h - self.size + 1, (1,), generator=generator))
            left = int(torch.randint(w - self.size + 1, (1,), generator=generator))
            crop = resized[:, top : top + self.size, left : left + self.size]
            if torch.rand((), generator=generator) < 0.5:
                crop = crop.flip(-1)
            crops.append(crop)
        return torch.stack(crops).clamp(0, 1)


def center_crops(paths: Sequence[Path], size: int) -> Tensor:
    """Validation images: short side resized to ``size``, center-cropped square."""
    return torch.stack([center_crop_resize(read_image(p), size, size) for p in paths])


class TrainingMasks:
    """Free-form brush strokes, or (with ``box_probability``) a random rectangle."""

    def __init__(self, coverage: tuple[float, float], box_probability: float) -> None:
        self.free_form = free_form_masks(alpha=coverage[0], beta=coverage[1])
        self.box_probability = box_probability

    def __call__(self, batch: int, size: int, generator: torch.Generator) -> Tensor:
        empty = torch.zeros(1, 1, size, size)
        masks = []
        for _ in range(batch):
            if torch.rand((), generator=generator) < self.box_probability:
                h, w = (torch.rand(2, generator=generator) * 0.4 + 0.2).mul(size).int().tolist()
                top = int(torch.randint(size - h + 1, (1,), generator=generator))
                left = int(torch.randint(size - w + 1, (1,), generator=generator))
                mask = empty.clone()
                mask[..., top : top + h, left : left + w] = 1
            else:
                mask = self.free_form(empty, empty, generator)
            masks.append(mask)
        return torch.cat(masks)


def _rank_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _average_gradients(params: Sequence[nn.Parameter], world: int) -> None:
    if world == 1:
        return
    grads = [p.grad for p in params if p.grad is not None]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= world
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()


def _state_path(out: Path) -> Path:
    return out.with_name(out.name + ".state.pt")


def best_path(out: Path) -> Path:
    """Where the checkpoint with the best validation hole-L1 so far is kept."""
    return out.with_name(out.stem + ".best" + out.suffix)


def _best_score(path: Path) -> float:
    if not path.is_file():
        return float("inf")
    return float(
        json.loads(read_metadata(path).get("tttkit.pretrain.validation", "{}")).get(
            "l1_hole", float("inf")
        )
    )


def _extra(
    config: PretrainConfig, step: int, metrics: dict[str, float] | None = None
) -> dict[str, str]:
    extra = {
        "tttkit.pretrain.step": str(step),
        "tttkit.pretrain.config": config.to_json(),
    }
    if metrics is not None:
        extra["tttkit.pretrain.validation"] = json.dumps(metrics)
    return extra


def _rng_state(generator: torch.Generator) -> dict[str, Tensor]:
    return {"data": generator.get_state(), "torch": torch.get_rng_state()}


def pretrain(
    backbone_factory: Callable[..., Backbone],
    config: PretrainConfig,
    train_paths: Sequence[Path],
    val_paths: Sequence[Path],
    out: Path,
    *,
    perceptual: nn.Module | None,
    resume: Path | None = None,
    init: Path | None = None,
    device: torch.device | str = "cpu",
    on_step: Callable[[int, dict[str, float]], None] | None = None,
    on_validate: Callable[[int, dict[str, float]], None] | None = None,
) -> Backbone:
    """Train a backbone from scratch; see the module docstring.

    Args:
        backbone_factory: the registered factory of ``config.backbone``.
        config: the run's settings.
        train_paths: training photos.
        val_paths: held-out photos for validation metrics (may be empty).
        out: checkpoint path (``.safetensors``); its state file sits beside it.
        perceptual: feature network for the perceptual loss (``None`` if its weight is 0).
        resume: a checkpoint of this run to continue from (weights, optimizers, RNG, step).
        init: weights to start from instead of a random initialisation (fresh optimizers).
        device: where to train.
        on_step: called with (step, losses) after every step (rank 0 only).
        on_validate: called with (step, metrics) after every validation (rank 0 only).

    Returns:
        the trained backbone.
    """
    rank, world = _rank_world()
    torch.manual_seed(config.seed)
    net = backbone_factory(**config.backbone_config).to(device).train()
    g_params = list(net.generator.parameters())
    d_params = list(net.discriminator.parameters()) if net.discriminator is not None else []
    opt_g = torch.optim.Adam(g_params, lr=config.lr, betas=config.betas)
    opt_d = torch.optim.Adam(d_params, lr=config.lr, betas=config.betas) if d_params else None
    generator = torch.Generator().manual_seed(config.seed * 1000 + rank)
    start = 0
    if init is not None:
        if resume is not None:
            raise InputError("--init and --resume exclude each other: resume continues a run")
        load_weights(net, init, config.backbone)
    if resume is not None:
        start = _resume(resume, net, opt_g, opt_d, generator, config, rank)
    sampler = CropSampler(train_paths, config.size)
    masks = TrainingMasks(config.mask_coverage, config.box_probability)
    val_images = center_crops(val_paths, config.size).to(device) if val_paths else None
    val_masks = (
        masks(len(val_paths), config.size, torch.Generator().manual_seed(12345)).to(device)
        if val_paths
        else None
    )
    adversarial = config.losses.adversarial > 0 and opt_d is not None
    for step in range(start + 1, config.steps + 1):
        started = time.perf_counter()
        images = sampler(config.batch_size, generator).to(device)
        holes = masks(config.batch_size, config.size, generator).to(device)
        losses = _train_step(
            net, images, holes, config, perceptual, opt_g, opt_d if adversarial else None, world
        )
        losses["seconds"] = time.perf_counter() - started
        if rank == 0 and on_step is not None:
            on_step(step, losses)
        last = step == config.steps
        if rank == 0 and val_images is not None and (step % config.validate_every == 0 or last):
            metrics = validate(net, val_images, val_masks)  # type: ignore[arg-type]
            if on_validate is not None:
                on_validate(step, metrics)
            if metrics["l1_hole"] < _best_score(best_path(out)):
                save_backbone(
                    net, config.backbone, best_path(out), extra=_extra(config, step, metrics)
                )
        if step % config.checkpoint_every == 0 or last:
            if rank == 0:
                _checkpoint(out, net, opt_g, opt_d, generator, config, step)
            if world > 1:
                dist.barrier()
    return net


def _train_step(
    net: Backbone,
    images: Tensor,
    holes: Tensor,
    config: PretrainConfig,
    perceptual: nn.Module | None,
    opt_g: torch.optim.Optimizer,
    opt_d: torch.optim.Optimizer | None,
    world: int,
) -> dict[str, float]:
    """One generator step and, when ``opt_d`` is given, one discriminator step; the
    gradients averaged over the ``world`` processes."""
    no_user_holes = torch.zeros_like(holes)
    adversarial = opt_d is not None
    with no_weight_grads(net.discriminator if adversarial else None):
        output = net.generate(images, holes)
        g_terms = generator_losses(
            output, images, holes, no_user_holes, config.losses, perceptual,
            net.discriminate if adversarial else None,
        )  # fmt: skip
        opt_g.zero_grad(set_to_none=True)
        g_terms["total"].backward()
    _average_gradients([p for group in opt_g.param_groups for p in group["params"]], world)
    opt_g.step()
    losses = {k: float(v.detach()) for k, v in g_terms.items()}
    if opt_d is not None:
        d_terms = discriminator_loss(
            output, images, holes, no_user_holes, config.losses, net.discriminate
        )
        opt_d.zero_grad(set_to_none=True)
        d_terms["total"].backward()
        _average_gradients([p for group in opt_d.param_groups for p in group["params"]], world)
        opt_d.step()
        losses.update({f"d_{k}": float(v.detach()) for k, v in d_terms.items()})
    return losses


@torch.no_grad()
def validate(net: Backbone, images: Tensor, masks: Tensor) -> dict[str, float]:
    """Mean metrics of the completed held-out images (holes filled, the rest kept)."""
    was_training = net.training
    net.eval()
    rows = []
    for image, mask in zip(images, masks, strict=True):
        out = net.generate(image[None], mask[None]).image
        completed = out * mask + image[None] * (1 - mask)
        rows.append(image_metrics(completed, image[None], mask[None]))
    net.train(was_training)
    return {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}


def _checkpoint(
    out: Path,
    net: Backbone,
    opt_g: torch.optim.Optimizer,
    opt_d: torch.optim.Optimizer | None,
    generator: torch.Generator,
    config: PretrainConfig,
    step: int,
) -> None:
    import io

    state = {
        "step": step,
        "opt_g": opt_g.state_dict(),
        "opt_d": opt_d.state_dict() if opt_d is not None else {},
        "rng": _rng_state(generator),
        "config": config.to_json(),
    }
    buffer = io.BytesIO()
    torch.save(state, buffer)
    # State first: a checkpoint file is only ever paired with a state at least as new.
    atomic_write_bytes(_state_path(out), buffer.getvalue())
    save_backbone(net, config.backbone, out, extra=_extra(config, step))


def _resume(
    path: Path,
    net: Backbone,
    opt_g: torch.optim.Optimizer,
    opt_d: torch.optim.Optimizer | None,
    generator: torch.Generator,
    config: PretrainConfig,
    rank: int,
) -> int:
    state_path = _state_path(path)
    if not state_path.is_file():
        raise InputError(f"--resume {path}: its training state {state_path} is missing")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # torch's pickle-protocol notes
            state = torch.load(str(state_path), map_location="cpu", weights_only=True)
        stored = json.loads(state["config"])
        for key in ("step", "opt_g", "opt_d", "rng"):
            state[key]
    except Exception as exc:  # truncated, foreign, or not a state at all: torch raises many types
        raise InputError(
            f"--resume {path}: its training state {state_path} is damaged or not a tttkit "
            f"pretraining state ({type(exc).__name__}: {exc}); resume from another checkpoint "
            "or start afresh"
        ) from None
    ours = json.loads(config.to_json())
    changed = {
        k: (stored.get(k), ours.get(k))
        for k in ours
        if k not in ("steps", "checkpoint_every", "validate_every") and stored.get(k) != ours.get(k)
    }
    if changed:
        detail = ", ".join(f"{k}: checkpoint {a!r} vs now {b!r}" for k, (a, b) in changed.items())
        raise InputError(f"--resume {path}: the run's settings differ ({detail})")
    load_weights(net, path, config.backbone)
    opt_g.load_state_dict(state["opt_g"])
    if opt_d is not None and state["opt_d"]:
        opt_d.load_state_dict(state["opt_d"])
    generator.set_state(state["rng"]["data"])
    if rank:  # other ranks continue their own streams, offset deterministically
        generator.manual_seed(int(state["step"]) * 1000 + rank)
    torch.set_rng_state(state["rng"]["torch"])
    return int(state["step"])
