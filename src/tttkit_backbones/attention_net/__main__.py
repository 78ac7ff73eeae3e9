"""Print the per-module parameter table of the thesis-size network (for the docs)."""

from __future__ import annotations

from .backbone import attention_net, parameter_table, trainable_after_freezing


def main() -> None:
    """Print the table and the thesis's two freezing counts."""
    net = attention_net()
    print(parameter_table(net))
    residual = [f"generator.residual.{i}" for i in range(1, 9)]
    freeze_early = ["generator.encoder", *residual, "discriminator.conv1", "discriminator.conv2"]
    combination_c = [
        "generator.encoder",
        *residual[:4],
        "discriminator.conv1",
        "discriminator.conv2",
        "discriminator.conv3",
    ]
    print()
    print(
        f"trainable, encoder + residual 1-8 + D conv1-2 frozen: "
        f"{trainable_after_freezing(net, freeze_early):,}"
    )
    print(
        f"trainable, encoder + residual 1-4 + D conv1-3 frozen: "
        f"{trainable_after_freezing(net, combination_c):,}"
    )


if __name__ == "__main__":
    main()
