"""The plugin author's kit (`tttkit.testing`) run over every registered built-in component, as
a third-party plugin's tests run it over theirs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from tttkit.plugins import PluginHost
from tttkit.registry import REQUIRED
from tttkit.testing import (
    check_augmentation,
    check_backbone,
    check_filler,
    check_finetune_mask,
    check_freezing_policy,
)

HOST = PluginHost(autoload=False).load()


def _names(kind: str) -> list[str]:
    return HOST.registry(kind).names()


def _buildable(name: str) -> bool:
    """Backbones that build with no option (a TorchScript backbone needs a model file)."""
    return REQUIRED not in HOST.registry("backbones").entry(name).parameters().values()


@pytest.mark.parametrize("name", [n for n in _names("backbones") if _buildable(n)])
def test_every_backbone_keeps_the_contract(name: str, tmp_path: Path) -> None:
    check_backbone(HOST.registry("backbones").get(name), name=name, folder=tmp_path, size=32)


@pytest.mark.parametrize("name", _names("augmentations"))
def test_every_augmentation_keeps_the_contract(name: str) -> None:
    check_augmentation(HOST.registry("augmentations").get(name))


@pytest.mark.parametrize("name", _names("finetune-masks"))
def test_every_finetune_mask_keeps_the_contract(name: str) -> None:
    check_finetune_mask(HOST.registry("finetune-masks").get(name))


def test_the_kit_catches_a_mask_on_the_hole() -> None:
    def on_the_hole(user_mask, forbidden, generator):  # type: ignore[no-untyped-def]
        return user_mask.clone()

    with pytest.raises(AssertionError, match="covers the dilated user hole"):
        check_finetune_mask(lambda: on_the_hole)


def test_the_kit_catches_masks_left_behind() -> None:
    class ShiftImageOnly:
        geometric = True

        def __call__(self, view, generator):  # type: ignore[no-untyped-def]
            return view.with_(image=view.image.roll(7, dims=-1))

    with pytest.raises(AssertionError, match="did not move with the image"):
        check_augmentation(ShiftImageOnly)


def test_the_kit_catches_a_finetuning_mask_left_behind() -> None:
    """The kit's probe (shared with the engine's check on a geometric augmentation's first use)
    draws the finetuning mask into the image too."""

    class ShiftAllButTheFinetuningMask:
        geometric = True

        def __call__(self, view, generator):  # type: ignore[no-untyped-def]
            def move(x):  # type: ignore[no-untyped-def]
                return x.roll(7, dims=-1)

            return view.with_(
                image=move(view.image), user_mask=move(view.user_mask), empty=move(view.empty)
            )

    with pytest.raises(AssertionError, match="the finetuning mask did not move with the image"):
        check_augmentation(ShiftAllButTheFinetuningMask)


def test_the_kit_catches_a_fill_of_the_wrong_size() -> None:
    from tests.helpers import tiny_backbone
    from tttkit.backbone import GeneratorOutput

    def factory(**config):  # type: ignore[no-untyped-def]
        net = tiny_backbone()
        original = net.generate
        net.generate = (
            lambda image, mask: GeneratorOutput(  # type: ignore[method-assign]
                image=original(image, mask).image[..., 1:, :]
            )
        )
        return net

    with pytest.raises(AssertionError, match="generate\\(\\) returned shape"):
        check_backbone(factory)


def test_the_example_plugins_own_tests_pass(example_plugin: Path) -> None:
    """The example package's tests use the kit; run them as its author would."""
    import subprocess
    import sys

    from tests.conftest import EXAMPLE_PLUGIN_SRC

    tests = EXAMPLE_PLUGIN_SRC.parent / "tests"
    env = {"PYTHONPATH": str(EXAMPLE_PLUGIN_SRC), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tests)],
        capture_output=True, text=True, env=env, cwd=tests, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("name", _names("fillers"))
def test_every_filler_keeps_the_contract(name: str) -> None:
    check_filler(HOST.registry("fillers").get(name))


#: Policies whose defaults freeze nothing a tiny network has are given patterns it has.
POLICY_PARAMS = {"freeze-groups": {"patterns": ("generator.encoder",)}}


@pytest.mark.parametrize("name", _names("freezing-policies"))
def test_every_freezing_policy_keeps_the_contract(name: str) -> None:
    check_freezing_policy(HOST.registry("freezing-policies").get(name), POLICY_PARAMS.get(name))


class _Overwrites:
    """A filler that paints the whole image, not only the holes."""

    def __call__(self, image, user_mask, context):  # type: ignore[no-untyped-def]
        return torch.zeros_like(image)


class _InPlace:
    """A filler that writes into its input."""

    def __call__(self, image, user_mask, context):  # type: ignore[no-untyped-def]
        return image.mul_(1 - user_mask)


class _NamesAGroupThatIsNot:
    def __call__(self, groups):  # type: ignore[no-untyped-def]
        return {"generator.does-not-exist"}


class _FreezesEverything:
    def __call__(self, groups):  # type: ignore[no-untyped-def]
        return set(groups)


class _AdapterThatDoesNotFold:
    """A ParameterAdapter that adds a parameter and leaves it there."""

    def __call__(self, groups):  # type: ignore[no-untyped-def]
        return set()

    def prepare(self, network, groups):  # type: ignore[no-untyped-def]
        network.generator.register_parameter("extra", torch.nn.Parameter(torch.zeros(1)))

    def finalize(self, network):  # type: ignore[no-untyped-def]
        pass


@pytest.mark.parametrize(
    ("check", "component", "says"),
    [
        (check_filler, _Overwrites, "changed pixels outside the user's holes"),
        (check_filler, _InPlace, "changed its input in place"),
        (check_freezing_policy, _NamesAGroupThatIsNot, "no such layer group"),
        (check_freezing_policy, _FreezesEverything, "nothing would train"),
        (check_freezing_policy, _AdapterThatDoesNotFold, "the backbone's own structure"),
    ],
    ids=[
        "filler-outside-holes",
        "filler-in-place",
        "policy-unknown-group",
        "policy-freezes-all",
        "adapter-not-folded",
    ],
)
def test_the_kit_catches_a_broken_filler_or_policy(
    check: Callable[[type], object], component: type, says: str
) -> None:
    """Issue 30, item 12: fillers and freezing policies have their checks too."""
    with pytest.raises(AssertionError, match=says):
        check(component)
