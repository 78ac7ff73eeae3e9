from __future__ import annotations

import pytest

from tttkit.registry import DuplicateNameError, Registry, UnknownNameError


def make() -> Registry[int]:
    registry: Registry[int] = Registry("strategy")
    for i, name in enumerate(["optimal", "baseline", "combo-a", "combo-b"]):
        registry.register(name, i, plugin="builtin")
    return registry


def test_unknown_name_suggests_close_matches() -> None:
    with pytest.raises(UnknownNameError) as info:
        make().get("optimall")
    assert str(info.value) == "unknown strategy 'optimall' — did you mean 'optimal'?"
    assert info.value.suggestions == ["optimal"]


def test_unknown_name_without_match_points_to_listing() -> None:
    with pytest.raises(UnknownNameError, match="tttkit list"):
        make().get("zzzzzz")


def test_duplicate_name_names_both_plugins() -> None:
    registry = make()
    with pytest.raises(DuplicateNameError) as info:
        registry.register("baseline", 9, plugin="third-party")
    assert "'builtin'" in str(info.value) and "'third-party'" in str(info.value)
    assert registry.get("baseline") == 1  # the first registration stands


def test_glob_listing_and_records() -> None:
    registry = make()
    assert registry.names("combo-*") == ["combo-a", "combo-b"]
    assert registry.names() == ["baseline", "combo-a", "combo-b", "optimal"]
    assert registry.entry("optimal").plugin == "builtin"
    assert "optimal" in registry and "nope" not in registry and len(registry) == 4


def test_factory_parameters_come_from_signature() -> None:
    registry: Registry[object] = Registry("filler")

    def factory(alpha: float = 0.1, folder: str | None = None, *, size: int) -> None:
        """Fill with something."""

    registry.register("x", factory, plugin="p")
    entry = registry.entry("x")
    assert entry.parameters() == {"alpha": 0.1, "folder": None, "size": "<required>"}
    assert entry.description == "Fill with something."
