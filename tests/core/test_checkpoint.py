from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tttkit.checkpoint import (
    CheckpointError,
    load_backbone,
    load_weights,
    read_metadata,
    save_backbone,
)
from tttkit_backbones.attention_net.backbone import attention_net_compact


def tiny(**config: object):
    torch.manual_seed(0)
    return attention_net_compact(width=8, residual_blocks=2, **config)


def forward(net, seed: int = 1) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    image = torch.rand(1, 3, 64, 64, generator=generator)
    mask = torch.zeros(1, 1, 64, 64)
    mask[..., 20:40, 10:50] = 1
    with torch.no_grad():
        return net.eval().generate(image, mask).image


def test_round_trip_gives_identical_outputs(tmp_path: Path) -> None:
    net = tiny()
    path = tmp_path / "net.safetensors"
    save_backbone(net, "attention-net-compact", path, extra={"steps": "10"})
    metadata = read_metadata(path)
    assert metadata["tttkit.backbone"] == "attention-net-compact" and metadata["steps"] == "10"
    name, loaded = load_backbone(path)
    assert name == "attention-net-compact" and loaded.config == net.config
    assert torch.equal(forward(loaded), forward(net))
    other = tiny()
    torch.nn.init.zeros_(next(other.parameters()))
    load_weights(other, path, "attention-net-compact")
    assert torch.equal(forward(other), forward(net))


def test_checkpoint_for_another_backbone_or_config_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "net.safetensors"
    save_backbone(tiny(), "attention-net-compact", path)
    with pytest.raises(
        CheckpointError, match="is for backbone 'attention-net-compact', not 'attention-net'"
    ):
        load_backbone(path, name="attention-net")
    with pytest.raises(
        CheckpointError, match=r"another configuration .*residual_blocks: file 2 vs network 3"
    ):
        load_weights(
            attention_net_compact(width=8, residual_blocks=3), path, "attention-net-compact"
        )


def test_pt_state_dicts_load_with_weights_only(tmp_path: Path) -> None:
    net = tiny()
    plain = tmp_path / "plain.pt"
    torch.save(net.state_dict(), plain)
    lightning = tmp_path / "lightning.ckpt"
    torch.save({"state_dict": net.state_dict(), "epoch": 3}, lightning)
    for path in (plain, lightning):
        other = tiny()
        torch.nn.init.zeros_(next(other.parameters()))
        load_weights(other, path)
        assert torch.equal(forward(other), forward(net))


def test_pickled_code_is_never_executed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "evil.pt"
    torch.save({"x": Evil()}, path)
    with pytest.raises(CheckpointError, match="not a state dict of tensors"):
        load_weights(tiny(), path)  # print became an inert placeholder: nothing ran
    assert "pwned" not in capsys.readouterr().out


def test_wrong_keys_are_listed(tmp_path: Path) -> None:
    state = tiny().state_dict()
    state["extra.weight"] = torch.zeros(1)
    removed = next(iter(state))
    del state[removed]
    path = tmp_path / "bad.pt"
    torch.save(state, path)
    with pytest.raises(CheckpointError) as info:
        load_weights(tiny(), path)
    message = str(info.value)
    assert f"missing keys: {removed}" in message and "unexpected keys: extra.weight" in message


def test_missing_and_unknown_files(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="does not exist"):
        load_weights(tiny(), tmp_path / "nope.safetensors")
    (tmp_path / "w.onnx").write_bytes(b"x")
    with pytest.raises(CheckpointError, match="unknown format '.onnx'"):
        load_weights(tiny(), tmp_path / "w.onnx")
