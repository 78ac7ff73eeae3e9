"""Shared pieces of the command-line interface: option aliases, error reporting, output."""

from __future__ import annotations

import functools
import inspect
import json
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import click
import typer
from rich.console import Console
from rich.markup import escape

from tttkit.config import SpecError
from tttkit.errors import DuplicateNameError, InputError, PluginContractError
from tttkit.options import Overrides, RunOptions
from tttkit.plugins import PluginLoadError, loaded_host
from tttkit.registry import RegistryError

if TYPE_CHECKING:
    from torch import Tensor

F = TypeVar("F", bound=Callable[..., Any])

#: Exit code of usage errors: bad option values, unknown names, unreadable inputs.
USAGE_ERROR = 2

JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]

# Strategy overrides shared by every command that runs or shows a strategy.
StepsOption = Annotated[int | None, typer.Option("--steps", min=0, help="Finetuning steps.")]


def finite(value: float | None) -> float | None:
    """Option callback: refuse ``inf`` and ``nan``, which click's float type accepts."""
    if value is not None and not math.isfinite(value):
        raise typer.BadParameter(f"must be a finite number, got {value}")
    return value


LrOption = Annotated[
    float | None, typer.Option("--lr", min=0.0, callback=finite, help="Learning rate.")
]
#: Seeds go to torch and numpy generators, which take 64-bit values.
MAX_SEED = 2**63 - 1
SeedOption = Annotated[
    int, typer.Option("--seed", min=0, max=MAX_SEED, help="Seed of every random choice.")
]
MaxPixelsOption = Annotated[
    int | None,
    typer.Option(
        "--max-pixels",
        min=1,
        help="Refuse photos larger than this many pixels [default: $TTTKIT_MAX_PIXELS, else "
        "120 megapixels].",
        show_default=False,
    ),
]
BatchSizeOption = Annotated[
    int | None, typer.Option("--batch-size", min=1, help="Views per finetuning step.")
]
# Not "--mask": on `inpaint` that names the user's mask file.
MaskOption = Annotated[
    str | None,
    typer.Option(
        "--finetune-mask", help="Finetuning-mask strategy (see `tttkit list finetune-masks`)."
    ),
]
FillerOption = Annotated[
    str | None, typer.Option("--filler", help="User-hole filler (see `tttkit list fillers`).")
]
AugmentOption = Annotated[
    str | None,
    typer.Option("--augment", help="'none' or name[:p],… (see `tttkit list augmentations`)."),
]
FreezeOption = Annotated[
    str | None,
    typer.Option("--freeze", help="Freezing policy (see `tttkit list freezing-policies`)."),
]
SetOption = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override any field: path.to.field=value (JSON value). Repeatable."),
]

SelectOption = Annotated[
    str | None,
    typer.Option(
        "--select",
        help="Output to return: best (scored on a held-out part of the image), last, raw "
        "[default: the strategy's].",
        show_default=False,
    ),
]
EarlyStopOption = Annotated[
    int | None,
    typer.Option("--early-stop", min=0, help="Stop after N evaluations without improvement."),
]
RefitOption = Annotated[
    bool | None,
    typer.Option(
        "--refit/--no-refit",
        help="With --select best or --early-stop: rerun the chosen step count on the whole "
        "known region [default: the strategy's].",
        show_default=False,
    ),
]

#: Every strategy override as a command-line option, declared once (:class:`Overrides`).
OVERRIDE_OPTIONS: dict[str, Any] = {
    "steps": StepsOption, "lr": LrOption, "batch_size": BatchSizeOption,
    "finetune_mask": MaskOption, "filler": FillerOption, "augment": AugmentOption,
    "freeze": FreezeOption, "select": SelectOption, "early_stop": EarlyStopOption,
    "refit": RefitOption, "sets": SetOption,
}  # fmt: skip


PrecisionOption = Annotated[
    str,
    typer.Option(
        "--precision",
        help="auto (bf16 where the GPU or CPU computes it natively: AVX512-BF16/AMX; else "
        "fp32), fp32, bf16.",
    ),
]
DeviceOption = Annotated[str, typer.Option("--device", help="auto, cpu or cuda.")]
ChannelsLastOption = Annotated[
    bool, typer.Option("--channels-last", help="Channels-last memory layout (some GPUs).")
]

#: The run options a user sets on the command line, declared once (:class:`RunOptions`);
#: ``show_progress`` and ``keep_outputs`` follow from the command and its other flags.
RUN_OPTIONS: dict[str, Any] = {
    "seed": SeedOption, "device": DeviceOption, "precision": PrecisionOption,
    "channels_last": ChannelsLastOption,
}  # fmt: skip
#: Command-line defaults where they differ from ``None`` (the library runs on the CPU unless
#: asked; the command line takes a GPU when there is one).
OPTION_DEFAULTS: dict[str, Any] = {
    "seed": 0, "device": "auto", "precision": "auto", "channels_last": False,
}  # fmt: skip


def _with_value(command: F, name: str, build: Callable[..., Any], options: dict[str, Any]) -> F:
    """Give ``command`` the CLI ``options``; it receives them as one argument ``name``, the
    value ``build(**options)``. Each option keeps its own default (``None`` unless declared)."""
    signature = inspect.signature(command, eval_str=True)
    own = [p for p in signature.parameters.values() if p.name != name]
    added = [
        inspect.Parameter(key, inspect.Parameter.KEYWORD_ONLY, default=OPTION_DEFAULTS.get(key),
                          annotation=option)
        for key, option in options.items()
    ]  # fmt: skip

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        values = {key: kwargs.pop(key, OPTION_DEFAULTS.get(key)) for key in options}
        return command(*args, **{name: build(**values)}, **kwargs)

    wrapper.__signature__ = signature.replace(parameters=[*own, *added])  # type: ignore[attr-defined]
    wrapper.__annotations__ = {
        **{k: v for k, v in command.__annotations__.items() if k != name},
        **options,
    }
    return wrapper  # type: ignore[return-value]


def with_overrides(command: F) -> F:
    """Give a command every strategy override option; it receives them as one
    ``overrides: Overrides`` argument (declare that parameter, with no default)."""
    return _with_value(
        command, "overrides", lambda **v: Overrides.from_mapping(v), OVERRIDE_OPTIONS
    )


def with_run_options(command: F) -> F:
    """Give a command the run options a user sets (seed, device, precision, memory layout); it
    receives them as one ``run: RunOptions`` argument (declare that parameter, with no default)
    and sets what the command decides itself (``show_progress``, ``keep_outputs``)."""
    return _with_value(command, "run", RunOptions, RUN_OPTIONS)


BackboneOptionsOption = Annotated[
    list[str] | None,
    typer.Option(
        "--backbone-option",
        help="Backbone factory option key=value (JSON value), e.g. width=32 or path=model.pt.",
    ),
]


def parse_options(items: list[str] | None, option: str = "--backbone-option") -> dict[str, Any]:
    """``["k=v", …]`` → ``{k: v}`` with JSON values (plain strings otherwise)."""
    from tttkit.config import parse_assignment

    return dict(parse_assignment(item, option) for item in items or [])


stdout = Console(soft_wrap=True)
stderr = Console(stderr=True, soft_wrap=True)


def fail(message: str, code: int = USAGE_ERROR) -> typer.Exit:
    """Print a one-line error to standard error and return the exit to raise."""
    # Escaped: a message is plain text, and rich would drop a bracketed part of it
    # ("[tool.setuptools.package-data]", a file name with brackets) as a markup tag.
    stderr.print(f"[bold red]error:[/] {escape(message)}", highlight=False, markup=True)
    return typer.Exit(code)


#: Set to 1 (or pass ``--debug``) to see the traceback of a plugin that fails.
ENV_TRACEBACK = "TTTKIT_TRACEBACK"


#: Set by ``tttkit --debug`` for this invocation.
_debug = False


def set_debug(enabled: bool) -> None:
    """Show plugin tracebacks in this invocation (the ``--debug`` flag)."""
    global _debug
    _debug = enabled


def debugging() -> bool:
    """Whether plugin failures show their traceback (``--debug`` or ``TTTKIT_TRACEBACK=1``)."""
    import os

    return _debug or os.environ.get(ENV_TRACEBACK, "").strip().lower() in ("1", "true", "yes")


def _plugin_traceback(exc: BaseException) -> str:
    """Print the plugin's traceback under ``--debug``; else the hint saying how to see it."""
    if debugging():
        import traceback

        traceback.print_exception(exc.__cause__ or exc)  # the plugin author's lead
        return ""
    return " (--debug shows the plugin's traceback)"


def plugin_failure(exc: PluginLoadError) -> typer.Exit:
    """Report a broken plugin in one line (its traceback under ``--debug``); exit code 1."""
    if isinstance(exc, DuplicateNameError):  # no plugin code failed: no traceback to show
        return fail(str(exc), code=1)
    hint = _plugin_traceback(exc)
    blocking = f"; skip it with --block-plugin {exc.plugin}" if exc.plugin else ""
    return fail(f"{exc}{blocking}{hint}", code=1)


def _blocking_hint(exc: PluginContractError) -> str:
    """``--block-plugin NAME`` for a failing third-party plugin (a built-in one is tttkit)."""
    name, host = getattr(exc, "plugin", None), loaded_host()
    info = host.plugins.get(name) if name and host is not None else None
    return f"; skip it with --block-plugin {name}" if info and not info.builtin else ""


def user_errors(command: F) -> F:
    """Turn the errors a user can fix into a one-line message and exit code 2, and a plugin's
    broken contract, or any exception raised in plugin code, into one line naming the plugin
    and exit code 1 (the traceback under ``--debug``)."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except PluginLoadError as exc:  # a plugin broke while the registries were being built
            # (before RegistryError: plugins registering one name twice are not a usage error)
            raise plugin_failure(exc) from None
        except (RegistryError, SpecError, InputError) as exc:
            raise fail(str(exc)) from None
        except PluginContractError as exc:  # a plugin's component broke its contract
            raise fail(f"{exc}{_blocking_hint(exc)}{_plugin_traceback(exc)}", code=1) from None
        except (typer.Exit, typer.Abort, click.ClickException):
            raise
        except Exception as exc:
            # The net under every call into plugin code that no narrower naming_failures
            # covers: the plugin whose code raised is named. Plugins are never loaded here:
            # a failure before they were is not theirs.
            host = loaded_host()
            error = None if host is None else host.run_error(exc)
            if error is None:
                raise
            error.__cause__ = exc
            raise fail(f"{error}{_blocking_hint(error)}{_plugin_traceback(error)}", 1) from None

    return wrapper  # type: ignore[return-value]


def print_json(data: Any) -> None:
    """Write JSON to standard output (never through rich, so it stays parseable)."""
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def read_holes(
    user_mask: Path | None,
    image: Path,
    size: tuple[int, ...],
    resize_mask: bool,
    max_pixels: int | None,
) -> Tensor:
    """The mask of one photo (``--mask``), resized to ``size`` with ``--resize-mask``, as uint8
    (a quarter of float32's memory on a large photo)."""
    import torch
    import torch.nn.functional as F

    from tttkit.io import read_mask

    if user_mask is None:
        raise InputError("--mask: give the mask of IMAGE (white = hole)")
    holes = read_mask(user_mask, max_pixels=max_pixels)
    if tuple(holes.shape[-2:]) != size:
        if not resize_mask:
            raise InputError(
                f"mask {user_mask} is {holes.shape[-1]}×{holes.shape[-2]} but image {image} is "
                f"{size[1]}×{size[0]} (pass --resize-mask to resize it)"
            )
        holes = (F.interpolate(holes[None], size=size, mode="nearest")[0] > 0.5).float()
    return holes.to(torch.uint8)
