"""bench/peers: the kept-id comparison and the reading of each tool's drop reasons (neither peer is run)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

PEERS = Path(__file__).resolve().parent.parent / "bench" / "peers"


def _load(name):
    spec = importlib.util.spec_from_file_location(name, PEERS / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod  # bench_peers imports keptdiff by name
    spec.loader.exec_module(mod)
    return mod


keptdiff = _load("keptdiff")
bench_peers = _load("bench_peers")

ROWS = [(0, "clean"), (1, "clean"), (2, "near_dup"), (3, "near_dup"), (4, "short"), (5, "ws_dup")]


def test_rows_are_compared_by_id_and_kind_with_the_dropping_tools_reason():
    c = keptdiff.compare(ROWS, [4, 0, 1, 2], [0, 1, 3, 5], ("a", "b"),
                         dropped_a={3: "dedup.minhash", 5: "dedup.exact"}, dropped_b={2: "minhash"})
    assert c.kept == (4, 4) and c.both == 2 and c.agreeing == 2 and c.rows == 6
    a_only, b_only = c.only
    assert (a_only.rows, dict(a_only.kinds)) == (2, {"near_dup": 1, "short": 1})
    assert a_only.reasons["near_dup"] == {"minhash": 1}  # b's reason explains a row only a kept
    assert a_only.reasons["short"] == {keptdiff.UNKNOWN: 1}  # b did not say why it dropped row 4
    assert b_only.reasons == {"near_dup": {"dedup.minhash": 1}, "ws_dup": {"dedup.exact": 1}}
    assert c.by_kind["near_dup"] == {"rows": 2, "kept_a": 1, "kept_b": 1, "both": 0}
    assert c.by_kind["clean"] == {"rows": 2, "kept_a": 2, "kept_b": 2, "both": 2}
    text = keptdiff.render(c)
    assert "same decision on 2 (33.33%)" in text
    assert "- near_dup 1: dedup.minhash 1; e.g. ids [3]" in text


def test_identical_outputs_agree_on_every_row_whatever_the_order():
    c = keptdiff.compare(ROWS, [5, 1, 0], [0, 1, 5])
    assert c.agreeing == 6 and c.only[0].rows == c.only[1].rows == 0


@pytest.mark.parametrize("kept,message", [([0, 0], "kept row id 0 twice"), ([0, 9], "not in the input"), (["0"], "not in the input")])
def test_an_output_naming_a_row_twice_or_a_row_not_in_the_input_is_an_error(kept, message):
    with pytest.raises(keptdiff.KeptIdError, match=message):
        keptdiff.compare(ROWS, kept, [0], ("autodp", "dj"))


def test_input_ids_must_be_unique():
    with pytest.raises(keptdiff.KeptIdError, match="twice"):
        keptdiff.compare([(0, "x"), (0, "y")], [0], [0])


def test_read_ids_skips_blank_lines_and_names_a_line_without_the_field(tmp_path):
    p = tmp_path / "out.jsonl"
    p.write_text('{"id": 3}\n\n{"id": 1, "text": "x"}\n', encoding="utf-8")
    assert keptdiff.read_ids(p) == [3, 1]
    p.write_text('{"id": 3}\n{"text": "x"}\n', encoding="utf-8")
    with pytest.raises(keptdiff.KeptIdError, match=r"out.jsonl:2: no 'id' field"):
        keptdiff.read_ids(p)


@pytest.mark.parametrize("text,label", [
    ('filter: special_char_ratio(text, chars="") <= 0.25', "filter special_char_ratio"),
    ("filter: chars(text) >= 20 and chars(text) <= 20000", "filter chars"),
    ("dedup.minhash(text, threshold=0.7, num_perm=256, ngram=5)", "dedup.minhash"),
    ("dedup.exact(text)", "dedup.exact"),
])
def test_autodp_step_labels(text, label):
    assert bench_peers.step_label(text) == label


def test_data_juicer_drops_are_read_from_its_tracer_files(tmp_path):
    # the layout and records of Data-Juicer 1.6.1's tracer (open_tracer: true), as seen on its output
    trace = tmp_path / "20261207_202606_b08b73" / "trace"
    trace.mkdir(parents=True)

    def write(name, records):
        (trace / name).write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")

    write("sample_trace-special_characters_filter.jsonl", [{"id": 7, "text": "!!!", "__dj__stats__": {}}])
    write("sample_trace-clean_html_mapper.jsonl", [{"original_text": "<p>a</p>", "processed_text": "a"}])  # a change, not a drop
    write("duplicate-document_deduplicator.jsonl", [{"dup1": {"id": 1, "text": "t"}, "dup2": {"id": 9, "text": "t"}}])
    write("duplicate-document_minhash_deduplicator.jsonl", [{"dup1": {"id": 2}, "dup2": {"id": 4}}])
    assert bench_peers.dj_drops(tmp_path) == {7: "special_characters_filter", 9: "document_deduplicator",
                                              4: "document_minhash_deduplicator"}


def test_nearest_earlier_jaccard_is_exact_and_looks_only_backwards():
    a = "one two three four five six seven eight"  # 4 five-word shingles
    b = "one two three four five six seven nine"  # shares 3 of them: J = 3 / 5
    texts = [a, "unrelated words only here today", b, a.upper()]
    got = keptdiff.nearest_earlier_jaccard(texts, [0, 2, 3])
    assert got == {0: 0.0, 2: pytest.approx(3 / 5), 3: 1.0}  # row 0 has nothing before it; case is ignored
    assert keptdiff.histogram(got.values()) == "<0.5: 1, 0.6-0.7: 1, >=0.9: 1"
    assert keptdiff.shingles("Yes.") == {hash("yes.")}  # fewer than n words: one shingle
