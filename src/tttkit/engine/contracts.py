"""What the strategy's components hand the engine, checked while a run goes (issue 30).

Each step, the filler's images, the finetuning masks and every augmentation's view are checked
against their contracts (:mod:`tttkit.components`): shapes and dtypes at once (they cost
nothing), values — finite images in ``[0, 1]``, binary masks, finetuning masks off the forbidden
pixels, intensity augmentations leaving masks alone — as 0-dim flags settled together in one
synchronisation before the network sees the batch (:meth:`StepChecks.settle`). The first time
each geometric augmentation is applied in a run, it is also run on a probe of the same view
whose image carries the masks in its red and green channels, from the same generator state, so
an augmentation that moves the image without the masks (or the reverse) is caught at its first
use instead of training the network on views whose holes are elsewhere.

A failure is a :class:`~tttkit.errors.PluginContractError` naming the component, its plugin and
distribution, and the step. :mod:`tttkit.testing` shares the probe (:func:`pattern_view`,
:func:`mask_agreement`) for a plugin author's own tests.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor

from tttkit.components import Augmentation, View
from tttkit.errors import PluginContractError
from tttkit.imageops import dilate
from tttkit.plugins import KINDS, PluginHost

__all__ = ["StepChecks", "binary", "mask_agreement", "pattern_view"]

#: Slack on the ``[0, 1]`` range of images (rounding of reduced precisions, not a contract).
RANGE_SLACK = 1e-3
#: Least share of a probe's mask pixels that must agree with the image they were drawn into.
MIN_AGREEMENT = 0.9
#: Probes of one geometric augmentation before it is taken on trust (a probe decides nothing
#: when the masks are too thin to judge, or the augmentation declined the view).
MAX_PROBES = 3

#: The probe's image channel that carries each mask (:func:`pattern_view`).
_CHANNELS = (("user_mask", 0, "user mask"), ("finetune_mask", 1, "finetuning mask"))


def binary(mask: Tensor) -> bool:
    """Whether every value of ``mask`` is exactly 0 or 1."""
    return not bool(_not_binary(mask))


def _not_binary(mask: Tensor) -> Tensor:
    """A 0-dim flag: some value is neither 0 nor 1 (NaN included). ``m·(1 − m)`` is zero
    exactly at 0 and 1: three kernels, where ``(m == 0) | (m == 1)`` takes four."""
    return (mask * (1 - mask)).any()


def _range(image: Tensor) -> tuple[Tensor, Tensor]:
    """``(failed, bounds)``: a 0-dim flag, set when a value is outside ``[0, 1]`` or not finite
    (one reduction: NaN fails both bounds, infinity one), and the ``(min, max)`` pair."""
    bounds = torch.stack(torch.aminmax(image.detach()))
    low, high = bounds[0], bounds[1]
    return ~((low >= -RANGE_SLACK) & (high <= 1 + RANGE_SLACK)), bounds


def _values(bounds: Tensor) -> str:
    low, high = bounds.tolist()
    return f" (values from {low:.3g} to {high:.3g})"


def pattern_view(view: View) -> View:
    """A copy of ``view`` with its masks drawn into its image: the user mask in the red
    channel, the finetuning mask (when there is one) in the green; a geometric augmentation
    must move them as it moves the masks (:func:`mask_agreement`). Every tensor is copied, so
    an augmentation that works in place cannot touch the view it was made from."""
    image = view.image.detach().clone()
    image[:, 0:1] = view.user_mask
    if view.finetune_mask is not None:
        image[:, 1:2] = view.finetune_mask
    return View(
        image=image,
        user_mask=view.user_mask.clone(),
        finetune_mask=None if view.finetune_mask is None else view.finetune_mask.clone(),
        empty=view.empty.clone(),
    )


def mask_agreement(out: View) -> tuple[str, float] | None:
    """How well the masks of a transformed :func:`pattern_view` agree with the image channels
    they were drawn into: the least share, over the masks, of judged pixels that agree, with
    that mask's name; ``None`` when no pixel can be judged.

    Judged: where the view has content, away from the masks' edges (two pixels, which
    interpolation of the image may soften), and where either the channel or the mask says
    hole.
    """
    worst: tuple[str, float] | None = None
    for field_name, channel, label in _CHANNELS:
        mask = getattr(out, field_name)
        if mask is None:
            continue
        drawn, moved = out.image[:, channel : channel + 1] > 0.5, mask > 0.5
        edges = dilate(mask.float(), 2) - (1 - dilate(1 - mask.float(), 2))
        judged = (out.empty < 0.5) & (edges < 0.5) & (drawn | moved)
        if int(judged.sum()) == 0:
            continue
        share = float((drawn == moved)[judged].float().mean())
        if worst is None or share < worst[1]:
            worst = (label, share)
    return worst


@dataclass
class _Flag:
    """A check whose outcome is still on the device: ``failed`` is a 0-dim bool tensor;
    ``why`` ends the message (a callable, run only when it failed, reads what was found)."""

    kind: str
    name: str
    failed: Tensor
    what: str
    why: str | Callable[[], str] = ""


@dataclass
class StepChecks:
    """The checks of one run: the step hands each component's output to them as it goes,
    then calls :meth:`settle` before the network sees the batch.

    Args:
        host: the plugin host, which names each component's plugin.
        filler: the strategy's filler name.
        finetune_mask: the strategy's finetuning-mask strategy name.
    """

    host: PluginHost
    filler: str
    finetune_mask: str
    step: int = 0
    _flags: list[_Flag] = field(default_factory=list)
    _probes: dict[str, int] = field(default_factory=dict)  # geometric op → probes left
    _names: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)

    def _who(self, kind: str, name: str) -> tuple[str, str]:
        """``("filler 'x' (plugin 'p' from distribution 'd')", "p")``."""
        if (kind, name) not in self._names:
            plugin = self.host.registry(kind).entry(name).plugin
            who = f"{KINDS[kind].singular} {name!r} ({self.host.describe(plugin)})"
            self._names[kind, name] = (who, plugin)
        return self._names[kind, name]

    def _broken(self, kind: str, name: str, what: str, why: str = "") -> PluginContractError:
        """``<component> <what> at step N<why>``, naming the component's plugin."""
        who, plugin = self._who(kind, name)
        return PluginContractError(f"{who} {what} at step {self.step}{why}", plugin=plugin)

    def _tensor_like(self, kind: str, name: str, what: str, value: object, like: Tensor) -> Tensor:
        """``value`` if it is a floating tensor of ``like``'s shape, else the error."""
        if not isinstance(value, Tensor):
            raise self._broken(kind, name, f"returned a {type(value).__name__} as {what}")
        if value.shape != like.shape:
            raise self._broken(
                kind, name, f"returned {what} of shape {tuple(value.shape)}",
                f" for input of shape {tuple(like.shape)}: the shapes must be equal",
            )  # fmt: skip
        if not value.is_floating_point():
            raise self._broken(
                kind, name, f"returned {what} of dtype {value.dtype}", ": floats are expected"
            )
        return value

    def _unit_range(self, kind: str, name: str, image: Tensor, what: str) -> None:
        failed, bounds = _range(image)
        self._flags.append(_Flag(kind, name, failed, what, lambda: _values(bounds)))

    def filled(self, filled: object, images: Tensor) -> Tensor:
        """The filler's output: images of the input's shape, finite, in ``[0, 1]``."""
        out = self._tensor_like("fillers", self.filler, "images", filled, images)
        self._unit_range("fillers", self.filler, out, "filled the holes with values outside "
                         "[0, 1] or not finite")  # fmt: skip
        return out

    def finetune_masks(self, masks: object, user_masks: Tensor, forbidden: Tensor) -> Tensor:
        """The finetuning masks: one per view, binary, never on ``forbidden`` pixels."""
        kind, name = "finetune-masks", self.finetune_mask
        out = self._tensor_like(kind, name, "masks", masks, user_masks)
        self._flags.append(_Flag(kind, name, _not_binary(out), "returned masks that are not "
                                 "binary (0 or 1)"))  # fmt: skip
        self._flags.append(_Flag(
            kind, name, (out * forbidden).any(), "returned masks covering pixels they must not",
            " (the user's holes dilated by the strategy's hole_margin, or pixels without "
            "content)",
        ))  # fmt: skip
        return out

    def augment(
        self, name: str, augmentation: Augmentation, view: View, generator: torch.Generator
    ) -> View | None:
        """Apply one augmentation to ``view`` and check what it returns (the pipeline's
        :data:`~tttkit.engine.augment.AugmentCall`)."""
        probe = self._wants_probe(name, augmentation)
        state = generator.get_state() if probe else None
        out = augmentation(view, generator)
        if out is None:
            return None
        self._check_view(name, view, out)
        if not augmentation.geometric:
            self._masks_kept(name, view, out)
        elif state is not None:
            self._probe(name, augmentation, view, generator, state)
        return out

    def _wants_probe(self, name: str, augmentation: Augmentation) -> bool:
        return augmentation.geometric and self._probes.setdefault(name, MAX_PROBES) > 0

    def _check_view(self, name: str, before: View, out: object) -> None:
        kind = "augmentations"
        if not isinstance(out, View):
            raise self._broken(kind, name, f"returned a {type(out).__name__}",
                               ": an augmentation returns a View or None")  # fmt: skip
        self._tensor_like(kind, name, "an image", out.image, before.image)
        for field_name in ("user_mask", "finetune_mask", "empty"):
            old, new = getattr(before, field_name), getattr(out, field_name)
            if (old is None) != (new is None):
                state = "dropped" if new is None else "added"
                raise self._broken(kind, name, f"{state} the view's {field_name}")
            if new is None or new is old:  # the engine's own, or checked already
                continue
            self._tensor_like(kind, name, f"a {field_name}", new, old)
            self._flags.append(_Flag(kind, name, _not_binary(new), f"made the view's "
                                     f"{field_name} not binary (0 or 1)"))  # fmt: skip
        self._unit_range(kind, name, out.image, "returned an image with values outside [0, 1] "
                         "or not finite")  # fmt: skip

    def _masks_kept(self, name: str, before: View, out: View) -> None:
        """An intensity augmentation leaves every mask bit-identical."""
        for field_name in ("user_mask", "finetune_mask", "empty"):
            old, new = getattr(before, field_name), getattr(out, field_name)
            if new is old or old is None:
                continue
            self._flags.append(_Flag(
                "augmentations", name, (new != old).any(), f"changed the view's {field_name}",
                ", but it is not geometric: an intensity augmentation changes only the image "
                "(one that moves pixels declares geometric = True)",
            ))  # fmt: skip

    def _probe(
        self,
        name: str,
        augmentation: Augmentation,
        view: View,
        generator: torch.Generator,
        state: Tensor,
    ) -> None:
        """Run a geometric augmentation on :func:`pattern_view` of ``view``, from the
        generator state it drew its parameters from (the run's generator is left where it
        is, so a run draws the same numbers with and without the probe)."""
        again = torch.Generator(device=generator.device)
        again.set_state(state)
        out = augmentation(pattern_view(view), again)
        agreement = mask_agreement(out) if isinstance(out, View) else None
        if agreement is None:
            # Nothing to judge (masks too thin, or the probe declined): try a later view.
            self._probes[name] -= 1
            return
        label, share = agreement
        if share < MIN_AGREEMENT:
            raise self._broken(
                "augmentations", name, f"did not move the {label} with the image",
                f" ({share:.0%} of its pixels agree): a geometric augmentation moves the image "
                "and every mask alike (View.map_pixels and View.warp do)",
            )  # fmt: skip
        self._probes[name] = 0

    def settle(self) -> None:
        """Wait for the deferred checks (one synchronisation) and raise the first failure."""
        flags, self._flags = self._flags, []
        if not flags:
            return
        failed = torch.stack([f.failed.reshape(()) for f in flags]).tolist()
        for flag, bad in zip(flags, failed, strict=True):
            if bad:
                why = flag.why if isinstance(flag.why, str) else flag.why()
                raise self._broken(flag.kind, flag.name, flag.what, why)
