"""The one registry mechanism behind policies, signal providers and meters."""

from __future__ import annotations

import pytest

from casa_sched.registry import Registry


class FamilyError(ValueError):
    pass


def registry() -> Registry[int]:
    r: Registry[int] = Registry("widget", FamilyError)
    r.add("b", 2)
    r.add("a", 1)
    return r


def test_entries_are_found_by_name_and_listed_sorted():
    r = registry()
    assert (r.get("a"), r.get("b")) == (1, 2)
    assert r.names() == ("a", "b")
    assert "a" in r
    assert "c" not in r


@pytest.mark.parametrize(
    ("action", "message"),
    [
        pytest.param(lambda r: r.get("c"), r"unknown widget 'c'; known: a, b", id="unknown"),
        pytest.param(lambda r: r.add("a", 9), r"widget 'a' registered twice", id="twice"),
        pytest.param(lambda r: r.register("b")(9), r"widget 'b' registered twice", id="twice-by-decorator"),
        pytest.param(lambda r: r.remove("c"), r"unknown widget 'c'", id="remove-unknown"),
    ],
)
def test_mistakes_raise_the_familys_error_naming_what_is_known(action, message):
    r = registry()
    with pytest.raises(FamilyError, match=message):
        action(r)
    assert r.names() == ("a", "b")  # nothing changed


def test_a_copy_is_independent():
    r = registry()
    c = r.copy()
    c.add("c", 3)
    c.remove("a")
    assert (r.names(), c.names()) == (("a", "b"), ("b", "c"))
