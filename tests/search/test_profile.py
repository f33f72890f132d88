"""The profile: aggregates only, k-anonymity floor, no text from the data."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from autodp_search.profile import Profile, merge_bins, profile, safe_quantiles, safe_rate

from ._synth import synth_frame


def _windows(text: str, w: int = 20) -> set[str]:
    return {text[i : i + w] for i in range(max(0, len(text) - w + 1))}


@pytest.fixture(scope="module")
def canary_case():
    frame, _ = synth_frame(300, seed=3)
    rng = np.random.default_rng(11)
    canaries = [f"ZQX{rng.integers(10**12):012d}CANARY{i}" for i in range(12)]
    outs = frame["output"].to_list()
    ins = frame["instruction"].to_list()
    for i, c in enumerate(canaries):
        outs[i * 20] = f"{outs[i * 20]} {c}"
        ins[i * 20 + 7] = f"{c} {ins[i * 20 + 7]}"
    frame = frame.with_columns(pl.Series("output", outs), pl.Series("instruction", ins))
    return frame, canaries, profile(frame, k=20)


def test_no_canary_and_no_20_char_substring(canary_case):
    frame, canaries, p = canary_case
    released = [p.model_dump_json(), p.to_prompt_text()]
    for text in released:
        for c in canaries:
            assert c not in text
            assert c[:12] not in text
        rel = _windows(text)
        for col in ("instruction", "output"):
            for row in frame[col].to_list():
                hit = rel & _windows(row)
                assert not hit, f"profile leaks row text: {sorted(hit)[:3]}"


def test_json_round_trip(canary_case):
    _, _, p = canary_case
    q = Profile.model_validate_json(p.model_dump_json())
    assert q == p
    assert json.loads(p.model_dump_json())["n_rows"] == 300


def test_every_number_over_k_rows(canary_case):
    _, _, p = canary_case
    k = p.k
    for s in p.signals.values():
        for b in s.histogram or []:
            assert b.count == 0 or b.count >= k
        if s.histogram:
            assert sum(b.count for b in s.histogram) == p.n_rows  # merged, not dropped
        if s.rate and not s.rate.suppressed:
            assert s.rate.count in (0, p.n_rows) or (k <= s.rate.count <= p.n_rows - k)
    for r in p.rates.values():
        if not r.suppressed:
            assert r.count in (0, p.n_rows) or (k <= r.count <= p.n_rows - k)
    text = p.to_prompt_text()
    assert "min" not in json.loads(p.model_dump_json())["signals"]["output.chars"]
    assert "output.chars" in text and "rows: 300" in text


def test_small_group_suppressed():
    frame, _ = synth_frame(200, seed=1)
    outs = frame["output"].to_list()
    for i in range(5):  # 5 rows with markup: under k
        outs[i] = "<p>" + outs[i] + "</p>"
    frame = frame.with_columns(pl.Series("output", outs))
    p = profile(frame, k=20)
    assert p.rates["markup (any text column)"].suppressed
    assert p.signals["output.html"].rate.suppressed
    assert "<20 rows" in p.to_prompt_text()
    p2 = profile(frame, k=3)  # with a floor of 3 the same group is released
    assert p2.rates["markup (any text column)"].count == 5


def test_tiny_frame_everything_suppressed():
    frame, _ = synth_frame(12, seed=2)
    p = profile(frame, k=20)
    assert p.n_rows == 12
    assert all(s.suppressed for s in p.signals.values())
    assert all(r.suppressed for r in p.rates.values())
    assert "fewer than 20 rows" in p.to_prompt_text()


def test_quantile_and_rate_rules():
    x = np.arange(100, dtype=float)
    q = safe_quantiles(x, 20)
    assert q["p1"] is None and q["p5"] is None and q["p95"] is None
    assert q["p25"] is not None and q["p50"] == pytest.approx(49.5)
    assert safe_rate(5, 100, 20).suppressed
    assert safe_rate(95, 100, 20).suppressed  # the 5 rows without the property are a small group
    assert safe_rate(0, 100, 20).rate == 0.0
    assert safe_rate(30, 100, 20).rate == pytest.approx(0.3)


def test_merge_bins():
    edges = [0, 1, 2, 3, 4, float("inf")]
    bins = merge_bins(edges, [25, 3, 0, 30, 4], 20)
    assert [b.count for b in bins] == [28, 34] or [b.count for b in bins] == [25, 37]
    assert sum(b.count for b in bins) == 62
    assert all(b.count == 0 or b.count >= 20 for b in bins)
    assert bins[-1].hi is None
    assert merge_bins(edges, [1, 2, 3, 0, 0], 20) is None


def test_every_default_signal_is_the_registry_operator():
    """No built-in stand-in: each ``<column>.<signal>`` of the default set is computed by the
    operator of that name, with the value ``filter: signal(column)`` would see."""
    from autodp_dsl.ops import registry
    from autodp_search.signals import DEFAULT_OPS, signal_frame, signal_sources

    frame = pl.DataFrame({"instruction": ["What is X?", "Why"], "output": ["X is a thing. It is.", "  <b>no</b>"]})
    src = signal_sources(frame)
    for name in DEFAULT_OPS:
        assert any(k.endswith(f".{name}") and v == "op" for k, v in src.items()), name
    assert {v for k, v in src.items() if k.split(".", 1)[1] in DEFAULT_OPS} == {"op"}
    op = registry().get("special_char_ratio")
    want = frame.select(op().expr([pl.col("output").fill_null("")], op.Params())).to_series().to_list()
    assert signal_frame(frame)["output.special_char_ratio"].to_list() == want


def test_a_signal_operator_missing_from_the_registry_is_an_error():
    from autodp_search.signals import signal_frame

    frame = pl.DataFrame({"output": ["a b c"]})
    with pytest.raises(ValueError, match=r"'no_such_signal'.*not usable signals of the operator registry"):
        signal_frame(frame, ops=["chars", "no_such_signal"])
