"""The hypothesis profiles of tests/conftest.py: CI draws the same examples everywhere.

Guards the bug of a fresh clone's CI run failing on a random draw nobody could
replay: every property test must take derandomization and the deadline from
the loaded profile, none may override them.
"""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path

import conftest
import pytest
from hypothesis import settings

# Every test module that uses hypothesis, found by reading the files, so a new
# property test cannot escape the check by living somewhere new.
PROPERTY_MODULES = sorted(
    path.stem
    for path in Path(__file__).parent.glob("test_*.py")
    if re.search(r"^from hypothesis import|^import hypothesis", path.read_text(), re.M)
    and path.stem != "test_hypothesis_profiles"
)


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
    # Each module that imports hypothesis has at least one property test.
    assert {name.split(".")[0] for name, _ in tests} == set(PROPERTY_MODULES)
    assert len(tests) >= 17
    current = settings.default
    assert current is not None
    for name, test in tests:
        own = test._hypothesis_internal_use_settings  # type: ignore[attr-defined]
        assert own.derandomize == current.derandomize, name
        assert own.deadline is None, name
        assert own.database == current.database, name
