from __future__ import annotations

import pytest

from disruptor import errors
from disruptor.errors import (
    DisruptorError,
    Overloaded,
    SignatureInvalid,
    error_from_problem,
)


def test_every_class_round_trips_through_problem_json() -> None:
    for slug, cls in DisruptorError.registry.items():
        original = cls("what went wrong")
        body = original.to_problem("/x")
        assert body["type"] == f"urn:disruptor:problem:{slug}"
        assert body["status"] == cls.status
        rebuilt = error_from_problem(body, cls.status)
        assert type(rebuilt) is cls
        assert rebuilt.detail == "what went wrong"


def test_extension_members_survive() -> None:
    body = Overloaded("busy", retry_after_s=3).to_problem()
    assert body["retry_after_s"] == 3.0
    rebuilt = error_from_problem(body)
    assert isinstance(rebuilt, Overloaded)
    assert rebuilt.retry_after_s == 3.0


def test_unknown_type_falls_back_to_status_class() -> None:
    rebuilt = error_from_problem({"type": "about:blank", "detail": "gone"}, 404)
    assert isinstance(rebuilt, errors.NotFound)


def test_subclass_is_caught_by_its_parent() -> None:
    with pytest.raises(errors.BundleRejected):
        raise SignatureInvalid("bad")


def test_all_lists_every_class() -> None:
    for name in errors.__all__:
        assert hasattr(errors, name)
    assert set(DisruptorError.registry.values()) <= {getattr(errors, n) for n in errors.__all__}
