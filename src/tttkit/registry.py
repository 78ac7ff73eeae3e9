"""Name → component registries, one per plugin kind.

A registry remembers which plugin registered each name, refuses duplicates (naming both plugins;
the plugin host collects every clash of its plugins before it reports them), and answers an
unknown name with the closest registered ones.
"""

from __future__ import annotations

import difflib
import fnmatch
import inspect
import math
import types
import typing
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from tttkit.errors import DuplicateNameError, RegistryError, UnknownNameError

T = TypeVar("T")


@dataclass(frozen=True)
class Entry(Generic[T]):
    """One registered component: the object, where it came from, and kind-specific extras
    (e.g. a backbone's bundled ``weights``)."""

    name: str
    obj: T
    plugin: str
    description: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)

    def parameters(self) -> dict[str, Any]:
        """Keyword parameters of a factory with their defaults (empty for non-callables)."""
        return factory_parameters(self.obj) if callable(self.obj) else {}


#: What :func:`factory_parameters` reports for a parameter without a default.
REQUIRED = "<required>"


def factory_parameters(factory: Callable[..., Any]) -> dict[str, Any]:
    """Return ``{parameter: default}`` for a factory's keyword parameters.

    Parameters without a default map to the string ``"<required>"``.
    """
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):
        return {}
    return {
        p.name: (REQUIRED if p.default is inspect.Parameter.empty else p.default)
        for p in signature.parameters.values()
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    }


def unknown_parameter(
    factory: Callable[..., Any], params: Mapping[str, Any], what: str
) -> str | None:
    """A message naming the first of ``params`` that ``factory`` does not take, else ``None``.

    Factories with ``**kwargs`` take anything. ``what`` names the component ("filler 'black'").
    """
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):  # some builtins have no signature: let the call decide
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in signature.parameters.values()):
        return None
    accepted = list(factory_parameters(factory))
    for key in params:
        if key not in accepted:
            suggestions = close_matches(key, accepted)
            if suggestions:
                hint = " — did you mean " + " or ".join(map(repr, suggestions)) + "?"
            else:
                hint = f" (parameters: {', '.join(accepted) or 'none'})"
            return f"{what} has no parameter {key!r}{hint}"
    return None


def is_number(value: Any) -> bool:
    """An ``int`` or ``float`` that is not a ``bool`` (finite or not)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


#: The scalar types values are checked against, here and in strategy specs
#: (:func:`tttkit.config.replace_checked`): what a value must be, and how a message says it.
SCALARS: dict[type, tuple[Callable[[Any], bool], str]] = {
    bool: (lambda v: isinstance(v, bool), "true or false"),
    int: (lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer"),
    float: (lambda v: is_number(v) and math.isfinite(v), "a number"),
    str: (lambda v: isinstance(v, str), "a string"),
}


def _matches(hint: Any, value: Any) -> bool:
    """Whether ``value`` fits a simple type hint (unknown hints accept anything)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(arg, value) for arg in args)
    if origin is typing.Literal:
        return value in args
    if origin in (tuple, list) or hint in (tuple, list):
        return isinstance(value, (tuple, list))
    if hint is type(None):
        return value is None
    if hint in SCALARS:
        return bool(SCALARS[hint][0](value))
    return True


def _hints(factory: Callable[..., Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(factory)
    except Exception:  # unresolvable annotations: judge by the defaults
        return {}


def _type_mismatch(hint: Any, default: Any, value: Any) -> bool:
    """Whether ``value`` is of the wrong type for a parameter, judged by its annotation, else
    by its default (numbers stand for numbers; strings and booleans for themselves)."""
    if hint is not None:
        return not _matches(hint, value)
    if isinstance(default, (bool, str)):
        return not isinstance(value, type(default))
    if isinstance(default, (int, float)):
        return not _matches(float, value)
    return False


def check_parameters(
    factory: Callable[..., Any], params: Mapping[str, Any], what: str
) -> str | None:
    """A message naming the first of ``params`` that ``factory`` does not take, or whose value
    is not of its default's type (a number where a number is expected…); else ``None``."""
    problem = unknown_parameter(factory, params, what)
    if problem:
        return problem
    defaults, hints = factory_parameters(factory), _hints(factory)
    for key, value in params.items():
        hint = hints.get(key)
        if _type_mismatch(hint, defaults.get(key), value):
            expected = _describe_hint(hint) if hint is not None else type(defaults[key]).__name__
            return f"{what}: parameter {key!r} expects {expected}, got {value!r}"
    return None


def _describe_hint(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def close_matches(name: str, candidates: list[str], n: int = 3) -> list[str]:
    """Registered names closest to ``name``, best first."""
    return difflib.get_close_matches(name, candidates, n=n, cutoff=0.6)


class Registry(Generic[T]):
    """Components of one kind, by name.

    Args:
        kind: singular human name of the kind, used in messages ("strategy", "backbone").
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Entry[T]] = {}

    def register(
        self,
        name: str,
        obj: T,
        *,
        plugin: str,
        description: str = "",
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        """Add ``obj`` under ``name``; raise :class:`DuplicateNameError` if the name is taken."""
        if not isinstance(name, str) or not name:
            raise RegistryError(f"plugin {plugin!r} registered a {self.kind} with an invalid name")
        if name in self._entries:
            first = self._entries[name].plugin
            raise DuplicateNameError(
                f"{self.kind} {name!r} is registered twice: by plugin {first!r} and by plugin "
                f"{plugin!r}; block one of them with --block-plugin or TTTKIT_BLOCK_PLUGINS",
                plugin=plugin,
                clashes=((self.kind, name, (first, plugin)),),
            )
        self._entries[name] = Entry(
            name, obj, plugin, description or _first_doc_line(obj), dict(extra or {})
        )

    def entry(self, name: str) -> Entry[T]:
        """The entry registered as ``name``; :class:`UnknownNameError` with suggestions if none."""
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownNameError(
                self.kind, name, close_matches(name, list(self._entries))
            ) from None

    def get(self, name: str) -> T:
        """The object registered as ``name``."""
        return self.entry(name).obj

    def names(self, pattern: str = "*") -> list[str]:
        """Registered names matching a glob pattern (``fnmatch``), sorted."""
        return sorted(n for n in self._entries if fnmatch.fnmatchcase(n, pattern))

    def entries(self, pattern: str = "*") -> list[Entry[T]]:
        """Entries whose names match a glob pattern, sorted by name."""
        return [self._entries[n] for n in self.names(pattern)]

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {len(self)} entries)"


def _first_doc_line(obj: object) -> str:
    doc = inspect.getdoc(obj) if callable(obj) else getattr(obj, "description", "")
    return (doc or "").strip().splitlines()[0] if doc else ""
