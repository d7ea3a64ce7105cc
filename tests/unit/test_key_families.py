"""The README's table of Redis key families (tests/support/key_families.py parses it): every
row readable, each family told apart from the others, every key function's key in a row."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from types import ModuleType

import pytest

from app.config import load_settings
from app.kernel import keys as kernel_keys
from app.projections import keys as projection_keys
from tests.support.key_families import KINDS, families, family_of

BUILDERS = {"read_model", "read_model_prefix", "external", "ui_state", "idempotency_digest"}
"""Functions that build other functions' keys, or no key: their keys are checked where they
are built (each family has its row; test_redis_key_bounds scans what the app wrote)."""


def _key_functions(*modules: ModuleType) -> list[tuple[str, Callable[..., str]]]:
    return [
        (f"{module.__name__}.{name}", function)
        for module in modules
        for name, function in inspect.getmembers(module, inspect.isfunction)
        if function.__module__ == module.__name__ and name not in BUILDERS
    ]


def _sample_call(function: Callable[..., str]) -> str:
    args = [
        2 if parameter.annotation in (int, "int") else "o1"
        for parameter in inspect.signature(function).parameters.values()
    ]
    return function(*args)


def test_every_row_has_a_pattern_a_server_and_a_bound_of_a_known_kind() -> None:
    table = families()
    assert len(table) > 40
    for family in table:
        assert family.kind in KINDS, family
        assert family.holds and family.grows, family
        if family.kind == "cap":
            assert family.cap > 0, family.pattern


def test_each_row_alone_matches_its_own_kind_of_key() -> None:
    table = families()
    for family in table:
        assert family_of(family.sample(), table) is family, family.pattern


def test_the_settings_a_bound_names_exist() -> None:
    """`STATUS_TTL_SECONDS` and the like are settings (the event archive's are its own)."""
    settings = load_settings({})
    for family in families():
        if not family.archived:
            for name in family.settings:
                assert hasattr(settings, name.lower()), (family.pattern, name)


KEY_FUNCTIONS = dict(_key_functions(kernel_keys, projection_keys))


@pytest.mark.parametrize("name", sorted(KEY_FUNCTIONS))
def test_every_key_function_makes_a_key_of_one_family(name: str) -> None:
    key = _sample_call(KEY_FUNCTIONS[name])
    assert family_of(key, families()) is not None, f"{name}() makes {key}: add its row"
