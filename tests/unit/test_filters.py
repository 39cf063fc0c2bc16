"""Subscription filters (``gateway.filters``) without sockets: parsing, matching, intersection."""

from __future__ import annotations

import fnmatch

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.core.filters import Filter, FilterError, parse_entities, parse_types


def test_parse_types_splits_and_strips() -> None:
    assert parse_types("task.*, provider.status_changed,,") == ("task.*", "provider.status_changed")
    assert parse_types(None) == parse_types("") == ()


@pytest.mark.parametrize("raw", ["Task.*", "task progress", "a" * 201, "task.;drop"])
def test_parse_types_refuses_malformed_globs(raw: str) -> None:
    with pytest.raises(FilterError):
        parse_types(raw)


def test_parse_entities() -> None:
    assert parse_entities("task:abc, provider:*") == (("task", "abc"), ("provider", "*"))
    assert parse_entities(None) == ()
    for bad in ("task", ":abc", "task:", "x" * 201 + ":y"):
        with pytest.raises(FilterError):
            parse_entities(bad)


def test_empty_filter_matches_everything() -> None:
    flt = Filter()
    assert flt.matches_all
    assert flt.matches("task.progress", None, None)


def test_type_globs_and_entity_selectors_combine_with_and() -> None:
    flt = Filter(types=("task.*",), entities=(("task", "abc"),))
    assert flt.matches("task.progress", "task", "abc")
    assert not flt.matches("task.progress", "task", "xyz")
    assert not flt.matches("provider.status_changed", "task", "abc")
    assert not flt.matches("task.progress", None, None)  # no entity never matches a selector


def test_entity_wildcard_id() -> None:
    flt = Filter(entities=(("provider", "*"),))
    assert flt.matches("provider.status_changed", "provider", "p1")
    assert not flt.matches("provider.status_changed", "task", "p1")


def test_intersect_never_widens() -> None:
    asked = Filter(types=("task.*",))
    narrowed = asked.intersect(["task.progress"], [("task", "abc")])
    assert narrowed.matches("task.progress", "task", "abc")
    assert not narrowed.matches("task.started", "task", "abc")
    assert not narrowed.matches("task.progress", "task", "other")
    assert asked.intersect().key == asked.key
    assert narrowed.key != asked.key


names = st.sampled_from(["task", "provider", "selfcheck", "job"])
actions = st.sampled_from(["started", "progress", "completed", "status_changed"])
globs = st.sampled_from(["task.*", "*.progress", "provider.status_changed", "*", "selfcheck.?tarted"])
selectors = st.tuples(names, st.sampled_from(["a", "b", "*"]))
entities = st.none() | st.tuples(names, st.sampled_from(["a", "b", "c"]))


@given(
    types=st.lists(globs, max_size=3),
    sels=st.lists(selectors, max_size=3),
    domain=names,
    action=actions,
    ent=entities,
)
def test_matches_agrees_with_the_documented_rule(types, sels, domain, action, ent) -> None:
    event_type = f"{domain}.{action}"
    kind, eid = ent if ent is not None else (None, None)
    expected_type = not types or any(fnmatch.fnmatchcase(event_type, g) for g in types)
    expected_entity = not sels or (ent is not None and any(k == kind and i in ("*", eid) for k, i in sels))
    flt = Filter(tuple(types), tuple(sels))
    assert flt.matches(event_type, kind, eid) == (expected_type and expected_entity)
    assert flt.matches(event_type, kind, eid) == (expected_type and expected_entity)  # cached answer agrees
