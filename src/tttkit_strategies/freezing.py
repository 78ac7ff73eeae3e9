"""Freezing policies (thesis §4.5): which layer groups of the backbone stay fixed.

Policies select a backbone's declared layer groups (see ``Backbone.layer_groups``) by glob
pattern, never by matching parameter names, so they work for any backbone that names its groups.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping

from torch import nn

from tttkit.plugins import hookimpl

#: Thesis §4.5.3: train only the generator after the residual blocks and discriminator convs 3–5.
FREEZE_EARLY = (
    "generator.encoder",
    "generator.residual.*",
    "discriminator.conv1",
    "discriminator.conv2",
)

#: Thesis combination C: freeze the encoder, residual blocks 1–4 and discriminator convs 1–3.
FREEZE_PARTIAL = (
    "generator.encoder",
    "generator.residual.[1-4]",
    "discriminator.conv[1-3]",
)


class FreezeGroups:
    """Freeze the layer groups matching any of ``patterns`` (``fnmatch`` globs).

    A pattern matching no group is an error naming the backbone's groups, so a policy written
    for one backbone never silently freezes nothing on another (unless ``strict`` is false).
    """

    def __init__(self, patterns: tuple[str, ...] = (), strict: bool = True) -> None:
        self.patterns = tuple(patterns)
        self.strict = strict

    def __call__(self, groups: Mapping[str, nn.Module]) -> set[str]:
        frozen: set[str] = set()
        for pattern in self.patterns:
            matched = {g for g in groups if fnmatch.fnmatchcase(g, pattern)}
            if not matched and self.strict:
                raise ValueError(
                    f"freezing pattern {pattern!r} matches no layer group of this backbone; "
                    f"its groups are: {', '.join(groups)}"
                )
            frozen |= matched
        return frozen


class FreezeNothing(FreezeGroups):
    """Train every parameter (the baseline)."""

    def __init__(self) -> None:
        super().__init__(())


class GeneratorOnly(FreezeGroups):
    """Train only the generator; the discriminator is not updated (thesis §4.5.2)."""

    def __init__(self) -> None:
        super().__init__(("discriminator.*",), strict=False)  # no discriminator: nothing to do


class FreezeEarly(FreezeGroups):
    """Freeze the encoder, all residual blocks and the first two discriminator convs (§4.5.3)."""

    def __init__(self, patterns: tuple[str, ...] = FREEZE_EARLY) -> None:
        super().__init__(patterns)


class FreezePartial(FreezeGroups):
    """Freeze the encoder, residual blocks 1–4 and discriminator convs 1–3 (combination C)."""

    def __init__(self, patterns: tuple[str, ...] = FREEZE_PARTIAL) -> None:
        super().__init__(patterns)


class TrainLastGroups:
    """Train only the last ``k`` generator layer groups (the output end); the rest of the
    generator is frozen, the discriminator untouched. Any backbone: groups in declared order.

    The backward pass then stops at the first trainable group, so a step costs the forward
    pass plus the backward of the last groups only.
    """

    def __init__(self, k: int = 2) -> None:
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        self.k = k

    def __call__(self, groups: Mapping[str, nn.Module]) -> set[str]:
        generator = [name for name in groups if name.startswith("generator.")]
        return set(generator[: max(0, len(generator) - self.k)])


@hookimpl
def tttkit_register_freezing_policies(register) -> None:  # type: ignore[no-untyped-def]
    """The thesis's freezing policies and the general pattern-based one."""
    register("none", FreezeNothing)
    register("generator-only", GeneratorOnly)
    register("freeze-early", FreezeEarly)
    register("freeze-partial", FreezePartial)
    register("freeze-groups", FreezeGroups, description="freeze the layer groups matching patterns")
    register("last-k", TrainLastGroups, description="train only the last k generator groups")
