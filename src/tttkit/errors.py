"""Every exception a user of tttkit can meet, in one place.

Each message is meant for the user as is: it names the file, option, field, plugin or
component at fault and says what to do. The command line turns :class:`InputError`,
:class:`SpecError` and :class:`RegistryError` into a one-line message and exit code 2, and
:class:`PluginLoadError` (:class:`DuplicateNameError` included) into one line and exit code 1
(``docs/limits.md``).

These classes were first defined in the modules that raise them; they are still importable
from there (``tttkit.io.InputError``, ``tttkit.config.SpecError``, …). A plugin's broken contract
(:class:`PluginContractError`) or an exception in its code during a run
(:class:`PluginRunError`) is one line naming the plugin and exit code 1; ``tttkit --debug`` shows
the traceback.
"""

from __future__ import annotations


class InputError(ValueError):
    """A user-supplied file or option is unusable; the message names it."""


class CheckpointError(InputError):
    """A checkpoint cannot be used; the message names the file and what is wrong."""


class SpecError(ValueError):
    """A strategy spec or override is invalid; the message names the field."""


class RegistryError(LookupError):
    """Base class of registry errors; the message is meant for the user as is."""


class UnknownNameError(RegistryError, KeyError):
    """A name was looked up that no plugin registered."""

    def __init__(self, kind: str, name: str, suggestions: list[str]) -> None:
        self.kind, self.name, self.suggestions = kind, name, suggestions
        message = f"unknown {kind} {name!r}"
        if suggestions:
            message += " — did you mean " + " or ".join(repr(s) for s in suggestions) + "?"
        else:
            message += " (see `tttkit list` for what is registered)"
        super().__init__(message)

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class PluginLoadError(RuntimeError):
    """A plugin could not be imported or registered, or broke while registering.

    Attributes:
        plugin: the plugin's name, when one is to blame.
    """

    def __init__(self, message: str, plugin: str | None = None) -> None:
        super().__init__(message)
        self.plugin = plugin


class DuplicateNameError(PluginLoadError, RegistryError):
    """Plugins registered the same name for one kind: a broken plugin set (exit code 1), not a
    usage error. The message lists every clash with the plugins and their distributions.

    Attributes:
        plugin: the one third-party plugin involved in every clash, when there is one (the
            one to block); else ``None``.
        clashes: ``(kind, name, plugins)`` for each name registered more than once, the
            plugins in registration order (the first one's registration stands).
    """

    def __init__(
        self,
        message: str,
        plugin: str | None = None,
        clashes: tuple[tuple[str, str, tuple[str, ...]], ...] = (),
    ) -> None:
        super().__init__(message, plugin)
        self.clashes = clashes


class PluginContractError(RuntimeError):
    """A plugin's component returned something its contract forbids (a backbone's fill of the
    wrong size or not finite, say); the message names the component and what was expected.

    Attributes:
        plugin: the plugin's name, when one is to blame.
    """

    def __init__(self, message: str, plugin: str | None = None) -> None:
        super().__init__(message)
        self.plugin = plugin


class PluginRunError(PluginContractError):
    """Plugin code raised an exception (a factory, a hook, a backbone's forward pass, a
    component's call); the message names the plugin, its distribution and the original exception
    (chained as ``__cause__``, the plugin author's traceback)."""


class MaskSamplingError(RuntimeError):
    """No finetuning mask satisfying the strategy's constraints could be drawn."""


class RunCancelled(Exception):
    """The caller asked a run to stop (``adapt(cancel=…)``); nothing was returned or written.

    Attributes:
        step: the last finetuning step completed before the run stopped.
    """

    def __init__(self, step: int) -> None:
        super().__init__(f"cancelled after step {step}")
        self.step = step
