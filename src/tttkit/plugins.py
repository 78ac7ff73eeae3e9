"""Plugin loading: built-ins and third-party plugins through one path, and the registries they fill.

Built-in plugins are the modules in :data:`BUILTIN_PLUGINS`; third-party plugins are the
entry points of group ``tttkit``. Both are loaded by :meth:`PluginHost.load`, which never silences
a failure: a plugin that fails to import raises :class:`PluginLoadError` naming the plugin and its
distribution, chained to the original traceback. A hook implementation whose name matches no hook
specification is rejected at load.

Environment:
    ``TTTKIT_DISABLE_PLUGIN_AUTOLOAD=1`` skips entry-point discovery (built-ins still load).
    ``TTTKIT_BLOCK_PLUGINS=name1,name2`` blocks plugins (built-in or not) by name.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.metadata
import os
import sys
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pluggy

from tttkit import hookspecs
from tttkit.config import StrategySpec
from tttkit.errors import (
    InputError,
    MaskSamplingError,
    PluginContractError,
    PluginLoadError,
    PluginRunError,
    RegistryError,
    RunCancelled,
    SpecError,
)
from tttkit.registry import DuplicateNameError, Registry, close_matches

hookimpl = pluggy.HookimplMarker("tttkit")

ENTRY_POINT_GROUP = "tttkit"
ENV_DISABLE_AUTOLOAD = "TTTKIT_DISABLE_PLUGIN_AUTOLOAD"
ENV_BLOCK = "TTTKIT_BLOCK_PLUGINS"

#: tttkit's own exceptions: they already say what is wrong, so they pass :meth:`PluginHost.
#: naming_failures` unchanged (a finetuning mask's :class:`MaskSamplingError` is handled by the
#: caller; :class:`RunCancelled` may be raised from inside a plugin's forward pass, by
#: :mod:`tttkit.engine.cancellation`, and is the caller's doing, not the plugin's).
OWN_ERRORS = (InputError, SpecError, RegistryError, PluginLoadError, PluginContractError,
              MaskSamplingError, RunCancelled)  # fmt: skip

#: Modules shipped with tttkit that are plugins, loaded before any third-party plugin.
BUILTIN_PLUGINS: tuple[str, ...] = (
    "tttkit.progress",
    "tttkit_backbones.attention_net.plugin",
    "tttkit_backbones.timm_unet",
    "tttkit_backbones.torchscript",
    "tttkit_backbones.lama",
    "tttkit_strategies.finetune_masks",
    "tttkit_strategies.fillers",
    "tttkit_strategies.augmentations",
    "tttkit_strategies.freezing",
    "tttkit_strategies.efficient",
    "tttkit_strategies.output_head",
    "tttkit_strategies.eval_masks",
    "tttkit_strategies.aligners",
    "tttkit_strategies.ablations",
    "tttkit_strategies.defaults",
)

BUILTIN_DISTRIBUTION = "tttkit"


@dataclass(frozen=True)
class Kind:
    """A kind of registered component.

    Attributes:
        name: plural name used on the command line (``tttkit list fillers``).
        singular: name used in messages (``unknown filler 'x'``).
        hook: the registration hook that fills its registry.
    """

    name: str
    singular: str
    hook: str


KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind("backbones", "backbone", "tttkit_register_backbones"),
        Kind("finetune-masks", "finetuning-mask strategy", "tttkit_register_finetune_masks"),
        Kind("fillers", "filler", "tttkit_register_fillers"),
        Kind("augmentations", "augmentation", "tttkit_register_augmentations"),
        Kind("freezing-policies", "freezing policy", "tttkit_register_freezing_policies"),
        Kind("eval-masks", "evaluation-mask kind", "tttkit_register_eval_masks"),
        Kind("reference-aligners", "reference aligner", "tttkit_register_reference_aligners"),
        Kind("strategies", "strategy", "tttkit_register_strategies"),
    )
}


class _BadRegistration(ValueError):
    """A registration callback was given something it cannot register."""


@dataclass
class PluginInfo:
    """A loaded plugin.

    Attributes:
        name: the plugin's name (module path for built-ins, entry-point name otherwise).
        distribution: the installed distribution that provides it.
        version: that distribution's version, if known.
        builtin: whether it ships with tttkit.
        hooks: names of the hooks it implements.
    """

    name: str
    distribution: str
    version: str | None
    builtin: bool
    hooks: list[str] = field(default_factory=list)


@dataclass
class PluginReport:
    """A plugin as ``tttkit plugins`` shows it (:meth:`PluginHost.survey`).

    Attributes:
        info: the plugin's record.
        registered: for each kind, the names it registered.
        problems: why it is broken, one message each (empty when it is not).
    """

    info: PluginInfo
    registered: dict[str, list[str]]
    problems: list[str] = field(default_factory=list)


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def _env_list(name: str) -> list[str]:
    return [s.strip() for s in os.environ.get(name, "").split(",") if s.strip()]


class PluginHost:
    """A pluggy manager with tttkit's hook specifications, plugin records and registries.

    Args:
        autoload: discover entry-point plugins; defaults to not ``TTTKIT_DISABLE_PLUGIN_AUTOLOAD``.
        blocked: plugin names never to load, added to those in ``TTTKIT_BLOCK_PLUGINS``.
    """

    def __init__(self, autoload: bool | None = None, blocked: Iterable[str] = ()) -> None:
        self.pm = pluggy.PluginManager("tttkit")
        self.pm.add_hookspecs(hookspecs)
        self.autoload = (not _env_flag(ENV_DISABLE_AUTOLOAD)) if autoload is None else autoload
        self.blocked = set(blocked) | set(_env_list(ENV_BLOCK))
        for name in self.blocked:
            self.pm.set_blocked(name)
        self.plugins: dict[str, PluginInfo] = {}
        #: Plugins that failed to import under ``load(keep_going=True)``, with the error.
        self.failed: dict[str, tuple[PluginInfo, PluginLoadError]] = {}
        self._registries: dict[str, Registry[Any]] | None = None
        self._building: str | None = None  # the plugin whose registration hook is running

    # -- loading ------------------------------------------------------------------------------

    def load(self, *, keep_going: bool = False) -> PluginHost:
        """Load the built-in plugins, then (if autoloading) the entry-point plugins.

        Args:
            keep_going: record a plugin that fails to import or register in :attr:`failed`
                and load the others, instead of raising (for ``tttkit plugins``, which must
                list every plugin exactly when one is broken).

        Raises:
            PluginLoadError: a plugin failed to import or register (unless ``keep_going``).
        """
        for module_name in BUILTIN_PLUGINS:
            self._load(
                module_name,
                lambda m=module_name: importlib.import_module(m),
                BUILTIN_DISTRIBUTION,
                builtin=True,
                keep_going=keep_going,
            )
        if self.autoload:
            for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
                dist = ep.dist.name if ep.dist is not None else "<unknown distribution>"
                self._load(ep.name, ep.load, dist, builtin=False, keep_going=keep_going)
        return self

    def _load(
        self,
        name: str,
        loader: Callable[[], object],
        distribution: str,
        *,
        builtin: bool,
        keep_going: bool = False,
    ) -> None:
        if name in self.blocked or name in self.plugins:
            return
        try:
            try:
                plugin = loader()
            except (Exception, SystemExit) as exc:  # sys.exit() at import must not end tttkit
                raise PluginLoadError(
                    f"plugin {name!r} from distribution {distribution!r} failed to import: "
                    f"{type(exc).__name__}: {exc}",
                    plugin=name,
                ) from exc
            self.register(plugin, name, distribution=distribution, builtin=builtin)
        except PluginLoadError as exc:
            if not keep_going:
                raise
            info = PluginInfo(name, distribution, _distribution_version(distribution), builtin)
            self.failed[name] = (info, exc)

    def register(
        self,
        plugin: object,
        name: str,
        *,
        distribution: str = "<runtime>",
        builtin: bool = False,
    ) -> None:
        """Register a plugin object (a module or any object with hook implementations).

        Raises:
            PluginLoadError: a hook implementation matches no specification or has parameters
                its specification does not offer.
        """
        _check_hook_names(plugin, name, self.pm)
        try:
            self.pm.register(plugin, name=name)
        except pluggy.PluginValidationError as exc:
            raise PluginLoadError(
                f"plugin {name!r} from {distribution!r} is invalid: {exc}", plugin=name
            ) from exc
        hooks = sorted(h.name for h in self.pm.get_hookcallers(plugin) or [])
        version = _distribution_version(distribution)
        self.plugins[name] = PluginInfo(name, distribution, version, builtin, hooks)
        self._registries = None

    def unregister(self, name: str) -> None:
        """Remove a plugin registered under ``name``."""
        self.pm.unregister(name=name)
        self.plugins.pop(name, None)
        self._registries = None

    def owner(self, module: str) -> PluginInfo | None:
        """The loaded plugin whose code ``module`` (a dotted module name) is, or ``None`` for
        tttkit's core and code outside every plugin: the plugin sharing the longest leading
        part of the module path (``tttkit_backbones.attention_net.backbone`` belongs to
        ``tttkit_backbones.attention_net.plugin``)."""
        if module == "tttkit" or module.startswith("tttkit."):
            return None  # the core (its observers included) is never a plugin's fault
        parts = module.split(".")
        best, best_shared = None, 0
        for name, info in self.plugins.items():
            plugin = self.pm.get_plugin(name)
            home = getattr(plugin, "__name__", None) or type(plugin).__module__
            shared = 0
            for mine, theirs in zip(parts, home.split("."), strict=False):
                if mine != theirs:
                    break
                shared += 1
            if shared > best_shared:
                best, best_shared = info, shared
        return best

    def blame(self, error: Exception) -> PluginInfo | None:
        """The plugin whose code raised ``error``: the owner of the innermost frame of its
        traceback that belongs to a plugin (``None`` if none does)."""
        frames = traceback.extract_tb(error.__traceback__)
        modules = {getattr(m, "__file__", None): n for n, m in list(sys.modules.items())}
        for frame in reversed(frames):
            module = modules.get(frame.filename)
            info = self.owner(module) if module else None
            if info is not None:
                return info
        return None

    @contextlib.contextmanager
    def naming_failures(
        self, doing: str = "during the run", plugin: str | None = None
    ) -> Iterator[None]:
        """Re-raise an exception that plugin code raises inside as a :class:`PluginRunError`
        naming the plugin and its distribution (:meth:`run_error`); tttkit's own errors, and
        failures outside every plugin, pass unchanged.

        Args:
            doing: what the plugin code was doing, for the message (``"building backbone
                'x'"``).
            plugin: the plugin answerable for the code called inside (the one that registered
                the factory being called); by default the plugin whose code raised.
        """
        try:
            yield
        except OWN_ERRORS:
            raise
        except Exception as exc:
            error = self.run_error(exc, doing, plugin)
            if error is None:
                raise
            raise error from exc

    def run_error(
        self, error: Exception, doing: str = "during the run", plugin: str | None = None
    ) -> PluginRunError | None:
        """``error`` as one line naming the plugin to blame and its distribution, or ``None``
        when it is tttkit's own or no plugin is to blame (see :meth:`naming_failures`)."""
        if isinstance(error, OWN_ERRORS):
            return None
        if plugin is None:
            owner = self.blame(error)
            if owner is None:
                return None
            plugin = owner.name
        return PluginRunError(
            f"{self.describe(plugin)} failed {doing}: {type(error).__name__}: {_first_line(error)}",
            plugin=plugin,
        )

    # -- registries ---------------------------------------------------------------------------

    def registry(self, kind: str) -> Registry[Any]:
        """The registry of one kind (see :data:`KINDS`), built from the registration hooks."""
        if kind not in KINDS:
            raise KeyError(
                f"unknown kind {kind!r}; kinds: {', '.join(KINDS)}"
                + _did_you_mean(kind, list(KINDS))
            )
        if self._registries is None:
            if self._building is not None:
                raise PluginLoadError(
                    f"{self.describe(self._building)} looked up the {kind} registry while "
                    "registering (e.g. tttkit.get_strategy inside a registration hook): the "
                    "registries are not built yet. Derive from a preset object instead "
                    "(from tttkit_strategies.presets import BASELINE, or preset('baseline'))",
                    plugin=self._building,
                )
            clashes: list[_Clash] = []
            registries = {k.name: self._build(k, clashes) for k in KINDS.values()}
            if clashes:  # every one at once, not the first: each may need its own way out
                raise self._clash_error(clashes)
            self._registries = registries
        return self._registries[kind]

    def _build(
        self, kind: Kind, clashes: list[_Clash], failures: dict[str, list[str]] | None = None
    ) -> Registry[Any]:
        """One kind's registry from every plugin's registration hook. A hook that fails raises
        :class:`PluginLoadError`, or with ``failures`` is recorded there (plugin → messages)
        and the other plugins still register (:meth:`survey`)."""
        registry: Registry[Any] = Registry(kind.singular)
        caller = getattr(self.pm.hook, kind.hook)
        for impl in caller.get_hookimpls():  # registration order: built-ins first
            register = _register_callback(registry, kind, impl.plugin_name, clashes)
            self._building = impl.plugin_name
            try:
                impl.function(**{arg: register for arg in impl.argnames})
            except PluginLoadError as exc:  # it names the plugin already
                if failures is None:
                    raise
                failures.setdefault(impl.plugin_name, []).append(str(exc))
            except (Exception, SystemExit) as exc:
                what = (
                    str(exc)
                    if isinstance(exc, _BadRegistration)
                    else f"{type(exc).__name__}: {exc}"
                )
                if failures is not None:
                    failures.setdefault(impl.plugin_name, []).append(
                        f"failed in {kind.hook}: {what}"
                    )
                    continue
                raise PluginLoadError(
                    f"{self.describe(impl.plugin_name)} failed in {kind.hook}: {what}",
                    plugin=impl.plugin_name,
                ) from exc
            finally:
                self._building = None
        return registry

    def survey(self) -> list[PluginReport]:
        """Every plugin with what it registered, or why it is broken — failed to import
        (under ``load(keep_going=True)``), failed in a registration hook, or registered a name
        another plugin had registered first — without raising for any plugin's failure: the
        view of ``tttkit plugins``, which must work exactly when a plugin is broken. The
        registries built here are not kept: a broken set still fails every other command."""
        failures: dict[str, list[str]] = {}
        clashes: list[_Clash] = []
        registries = {k.name: self._build(k, clashes, failures) for k in KINDS.values()}
        for kind, name, first, later in clashes:  # the first registration stands
            failures.setdefault(later, []).append(
                f"registered {kind} {name!r}, already registered by {self.describe(first)}"
            )
        reports = []
        for plugin, info in self.plugins.items():
            registered: dict[str, list[str]] = {}
            for kind, registry in registries.items():
                names = [e.name for e in registry.entries() if e.plugin == plugin]
                if names:
                    registered[kind] = names
            reports.append(PluginReport(info, registered, failures.get(plugin, [])))
        reports += [PluginReport(info, {}, [str(exc)]) for info, exc in self.failed.values()]
        return reports

    def _clash_error(self, clashes: list[_Clash]) -> DuplicateNameError:
        """One error listing every name registered more than once, each with its plugins and
        their distributions, and which plugin to block."""
        grouped: dict[tuple[str, str], list[str]] = {}
        for kind, name, first, later in clashes:
            grouped.setdefault((kind, name), [first]).append(later)

        def by(plugins: list[str]) -> str:
            return "by " + " and by ".join(map(self.describe, plugins))

        if len(grouped) == 1:
            ((kind, name), plugins), *_ = grouped.items()
            times = "twice" if len(plugins) == 2 else f"{len(plugins)} times"
            message = f"{kind} {name!r} is registered {times}: {by(plugins)}"
        else:
            message = f"{len(grouped)} names are registered more than once: " + "; ".join(
                f"{kind} {name!r} {by(plugins)}" for (kind, name), plugins in grouped.items()
            )
        builtin = {name for name, info in self.plugins.items() if info.builtin}
        third_party = sorted({p for plugins in grouped.values() for p in plugins} - builtin)
        if len(third_party) == 1:  # the one to block, whichever clash
            blame: str | None = third_party[0]
            hint = f"; skip plugin {blame!r} with --block-plugin {blame}"
        else:
            blame, hint = None, "; block one plugin of each clash with --block-plugin NAME"
        return DuplicateNameError(
            message + hint,
            plugin=blame,
            clashes=tuple((k, n, tuple(p)) for (k, n), p in grouped.items()),
        )

    def describe(self, plugin: str) -> str:
        """``plugin 'x' from distribution 'y'``, for messages naming a plugin."""
        info = self.plugins.get(plugin)
        where = f" from distribution {info.distribution!r}" if info is not None else ""
        return f"plugin {plugin!r}{where}"

    def registered_by(self, plugin: str) -> dict[str, list[str]]:
        """For each kind, the names that ``plugin`` registered."""
        out: dict[str, list[str]] = {}
        for kind in KINDS:
            names = [e.name for e in self.registry(kind).entries() if e.plugin == plugin]
            if names:
                out[kind] = names
        return out

    @property
    def hook(self) -> Any:
        """The pluggy hook relay, for calling observer hooks."""
        return self.pm.hook


#: A name registered again: ``(kind, name, the plugin that registered it first, this plugin)``.
_Clash = tuple[str, str, str, str]


def _clashed(registry: Registry[Any], name: object, plugin: str, clashes: list[_Clash]) -> bool:
    """Record a clash if ``name`` is taken (the first registration stands); the host reports
    every clash together once all registration hooks have run."""
    if not isinstance(name, str) or name not in registry:
        return False
    clashes.append((registry.kind, name, registry.entry(name).plugin, plugin))
    return True


def _register_callback(
    registry: Registry[Any], kind: Kind, plugin: str, clashes: list[_Clash]
) -> Callable[..., None]:
    if kind.name == "strategies":

        def register_strategy(spec: StrategySpec) -> None:
            if not isinstance(spec, StrategySpec):
                raise _BadRegistration(
                    f"registered a strategy that is not a StrategySpec: {spec!r}"
                )
            if not _clashed(registry, spec.name, plugin, clashes):
                registry.register(spec.name, spec, plugin=plugin, description=spec.description)

        return register_strategy

    def register(
        name: str,
        factory: Callable[..., Any],
        description: str = "",
        weights: str | os.PathLike[str] | None = None,
        checkpoints: Mapping[str, Any] | None = None,
    ) -> None:
        if not callable(factory):
            raise _BadRegistration(
                f"registered {kind.singular} {name!r} with a non-callable factory"
            )
        if (weights is not None or checkpoints) and kind.name != "backbones":
            raise _BadRegistration(f"only backbones take weights or checkpoints ({name!r})")
        extra: dict[str, Any] = {}
        if weights is not None:
            extra["weights"] = str(weights)
        if checkpoints:
            extra["checkpoints"] = _checked_checkpoints(name, checkpoints)
        if not _clashed(registry, name, plugin, clashes):
            registry.register(name, factory, plugin=plugin, description=description, extra=extra)

    return register


def _checked_checkpoints(backbone: str, checkpoints: Mapping[str, Any]) -> dict[str, Any]:
    """A backbone's known checkpoints (``tttkit.weights_store.Checkpoint`` by name)."""
    from tttkit.weights_store import NAME_PATTERN, Checkpoint

    for key, value in checkpoints.items():
        if not isinstance(value, Checkpoint) or not NAME_PATTERN.match(f"{backbone}:{key}"):
            raise _BadRegistration(
                f"checkpoint {key!r} of backbone {backbone!r}: expected a name of letters, "
                "digits, '.', '_' or '-' and a tttkit.weights_store.Checkpoint"
            )
    return dict(checkpoints)


def _check_hook_names(plugin: object, name: str, pm: pluggy.PluginManager) -> None:
    """Reject hook implementations that match no specification (likely a typo)."""
    known = [n for n in dir(hookspecs) if n.startswith("tttkit_")]
    for attr in dir(plugin):
        if pm.parse_hookimpl_opts(plugin, attr) is None or attr in known:
            continue
        raise PluginLoadError(
            f"plugin {name!r} implements unknown hook {attr!r}" + _did_you_mean(attr, known),
            plugin=name,
        )


def _first_line(error: BaseException) -> str:
    """The first line of an exception's message (torch's run over several): a failure is
    reported in one line, the whole message and traceback under ``--debug``."""
    lines = [line for line in str(error).splitlines() if line.strip()]
    if not lines:
        return "(no message)"
    return lines[0] + (" …" if len(lines) > 1 else "")


def _did_you_mean(name: str, candidates: list[str]) -> str:
    matches = close_matches(name, candidates)
    return f" — did you mean {matches[0]!r}?" if matches else ""


def _distribution_version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except (importlib.metadata.PackageNotFoundError, ValueError):
        return None


# -- the process-wide host ----------------------------------------------------------------------

_host: PluginHost | None = None
#: The settings the process-wide host loads under (:func:`configure`).
_settings: dict[str, Any] = {}


def get_host() -> PluginHost:
    """The process-wide plugin host, loaded on first use (under :func:`configure`'s settings).

    Raises:
        PluginLoadError: a plugin failed to load (the next call tries again).
    """
    global _host
    if _host is None:
        _host = PluginHost(**_settings).load()
    return _host


def survey_host() -> PluginHost:
    """The process-wide host if it loads, else a host under the same settings that loaded
    every plugin it could (the others in :attr:`PluginHost.failed`), for
    :meth:`PluginHost.survey`."""
    try:
        return get_host()
    except PluginLoadError:
        return PluginHost(**_settings).load(keep_going=True)


def loaded_host() -> PluginHost | None:
    """The process-wide plugin host if it has been loaded, else ``None`` (never loads it)."""
    return _host


def configure(
    autoload: bool | None = None, blocked: Iterable[str] = (), *, load: bool = True
) -> PluginHost | None:
    """Replace the process-wide host with one under these settings: loaded now, or (with
    ``load=False``, as the command line does so that ``--help`` loads nothing) on first use."""
    global _host, _settings
    _host, _settings = None, {"autoload": autoload, "blocked": tuple(blocked)}
    return get_host() if load else None


def reset() -> None:
    """Forget the process-wide host and its settings; the next :func:`get_host` loads afresh."""
    global _host, _settings
    _host, _settings = None, {}
