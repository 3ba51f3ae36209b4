"""The offset tracker: positions never pass an unfinished event; skipped ranges are caught."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from streams.offsets import Admit, OffsetTracker

TP = ("events.click", 0)


def test_position_waits_for_the_lowest_unfinished_offset() -> None:
    t = OffsetTracker()
    t.assign(TP, 100)
    for off in range(100, 110):
        assert t.admit(TP, off) is Admit.NEXT
    assert t.position(TP) == 100
    t.done(TP, [105, 106, 107, 108, 109])  # a later batch finished first
    assert t.position(TP) == 100 and t.committable() == {}
    t.done(TP, [100, 101, 102])
    assert t.position(TP) == 103
    t.done(TP, [103, 104])
    assert t.committable() == {TP: 110}
    t.committed({TP: 110})
    assert t.committable() == {}


def test_redeliveries_are_seen_and_unowned_partitions_are_refused() -> None:
    t = OffsetTracker()
    t.assign(TP, 5)
    assert t.admit(TP, 5) is Admit.NEXT
    assert t.admit(TP, 5) is Admit.SEEN
    assert t.admit(TP, 3) is Admit.SEEN
    assert t.admit(("events.click", 1), 0) is Admit.NOT_OWNED
    t.revoke(TP)
    assert t.admit(TP, 6) is Admit.NOT_OWNED and t.position(TP) is None


def test_a_skipped_range_is_never_processed_past() -> None:
    t = OffsetTracker()
    t.assign(TP, 458)
    # The consumer delivers 461 first: 458-460 were skipped somewhere below us.
    assert t.admit(TP, 461) is Admit.GAP
    assert t.admit(TP, 462) is Admit.GAP  # still in repair: dropped
    assert t.hole(TP) == (458, 461)
    assert t.position(TP) == 458 and t.committable() == {}
    # The broker holds records there: read again from 458.
    assert t.resolve(TP, records_in_hole=True) == 458
    for off in (458, 459, 460, 461, 462):
        assert t.admit(TP, off) is Admit.NEXT
    t.done(TP, [458, 459, 460, 461, 462])
    assert t.committable() == {TP: 463}


def test_an_empty_hole_is_skipped_after_the_broker_says_so() -> None:
    t = OffsetTracker()
    t.assign(TP, 10)
    assert t.admit(TP, 12) is Admit.GAP  # offsets 10, 11: transaction markers, say
    assert t.resolve(TP, records_in_hole=False) == 12
    assert t.admit(TP, 12) is Admit.NEXT
    t.done(TP, [12])
    assert t.committable() == {TP: 13} and t.empty_holes(TP) == 1


def test_release_rewinds_to_the_lowest_given_back_offset() -> None:
    t = OffsetTracker()
    t.assign(TP, 0)
    for off in range(6):
        t.admit(TP, off)
    t.done(TP, [0, 1])
    t.release(TP, [3, 4, 5])
    assert t.position(TP) == 2
    assert t.admit(TP, 3) is Admit.NEXT  # read again from the released offsets
    assert t.admit(TP, 5) is Admit.GAP  # but never past one of them


@given(st.permutations(list(range(30))), st.integers(0, 29))
def test_position_is_the_lowest_unfinished_offset_whatever_the_finish_order(
    order: list[int], cut: int
) -> None:
    t = OffsetTracker()
    t.assign(TP, 0)
    for off in range(30):
        t.admit(TP, off)
    finished = order[:cut]
    t.done(TP, finished)
    unfinished = set(range(30)) - set(finished)
    assert t.position(TP) == (min(unfinished) if unfinished else 30)
