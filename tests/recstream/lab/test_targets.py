"""Targets of recstream bench and soak: parsing, the documented file, checking (no servers)."""

from __future__ import annotations

from pathlib import Path

import pytest

from recstream.cli import build_parser
from recstream.lab import targets as tg
from recstream.settings import REPO_ROOT

SOAK = tg.SOAK_FIGURES
BENCH = tg.BENCH_FIGURES


def test_parse_require_reads_pairs_and_rejects_bad_ones() -> None:
    assert tg.parse_require("freshness_p99_ms=100, events_per_s=500", SOAK) == {
        "freshness_p99_ms": 100.0,
        "events_per_s": 500.0,
    }
    assert tg.parse_require("missing=0,", SOAK) == {"missing": 0.0}
    for bad, says in (
        ("freshness_p99_ms", "NAME=NUMBER"),
        ("freshness_p99_ms=", "NAME=NUMBER"),
        ("freshness_p99_ms=fast", "not a number"),
        ("freshness_p99_ms=nan", "finite"),
        ("missing=1,missing=2", "twice"),
        ("fresh_p99=1", "unknown figure(s) fresh_p99; known: offered_rate_per_s"),
        (" , ", "no target"),
    ):
        with pytest.raises(tg.TargetError, match=says.replace("(", r"\(").replace(")", r"\)")):
            tg.parse_require(bad, SOAK)


def test_target_file_sets_are_tables_of_numbers() -> None:
    text = "[bench]\nclick_events_per_s = 2000\nreview_events_per_s = 300.5\n[soak]\nmissing = 0\n"
    assert tg.parse_target_file(text, "bench", BENCH) == {
        "click_events_per_s": 2000.0,
        "review_events_per_s": 300.5,
    }
    with pytest.raises(tg.TargetError, match=r"no target set \[quick\] \(sets: bench, soak\)"):
        tg.parse_target_file(text, "quick", BENCH)
    with pytest.raises(tg.TargetError, match="not a number"):
        tg.parse_target_file('[soak]\nmissing = "none"\n', "soak", SOAK)
    with pytest.raises(tg.TargetError, match="not a number"):
        tg.parse_target_file("[soak]\nmissing = true\n", "soak", SOAK)
    with pytest.raises(tg.TargetError, match="unknown figure"):
        tg.parse_target_file("[soak]\nclick_events_per_s = 1\n", "soak", SOAK)
    with pytest.raises(tg.TargetError, match="not valid TOML"):
        tg.parse_target_file("[soak\n", "soak", SOAK)


def test_documented_file_holds_both_sets_with_known_figures() -> None:
    assert tg.TARGETS_FILE == REPO_ROOT / "docs" / "targets.toml"  # run from the checkout
    bench = tg.load_target_file(tg.TARGETS_FILE, "bench", BENCH)
    soak = tg.load_target_file(tg.TARGETS_FILE, "soak", SOAK)
    # The targets (13 and 18), written down once.
    assert bench["click_events_per_s"] == 2000 and bench["click_vs_passthrough"] == 0.25
    assert bench["freshness_rate_per_s"] == 500 and bench["freshness_p99_ms"] == 50
    assert bench["review_events_per_s"] == 300 and bench["text_dynamic_batching_ratio"] == 3
    assert soak["offered_rate_per_s"] == 500 and soak["minutes"] == 10
    assert soak["freshness_p99_ms"] == 100 and "lag_zero_after_s" in soak
    assert "rss_growth_after_warmup_pct" in soak


def test_resolve_picks_documented_file_or_command_line(tmp_path: Path) -> None:
    doc = tmp_path / "targets.toml"
    doc.write_text("[soak]\nmissing = 0\nfreshness_p99_ms = 100\n")
    assert tg.resolve(None, None, "soak", SOAK, documented=doc) is None
    both = tg.resolve("", None, "soak", SOAK, documented=doc)
    assert both is not None and both.targets == {"missing": 0.0, "freshness_p99_ms": 100.0}
    only = tg.resolve("freshness_p99_ms=80", None, "soak", SOAK, documented=doc)
    assert only is not None and only.targets == {"freshness_p99_ms": 80.0}
    other = tmp_path / "other.toml"
    other.write_text("[soak]\nmissing = 0\nfreshness_p99_ms = 200\n")
    merged = tg.resolve("freshness_p99_ms=80", other, "soak", SOAK, documented=doc)
    assert merged is not None and merged.targets == {"missing": 0.0, "freshness_p99_ms": 80.0}
    assert "other.toml [soak]" in merged.source and "--require freshness_p99_ms=80" in merged.source
    with pytest.raises(tg.TargetError, match=r"absent\.toml"):
        tg.resolve("", tmp_path / "absent.toml", "soak", SOAK)


def test_lookup_and_ratio_figures() -> None:
    report = {"stream": {"click": {"events_per_s": 500.0}, "passthrough": {"events_per_s": 2000.0}}}
    assert tg.lookup(report, "stream.click.events_per_s") == 500.0
    assert tg.lookup(report, "stream.review.events_per_s") is None
    assert tg.lookup({"a": float("nan")}, "a") is None and tg.lookup({"a": True}, "a") is None
    assert BENCH["click_vs_passthrough"].value(report) == 0.25
    assert BENCH["click_vs_faust_passthrough"].value(report) is None  # baseline not measured
    zero = {"stream": {"click": {"events_per_s": 5.0}, "passthrough": {"events_per_s": 0.0}}}
    assert BENCH["click_vs_passthrough"].value(zero) is None


def test_check_says_which_target_was_missed_and_by_how_much() -> None:
    report = {
        "freshness_ms": {"p99": 130.0},
        "throughput_per_s": 500.0,
        "lag": {"zero_after_s": None},
        "missing": 0,
    }
    targets = {"freshness_p99_ms": 100.0, "events_per_s": 500.0, "lag_zero_after_s": 10.0, "missing": 0.0}
    out = {o.figure.name: o for o in tg.check(targets, report, SOAK)}
    assert [n for n, o in out.items() if not o.met] == ["freshness_p99_ms", "lag_zero_after_s"]
    assert out["freshness_p99_ms"].shortfall == 30.0
    assert out["freshness_p99_ms"].line() == "freshness_p99_ms: 130 ms, target <= 100: MISSED by 30 ms (30%)"
    assert out["events_per_s"].line() == "events_per_s: 500 events/s, target >= 500: met"  # equality meets
    assert "MISSED (not measured" in out["lag_zero_after_s"].line()
    low = tg.check({"events_per_s": 2000.0}, {"throughput_per_s": 1480.0}, SOAK)[0]
    assert low.line() == "events_per_s: 1,480 events/s, target >= 2,000: MISSED by 520 events/s (26%)"
    with pytest.raises(tg.TargetError):
        tg.check({"nope": 1.0}, report, SOAK)


def test_outcomes_json_and_markdown_table() -> None:
    outcomes = tg.check({"freshness_p99_ms": 100.0, "missing": 0.0}, {"freshness_ms": {"p99": 120.5}}, SOAK)
    js = tg.outcomes_json(outcomes, "docs/targets.toml [soak]", enforced=True)
    assert js["met"] is False and js["missed"] == ["freshness_p99_ms", "missing"]
    assert js["figures"]["freshness_p99_ms"] == {
        "value": 120.5, "op": "<=", "target": 100.0, "met": False, "shortfall": 20.5, "unit": "ms",
    }  # fmt: skip
    md = tg.markdown(js["figures"]).splitlines()
    assert md[2] == "| freshness_p99_ms | <= 100 ms | 120.5 | **no** (by 20.5) |"
    assert md[3] == "| missing | <= 0 events | not measured | **no** (not measured) |"


def test_every_catalogued_figure_names_a_path_and_a_unit() -> None:
    assert set(tg.FIGURE_SETS) == {"bench", "soak"}
    for catalogue in tg.FIGURE_SETS.values():
        assert catalogue, "empty catalogue"
        for name, f in catalogue.items():
            assert f.name == name and f.path and f.unit and f.description
    text = tg.describe(SOAK, {"missing": 0.0})
    assert "missing" in text and "<= 0" in text and "(no target)" in text


def test_report_targets_exits_3_only_when_enforced_and_missed(capsys: pytest.CaptureFixture[str]) -> None:
    req = tg.Required({"missing": 0.0, "freshness_p99_ms": 100.0}, "test")
    report: dict[str, object] = {"missing": 2, "freshness_ms": {"p99": 90.0}}
    assert tg.report_targets(report, req, False, SOAK, "soak") == 0
    assert capsys.readouterr().err == "" and report["targets"]["enforced"] is False  # type: ignore[index]
    assert tg.report_targets(report, req, True, SOAK, "soak") == tg.EXIT_TARGET_MISSED
    err = capsys.readouterr().err
    assert "recstream soak: 1 required target(s) missed" in err
    assert "missing: 2 events, target <= 0: MISSED by 2 events" in err and "freshness" not in err
    ok = tg.Required({"freshness_p99_ms": 100.0}, "test")
    assert tg.report_targets(report, ok, True, SOAK, "soak") == 0


@pytest.mark.parametrize("command", ["bench", "soak"])
def test_commands_refuse_bad_targets_before_running(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    args = build_parser().parse_args([command, "--require", "no_such_figure=1"])
    assert args.func(args) == 2  # returns before any stack, worker or data is touched
    assert "unknown figure(s) no_such_figure" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["bench", "soak"])
def test_list_figures_shows_the_documented_targets(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    args = build_parser().parse_args([command, "--list-figures"])
    assert args.require is None and args.func(args) == 0
    out = capsys.readouterr().out
    assert "freshness_p99_ms" in out and ("<= 50" in out if command == "bench" else "<= 100" in out)


def test_require_without_value_means_the_documented_set() -> None:
    args = build_parser().parse_args(["soak", "--require", "--minutes", "1"])
    assert args.require == "" and args.minutes == 1.0
    required, enforced = tg.targets_of(args, SOAK)
    assert enforced and required.source == "docs/targets.toml [soak]"
    plain = build_parser().parse_args(["soak"])
    documented, enforced = tg.targets_of(plain, SOAK)
    assert not enforced and documented.targets == required.targets


def test_outside_a_checkout_there_is_no_documented_set_but_a_file_can_be_named(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An installed wheel holds no docs/: reported figures carry no targets, --require needs a file."""
    monkeypatch.setattr(tg, "TARGETS_FILE", None)
    monkeypatch.setattr(tg, "_CHECKOUT", None)
    plain, enforced = tg.targets_of(build_parser().parse_args(["soak"]), SOAK)
    assert not enforced and plain.targets == {} and plain.source == tg.NO_DOCUMENTED
    with pytest.raises(tg.TargetError, match="--require-file"):
        tg.targets_of(build_parser().parse_args(["soak", "--require"]), SOAK)
    listed = build_parser().parse_args(["bench", "--list-figures"])
    assert listed.func(listed) == 0 and "(no target)" in capsys.readouterr().out
    given = tmp_path / "mine.toml"
    given.write_text("[soak]\nmissing = 0\n")
    required, enforced = tg.targets_of(
        build_parser().parse_args(["soak", "--require-file", str(given)]), SOAK
    )
    assert enforced and required.targets == {"missing": 0.0} and required.source == f"{given} [soak]"
    only = tg.targets_of(build_parser().parse_args(["soak", "--require", "missing=0"]), SOAK)
    assert only[0].targets == {"missing": 0.0}
