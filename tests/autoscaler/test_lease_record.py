"""Leader-election records and the acquire/renew rule (casa_sched.autoscaler.lease): pure tables."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from casa_sched.autoscaler.lease import (
    LeaderElector,
    LeaseRecord,
    format_microtime,
    next_record,
    parse_microtime,
    released_record,
)

T0 = datetime(2030, 1, 1, 12, 0, 0, 123456, tzinfo=UTC)
NOW = T0 + timedelta(seconds=20)
HELD_BY_A = LeaseRecord("a", 15, T0, T0 + timedelta(seconds=10), 2, "41")
RELEASED = LeaseRecord("", 1, T0, T0 + timedelta(seconds=10), 2, "42")


@pytest.mark.parametrize(("current", "identity", "expired", "want"), [
    pytest.param(None, "b", False, LeaseRecord("b", 15, NOW, NOW, 0), id="no-lease-create"),
    # a renews: acquireTime and the transition count stay, renewTime moves to now.
    pytest.param(HELD_BY_A, "a", False, LeaseRecord("a", 15, T0, NOW, 2, "41"), id="holder-renews"),
    pytest.param(HELD_BY_A, "b", False, None, id="held-and-fresh-keep-off"),
    # b takes an expired lease over: a new acquireTime and one more transition (2 -> 3).
    pytest.param(HELD_BY_A, "b", True, LeaseRecord("b", 15, NOW, NOW, 3, "41"), id="expired-take-over"),
    # Released (empty holder): taken at once, expired or not.
    pytest.param(RELEASED, "b", False, LeaseRecord("b", 15, NOW, NOW, 3, "42"), id="released-take-at-once"),
])
def test_next_record(current: LeaseRecord | None, identity: str, expired: bool, want: LeaseRecord | None) -> None:
    assert next_record(current, identity=identity, lease_duration_s=15, now=NOW, expired=expired) == want


def test_release_empties_the_holder_and_shortens_the_lease() -> None:
    assert released_record(HELD_BY_A, now=NOW) == LeaseRecord("", 1, T0, NOW, 2, "41")


def test_record_round_trips_through_the_lease_json() -> None:
    lease = {"metadata": {"resourceVersion": "41"}, "spec": HELD_BY_A.spec()}
    assert lease["spec"] == {"holderIdentity": "a", "leaseDurationSeconds": 15, "leaseTransitions": 2,
                             "acquireTime": "2030-01-01T12:00:00.123456Z",
                             "renewTime": "2030-01-01T12:00:10.123456Z"}
    assert LeaseRecord.from_lease(lease) == HELD_BY_A


def test_empty_lease_reads_as_no_holder() -> None:
    assert LeaseRecord.from_lease({"metadata": {}, "spec": {}}) == LeaseRecord("", 0, None, None, 0, "")


@pytest.mark.parametrize(("text", "want"), [
    pytest.param("2030-01-01T12:00:00.123456Z", T0, id="microtime"),
    pytest.param("2030-01-01T12:00:00Z", T0.replace(microsecond=0), id="seconds"),
    pytest.param("not a time", None, id="garbage"),
    pytest.param(None, None, id="absent"),
])
def test_parse_microtime(text: str | None, want: datetime | None) -> None:
    assert parse_microtime(text) == want


def test_format_microtime_is_utc_with_z() -> None:
    assert format_microtime(T0) == "2030-01-01T12:00:00.123456Z"


@pytest.mark.parametrize(("duration_s", "renew_s", "retry_s"), [
    pytest.param(15, 15.0, 2.0, id="renew-deadline-not-below-duration"),
    pytest.param(15, 10.0, 10.0, id="retry-not-below-renew-deadline"),
    pytest.param(15, 10.0, 0.0, id="zero-retry"),
    pytest.param(0, 0.5, 0.1, id="zero-duration"),
])
def test_elector_rejects_timings_that_allow_two_leaders(duration_s: int, renew_s: float, retry_s: float) -> None:
    with pytest.raises(ValueError, match=r"lease_duration_s|retry_period_s"):
        LeaderElector(object(), "a", lease_duration_s=duration_s, renew_deadline_s=renew_s, retry_period_s=retry_s)
