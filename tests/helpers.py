"""Helpers shared by tests (fixtures live in conftest.py)."""

from __future__ import annotations

import textwrap
from pathlib import Path


def make_distribution(
    root: Path, name: str, entry_points: dict[str, str], version: str = "0.1.0"
) -> Path:
    """Write a minimal installed-distribution record (``.dist-info``) under ``root``."""
    info = root / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    lines = "\n".join(f"{k} = {v}" for k, v in entry_points.items())
    (info / "entry_points.txt").write_text(f"[tttkit]\n{lines}\n")
    return root


def write_module(directory: Path, name: str, source: str) -> Path:
    """Write a Python module ``name`` into ``directory`` (on sys.path in the tests that use it)."""
    path = directory / f"{name}.py"
    path.write_text(textwrap.dedent(source))
    return path


def tiny_backbone(seed: int = 0):  # type: ignore[no-untyped-def]
    """A width-8 attention network with two residual blocks: fast at 64²."""
    import torch

    from tttkit_backbones.attention_net.backbone import attention_net_compact

    torch.manual_seed(seed)
    return attention_net_compact(width=8, residual_blocks=2)


def photo_and_mask(size: int = 64):  # type: ignore[no-untyped-def]
    """The bundled example photo and its mask, downscaled to ``size``."""
    import importlib.resources

    import torch.nn.functional as F

    from tttkit.io import read_image, read_mask

    data = importlib.resources.files("tttkit") / "data"
    image = read_image(str(data / "demo" / "street.jpg"))
    mask = read_mask(str(data / "demo" / "street_mask.png"))
    image = F.interpolate(image[None], size=size, mode="area")[0]
    mask = (F.interpolate(mask[None], size=size, mode="nearest")[0] > 0.5).float()
    return image, mask


def own_network_project(folder: Path):  # type: ignore[no-untyped-def]
    """A stand-in for a user's own package ``my_project`` and its files in ``folder``, for the
    README's and the plugin guide's "your own network" example: ``MyUNet``, a small network in
    its own conventions (RGB in [-1, 1], 1 at holes, tanh output), its weights ``my_unet.pt``,
    and ``photo.png``/``mask.png``. Returns the module (put it in ``sys.modules``)."""
    import types

    import torch
    from torch import Tensor, nn

    from tttkit.io import write_image

    class MyUNet(nn.Module):
        """A user's network: ``forward(image, mask) -> image``."""

        def __init__(self, width: int = 8) -> None:
            super().__init__()
            self.encoder = nn.Sequential(
                nn.Conv2d(4, width, 3, padding=1), nn.GroupNorm(2, width), nn.ReLU()
            )
            self.decoder = nn.Conv2d(width, 3, 3, padding=1)

        def forward(self, image: Tensor, mask: Tensor) -> Tensor:
            known = image * (1 - mask)
            return torch.tanh(self.decoder(self.encoder(torch.cat([known, mask], dim=1))))

    project = types.ModuleType("my_project")
    project.MyUNet = MyUNet  # type: ignore[attr-defined]
    MyUNet.__module__ = "my_project"
    torch.manual_seed(0)
    torch.save(MyUNet().state_dict(), folder / "my_unet.pt")
    image, mask = photo_and_mask(64)
    write_image(folder / "photo.png", image)
    write_image(folder / "mask.png", mask)
    return project
