"""The hypothesis profiles of tests/conftest.py: CI draws the same examples everywhere.

Guards the bug of a fresh clone's CI run failing on a random draw nobody could
replay: every property test must take derandomization and the deadline from
the loaded profile, none may override them.
"""

from __future__ import annotations

import importlib
import inspect

import conftest
import pytest
from hypothesis import settings

PROPERTY_MODULES = [
    "test_acl",
    "test_changeset",
    "test_malformed",
    "test_namedict",
    "test_xfr",
    "test_zonefile",
]


@pytest.mark.parametrize(
    ("env", "profile"),
    [
        ({}, "dev"),
        ({"CI": "true"}, "ci"),
        ({"CI": "1"}, "ci"),
        ({"CI": "false"}, "dev"),
        ({"HYPOTHESIS_PROFILE": "explore"}, "explore"),
        ({"CI": "true", "HYPOTHESIS_PROFILE": "explore"}, "explore"),
    ],
)
def test_profile_follows_the_environment(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], profile: str
) -> None:
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("HYPOTHESIS_PROFILE", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert conftest._profile() == profile


def test_ci_profile_is_derandomized_without_deadline_or_database() -> None:
    ci = settings.get_profile("ci")
    assert ci.derandomize is True
    assert ci.deadline is None and ci.database is None and ci.print_blob is True
    assert ci.max_examples == conftest.CI_EXAMPLES
    assert settings.get_profile("dev").deadline is None
    assert settings.get_profile("explore").max_examples > ci.max_examples


def _property_tests() -> list[tuple[str, object]]:
    found: list[tuple[str, object]] = []
    for name in PROPERTY_MODULES:
        module = importlib.import_module(name)
        for attr, value in inspect.getmembers(module, inspect.isfunction):
            if getattr(value, "is_hypothesis_test", False):
                found.append((f"{name}.{attr}", value))
    return found


def test_every_property_test_takes_randomness_and_deadline_from_the_profile() -> None:
    tests = _property_tests()
    assert len(tests) == 14  # a new property test belongs in PROPERTY_MODULES' files
    current = settings.default
    assert current is not None
    for name, test in tests:
        own = test._hypothesis_internal_use_settings  # type: ignore[attr-defined]
        assert own.derandomize == current.derandomize, name
        assert own.deadline is None, name
        assert own.database == current.database, name
