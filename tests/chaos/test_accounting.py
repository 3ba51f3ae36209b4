"""The pure measurements of the fault tests (no servers)."""

from __future__ import annotations

import json

import numpy as np

from tests.chaos.accounting import (
    UserRow,
    account_events,
    account_lists,
    compare_states,
    first_list_times,
    recovery_times,
)


def _row(ids: list[str], acc: list[float] | None = (1.0, 0.0), count: int | None = None) -> UserRow:  # type: ignore[assignment]
    return UserRow(
        None if acc is None else np.asarray(acc, dtype=np.float64),
        len(ids) if count is None else count,
        tuple(ids),
        (),
    )


def test_account_events_counts_lost_duplicated_and_unexpected() -> None:
    expected = {"u1": ["a", "b", "c"], "u2": ["d"], "u3": ["e"]}
    states = {
        "u1": _row(["a", "b", "b"]),  # c lost, b applied twice
        "u2": _row(["d", "x"]),  # x nobody sent
        "nobody": _row(["y"]),
    }
    acc = account_events(expected, states)
    assert acc.lost == 2  # c, and u3's e (no row at all)
    assert acc.duplicated == 1
    assert acc.unexpected == 2
    assert set(acc.lost_ids) == {"c", "e"}


def test_account_events_exact_run_has_nothing_to_report() -> None:
    expected = {"u1": ["a", "b"], "u2": ["c"]}
    acc = account_events(expected, {"u1": _row(["b", "a"]), "u2": _row(["c"])})
    assert (acc.lost, acc.duplicated, acc.unexpected) == (0, 0, 0)


def test_account_events_beyond_the_id_window_uses_the_count() -> None:
    ids = [f"e{i}" for i in range(10)]
    window = ids[-4:]
    exact = account_events({"cat": ids}, {"cat": _row(window, count=10)}, recent_max=4)
    assert (exact.lost, exact.duplicated) == (0, 0)
    twice = account_events({"cat": ids}, {"cat": _row(window, count=11)}, recent_max=4)
    assert twice.duplicated == 1
    short = account_events({"cat": ids}, {"cat": _row(window, count=8)}, recent_max=4)
    assert short.lost == 2


def test_account_lists_allows_and_counts_republished_lists() -> None:
    la = account_lists(["a", "b", "b", "b", "zz"], ["a", "b", "c"])
    assert (la.missing, la.duplicate_lists, la.unexpected) == (1, 2, 1)


def test_compare_states_detects_each_kind_of_difference() -> None:
    clean = {"u1": _row(["a", "b"], [3.0, 4.0]), "u2": _row(["c"]), "u3": _row(["d"])}
    same = {"u1": _row(["b", "a"], [6.0, 8.0 + 1e-9]), "u2": _row(["c"]), "u3": _row(["d"])}
    assert compare_states(clean, same).equal()
    bad = {
        "u1": _row(["a", "b"], [4.0, 3.0]),  # embedding moved
        "u2": _row(["c", "z"]),  # an extra event
        "u4": _row(["q"]),  # unknown user; u3 missing
    }
    diff = compare_states(clean, bad)
    assert not diff.equal()
    assert (diff.users_missing, diff.users_extra, diff.count_mismatch, diff.ids_mismatch) == (1, 1, 1, 1)
    assert diff.max_embedding_dev > 0.1
    assert compare_states({"u": _row(["a"], None)}, {"u": _row(["a"], [1.0, 0.0])}).max_embedding_dev == 1.0


def test_recovery_times_from_send_and_list_times() -> None:
    sent = {"a": 100.0, "b": 105.0, "c": 112.0}
    listed = {"a": 101.0, "b": 118.0, "c": 119.0}
    rec = recovery_times(110.0, sent, listed)
    assert rec.first_list_s == 8.0  # b's list at 118
    assert rec.backlog_drained_s == 8.0  # a and b (sent before 110) are both listed by 118
    assert recovery_times(110.0, sent, {"a": 101.0}).backlog_drained_s is None
    assert recovery_times(200.0, sent, listed).first_list_s is None


def test_first_list_times_keeps_the_earliest_per_trigger() -> None:
    def rec(t: str) -> bytes:
        return json.dumps({"trigger_event_id": t}).encode()

    got = first_list_times([(rec("a"), 5000), (rec("a"), 3000), (rec("b"), 4500)])
    assert got == {"a": 3.0, "b": 4.5}
