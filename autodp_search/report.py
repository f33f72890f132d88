"""The search report: ``report.json`` and a self-contained ``report.html`` (inline SVG, no scripts).

Plots: score minus r0 per round and candidate (with its interval, replicates and the placebo of its
size; the noise band shaded), rows dropped per step of the best strategy, and the sampling fidelity
check. ``verdict_text`` says in plain words what the search found and what to use.
"""

from __future__ import annotations

import html
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from autodp_dsl.atomic import write_text_atomic

__all__ = ["build_report", "plain_verdict", "selection_summary", "write_report", "render_html"]


def build_report(search, best, final: dict[str, Any] | None, stop_reason: str, seconds: float) -> dict[str, Any]:
    cfg = search.cfg
    setup = search.setup_json()
    records = [asdict(r) for r in search.records]
    best_steps = None
    if final is not None:
        best_steps = final.get("steps")
    elif best is not None:
        best_steps = [asdict(s) for s in best.steps]
    selection = selection_summary(search.records, setup.get("noise_band"),
                                  cfg.race_replicates if getattr(search, "racing", False) else 1)
    rep = {
        "version": 1,
        "command": "autodp " + " ".join(sys.argv[1:]) if sys.argv and sys.argv[0].endswith("autodp") else None,
        "data": {"path": cfg.data, "fingerprint": search.data.fingerprint, **setup["rows"]},
        "config": {
            "seed": cfg.seed, "agent": search.agent.name, "k": cfg.k, "budget": cfg.budget.to_dict(),
            "sampling": cfg.sampling, "sample_fraction": cfg.sample_fraction, "target_selection": cfg.target_selection,
            "cache": cfg.cache, "eval": search.evaluator.identity(),
        },
        "profile_text": search.profile_text,
        "fidelity": setup["fidelity"],
        "fidelity_text": setup["fidelity_text"],
        "targets": setup["targets"],
        "baseline": setup["baseline"],
        "estimate": search.estimate.to_dict() if getattr(search, "estimate", None) else None,
        "candidates": records,
        "best": None if best is None else {
            "cid": best.cid, "delta": best.delta, "win_rate": best.win_rate, "ci_low": best.ci_low,
            "ci_high": best.ci_high, "dp_text": best.dp_text, "rows_in": best.rows_in, "rows_out": best.rows_out,
            "replicates": best.replicates, "placebo": best.placebo, "beats_placebo": best.beats_placebo,
            "improvement": best.improvement,
        },
        "best_steps": best_steps,
        "final": final,
        "noise_band": setup.get("noise_band"),
        "selection": selection,
        "stop_reason": stop_reason,
        "agent": {"name": search.agent.name,
                  "backend": search.agent.stats() if hasattr(search.agent, "stats") else None,
                  "limits_and_fallbacks": list(getattr(search, "events_log", [])),
                  "hidden_columns": len(getattr(search, "hidden_columns", []))},
        "proposals": _proposals(search),
        "budget_used": search.state.to_dict(),
        "timings": {**setup["timings"], "total": round(seconds, 3)},
        "seconds": round(seconds, 3),
    }
    rep["verdict_text"] = plain_verdict(rep)
    return rep


def selection_summary(records, band: dict[str, Any] | None, race_replicates: int) -> dict[str, Any]:
    """How the search chose: candidates compared, their replicates, and which beat both the
    unprocessed data and the placebo of their size (only with a noise band)."""
    ok = [r for r in records if r.status == "ok" and r.delta is not None]
    return {
        "candidates_compared": len(ok),
        "race_replicates": race_replicates,
        "replicates": {r.cid: r.replicates for r in ok},
        "candidates_by_replicates": {str(n): sum(r.replicates == n for r in ok) for n in sorted({r.replicates for r in ok})},
        "placebo_rule": band is not None,
        "improvements": [r.cid for r in ok if r.improvement] if band is not None else None,
        "note": ("in-search flags are a screen on the search's own questions and seeds, not adjusted for the "
                 f"{len(ok)} candidates compared; the final verdict tests the one strategy chosen on fresh seeds "
                 "and held-out questions the search never used, so the choice among them does not bias it "
                 "(no multiplicity adjustment is needed for that single test)"),
    }


def plain_verdict(rep: dict[str, Any]) -> str:
    """What the search found, in words: the final verdict first, then the search's own screen."""
    sel = rep.get("selection") or {}
    fe = (rep.get("final") or {}).get("eval") or {}
    best = rep.get("best") or {}
    n = sel.get("candidates_compared", 0)
    parts = []
    if not best:
        return "No strategy was scored: use the unprocessed data."
    if fe.get("win_rate") is not None and fe.get("placebo") is not None:
        if improvement_shown(fe):
            parts.append(f"The best of {n} strategies, {best.get('cid')}, improves on the unprocessed data: on fresh "
                         f"seeds and held-out questions the search never used it wins {fe['win_rate']:.2f} "
                         f"[{fe['ci_low']:.2f}, {fe['ci_high']:.2f}] against the unprocessed data and beats "
                         f"{placebo_control(fe['placebo'])}. Use best.dp / processed.jsonl.")
        else:
            parts.append(f"No strategy is shown to beat the placebo: the best of {n} strategies, {best.get('cid')}, "
                         f"wins {fe['win_rate']:.2f} [{fe['ci_low']:.2f}, {fe['ci_high']:.2f}] against the unprocessed "
                         f"data on fresh seeds, but it does not both lie above 0.5 and beat "
                         f"{placebo_control(fe['placebo'])}. Recommendation: use the unprocessed data (or search "
                         "again with more replicates).")
    elif fe.get("error"):
        parts.append(f"The final evaluation failed ({fe['error'][:80]}); nothing is shown: use the unprocessed data.")
    elif fe.get("win_rate") is not None:  # an evaluator without placebo arms (a scripted one)
        parts.append(f"The final evaluation ran without a placebo control (win rate {fe['win_rate']:.2f} against the "
                     "unprocessed data): nothing is shown against chance.")
    else:
        parts.append("No final verdict was run (--no-final): the search's scores alone do not show an improvement.")
    if sel.get("placebo_rule"):
        wins = sel.get("improvements") or []
        parts.append(f"In the search, {len(wins)} of {n} candidates beat both the unprocessed data and the placebo "
                     f"of their size{(' (' + ', '.join(wins[:8]) + ')') if wins else ''}."
                     if wins else f"In the search, {NO_PLACEBO_WIN} ({n} compared).")
    return " ".join(parts)


def _proposals(search) -> dict[str, Any]:
    """Every original proposal with its repair attempts and their diagnostics (from the journal's plans)."""
    out: dict[str, Any] = {}
    folder = getattr(search.journal, "dir", None)
    if folder is None or not Path(folder).is_dir():
        return out
    for p in sorted(Path(folder).glob("round-*.plan.json")):
        try:
            plan = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        for c in plan.get("candidates", []):
            if "proposal" in c:
                out[c["cid"]] = {"proposal": c["proposal"], "attempts": c.get("attempts", [])}
    return out


def write_report(out: str | Path, report: dict[str, Any]) -> None:
    out = Path(out)
    write_text_atomic(out / "report.json", json.dumps(report, indent=1, ensure_ascii=False, default=str))
    write_text_atomic(out / "report.html", render_html(report))


# ---------------------------------------------------------------- SVG plots

_W, _H, _P = 640, 300, 48


def _esc(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _scatter(cands: list[dict[str, Any]], best_cid: str | None, band: dict[str, Any] | None = None) -> str:
    pts = [c for c in cands if c.get("status") == "ok" and c.get("delta") is not None]
    if not pts:
        return "<p>No scored candidates.</p>"
    rounds = max(c["round"] for c in pts)
    # the noise band: what random drops scored at the measured fractions (their intervals' union)
    shade = None
    if band and band.get("points"):
        shade = (min(p["low"] for p in band["points"]) - 0.5, max(p["high"] for p in band["points"]) - 0.5)
    lo = min(min((c.get("ci_low") or c["win_rate"]) - 0.5 for c in pts), -0.05, shade[0] if shade else 0)
    hi = max(max((c.get("ci_high") or c["win_rate"]) - 0.5 for c in pts), 0.05, shade[1] if shade else 0)

    def X(rnd, i, n):
        w = (_W - 2 * _P) / rounds
        return _P + w * (rnd - 1) + w * (i + 1) / (n + 1)

    def Y(v):
        return _H - _P - (v - lo) / (hi - lo) * (_H - 2 * _P)

    out = [f'<svg viewBox="0 0 {_W} {_H}" width="{_W}" height="{_H}" role="img" aria-label="score per round">']
    if shade:
        fracs = ", ".join(f"{p['fraction']:.0%}" for p in band["points"])
        out.append(f'<rect class="noise-band" x="{_P}" width="{_W - 2 * _P}" y="{Y(shade[1]):.1f}" '
                   f'height="{Y(shade[0]) - Y(shade[1]):.1f}" fill="#999" opacity="0.18"><title>noise band: random drops '
                   f'of {fracs} of the rows scored {shade[0]:+.2f} to {shade[1]:+.2f}</title></rect>')
    out.append(f'<line x1="{_P}" x2="{_W - _P}" y1="{Y(0):.1f}" y2="{Y(0):.1f}" stroke="#888" stroke-dasharray="4 3"/>')
    out.append(f'<text x="{_W - _P + 4}" y="{Y(0) + 4:.1f}" font-size="11">r0</text>')
    for v in (lo, hi):
        out.append(f'<text x="4" y="{Y(v) + 4:.1f}" font-size="11">{v:+.2f}</text>')
    for r in range(1, rounds + 1):
        group = [c for c in pts if c["round"] == r]
        out.append(f'<text x="{X(r, 0, 1) - 20:.1f}" y="{_H - _P + 18}" font-size="11">round {r}</text>')
        for i, c in enumerate(group):
            x = X(r, i, len(group))
            color = "#d62728" if c["cid"] == best_cid else "#2ca02c" if c.get("improvement") else "#1f77b4"
            if c.get("ci_low") is not None and c.get("ci_high") is not None:
                out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{Y(c["ci_low"] - 0.5):.1f}" y2="{Y(c["ci_high"] - 0.5):.1f}" stroke="{color}" opacity="0.5"/>')
            if c.get("placebo") is not None:  # the placebo of its size: a grey tick beside it
                out.append(f'<line class="placebo" x1="{x + 5:.1f}" x2="{x + 13:.1f}" y1="{Y(c["placebo"] - 0.5):.1f}" '
                           f'y2="{Y(c["placebo"] - 0.5):.1f}" stroke="#555" stroke-width="2"><title>placebo of its size: '
                           f'{c["placebo"] - 0.5:+.3f}</title></line>')
            reps = c.get("replicates") or 1
            out.append(f'<circle cx="{x:.1f}" cy="{Y(c["delta"]):.1f}" r="{3 + min(reps, 5)}" fill="{color}"><title>{_esc(c["cid"])}: '
                       f'{c["delta"]:+.3f} over {reps} replicate(s)</title></circle>')
            out.append(f'<text x="{x - 3:.1f}" y="{Y(c["delta"]) - 9:.1f}" font-size="9">{reps}</text>')
    out.append(f'<text x="{_P}" y="14" font-size="12">score − r0 per candidate (bars: 95% interval; number: replicates; '
               f'grey tick: the placebo of its size; shaded: the noise band; red: best, green: beats its placebo and r0)</text>')
    out.append("</svg>")
    return "".join(out)


def _interval_note(rep: dict[str, Any]) -> str:
    band = rep.get("noise_band")
    if not band:
        return ("A candidate's interval is the evaluator's: with one replicate a bootstrap over held-out questions "
                "for one trained pair of models, which does not include the variance between training runs.")
    return ("A candidate's score is its mean win rate over its paired replicates (racing gives more to the candidates "
            "not separated from the best); its interval adds the training noise the noise band measured (t x sd / "
            "sqrt(replicates)) to the spread over questions, and from three replicates on is at least the evaluator's "
            "own. A candidate improves on the data only when its interval lies above 0.5 and it is separated from the "
            "placebo of its size.")


def _band_text(band: dict[str, Any] | None) -> str:
    if not band or not band.get("points"):
        return ""
    rows = "".join(f"<li>{p['fraction']:.0%} of the rows dropped at random ({p['dropped']} rows): win rate "
                   f"{p['estimate']:.3f} [{p['low']:.3f}, {p['high']:.3f}], per replicate "
                   f"{', '.join(f'{x:.2f}' for x in p['per_replicate'])}</li>" for p in band["points"])
    sd = band.get("sd")
    return (f"<p>Noise band (placebo arms against the unprocessed sample, measured once):</p><ul>{rows}</ul>"
            f"<p>Training noise: sd {sd:.3f} of one replicate's win rate (df {band.get('df')}).</p>" if sd is not None
            else f"<p>Noise band:</p><ul>{rows}</ul>")


def _hbars(items: list[tuple[str, float]], title: str, fmt: str = "{:g}") -> str:
    if not items:
        return "<p>Nothing to show.</p>"
    m = max(abs(v) for _, v in items) or 1.0
    bh = 20
    h = 30 + bh * len(items)
    lab = 260
    out = [f'<svg viewBox="0 0 {_W} {h}" width="{_W}" height="{h}" role="img" aria-label="{_esc(title)}">',
           f'<text x="4" y="14" font-size="12">{_esc(title)}</text>']
    for i, (name, v) in enumerate(items):
        y = 24 + i * bh
        w = (_W - lab - 60) * abs(v) / m
        short = name if len(name) <= 40 else name[:37] + "..."
        out.append(f'<text x="4" y="{y + 13}" font-size="11"><title>{_esc(name)}</title>{_esc(short)}</text>')
        out.append(f'<rect x="{lab}" y="{y + 2}" width="{w:.1f}" height="{bh - 6}" fill="#ff7f0e"/>')
        out.append(f'<text x="{lab + w + 4:.1f}" y="{y + 13}" font-size="11">{_esc(fmt.format(v))}</text>')
    out.append("</svg>")
    return "".join(out)


def _numeric_leaves(obj: Any, prefix: str = "") -> list[tuple[str, float]]:
    out: list[tuple[str, float]] = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _numeric_leaves(v, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(obj, list) and len(obj) <= 50:
        for i, v in enumerate(obj):
            name = v.get("name") or v.get("signal") if isinstance(v, dict) else None
            out += _numeric_leaves(v, f"{prefix}[{name or i}]")
    elif isinstance(obj, int | float) and not isinstance(obj, bool):
        out.append((prefix, float(obj)))
    return out


def _fidelity_plot(fid: Any) -> str:
    if isinstance(fid, list) and fid and isinstance(fid[0], dict) and "ks" in fid[0]:
        return _ks_bars(fid)
    leaves = _numeric_leaves(fid)
    # prefer distances/differences (what a fidelity check measures)
    pref = [x for x in leaves if any(t in x[0].lower() for t in ("ks", "dist", "diff", "tv", "psi", "smd", "shift"))]
    items = (pref or leaves)[:30]
    return _hbars(items, "sampling fidelity: distance between sample and full data per statistic (lower is closer)", "{:.4g}")


def _ks_bars(fid: list[dict[str, Any]]) -> str:
    """Paired bars per signal: KS distance of the sample (blue) and of a uniform sample (grey)."""
    rows = [f for f in fid if isinstance(f.get("ks"), int | float)][:40]
    m = max([f["ks"] for f in rows] + [f.get("ks_uniform") or 0 for f in rows] + [1e-9])
    bh, lab = 22, 260
    h = 40 + bh * len(rows)
    out = [f'<svg viewBox="0 0 {_W} {h}" width="{_W}" height="{h}" role="img" aria-label="sampling fidelity">',
           '<text x="4" y="14" font-size="12">KS distance to the full data per signal: sample (blue) vs a uniform '
           'random sample of the same size (grey); lower is closer</text>']
    for i, f in enumerate(rows):
        y = 26 + i * bh
        out.append(f'<text x="4" y="{y + 13}" font-size="11">{_esc(f.get("signal", i))}</text>')
        for j, (k, color) in enumerate((("ks", "#1f77b4"), ("ks_uniform", "#aaa"))):
            v = f.get(k)
            if not isinstance(v, int | float):
                continue
            w = (_W - lab - 60) * v / m
            out.append(f'<rect x="{lab}" y="{y + 2 + j * 8}" width="{w:.1f}" height="7" fill="{color}"/>')
            if j == 0:
                out.append(f'<text x="{lab + w + 4:.1f}" y="{y + 9}" font-size="10">{v:.3f}</text>')
    out.append("</svg>")
    return "".join(out)


def _attempts_html(p: dict[str, Any] | None) -> str:
    """The original proposal and each repair attempt with its diagnostics, when there was more than one text."""
    if not p or not p.get("attempts") or (len(p["attempts"]) == 1 and not p["attempts"][0].get("diagnostics")):
        return ""
    parts = []
    for i, a in enumerate(p["attempts"]):
        diags = "".join(f"<li>{_esc(d.get('code'))} (line {_esc(d.get('line'))}): {_esc(d.get('message'))}</li>"
                        for d in a.get("diagnostics", []))
        parts.append(f"<p>{'original proposal' if i == 0 else f'repair {i}'}</p><pre>{_esc(a.get('dp_text', ''))}</pre>"
                     + (f"<ul>{diags}</ul>" if diags else ""))
    return f"<details><summary>proposal and repairs</summary>{''.join(parts)}</details>"


NO_PLACEBO_WIN = "no candidate beat both the unprocessed data and the placebo of its own size"
NOT_SHOWN = ("no strategy is shown to improve on the unprocessed data; use the unprocessed data, or search "
             "with more replicates")


def placebo_control(pb: dict[str, Any]) -> str:
    """What the final verdict's placebo arms were, in words: a random drop, or (the candidate dropped no
    rows) the unprocessed data on other seeds -- "dropping 0 rows at random" would misdescribe it."""
    if pb.get("kind") == "a/a" or not pb.get("dropped"):
        return "the unprocessed data trained with other seeds (an A/A placebo: it drops no rows)"
    return f"dropping as many rows ({pb.get('dropped')}) at random"


def improvement_shown(fe: dict[str, Any]) -> bool:
    """The final verdict shows an improvement only when the win rate against the unprocessed data is
    above 0.5 (its interval's low end) and the strategy beats its placebo: beating a placebo that itself
    loses to the unprocessed data is not an improvement."""
    pb = fe.get("placebo")
    low = fe.get("ci_low")
    return low is not None and low > 0.5 and (pb is None or pb.get("beats_placebo") is True)


def render_html(rep: dict[str, Any]) -> str:
    best = rep.get("best") or {}
    final = rep.get("final") or {}
    fe = final.get("eval") or {}
    steps = rep.get("best_steps") or []
    drop_items = [(f"{s.get('path', '')} {s.get('step', '')}", float(s.get("rows_in", 0) - s.get("rows_out", 0))) for s in steps]
    cands = rep.get("candidates", [])
    props = rep.get("proposals") or {}
    rows = []
    for c in sorted(cands, key=lambda c: (c["round"], c["cid"])):
        d = c.get("delta")
        ds = "" if d is None else f"{d:+.3f}"
        ci = "" if c.get("ci_low") is None else "{:.2f}–{:.2f}".format(c["ci_low"], c["ci_high"])
        pb = "" if c.get("placebo") is None else "{:.2f} ({})".format(
            c["placebo"], {True: "beaten", False: "better", None: "not separated"}[c.get("beats_placebo")])
        rows.append(
            f"<tr><td>{_esc(c['cid'])}</td><td>{_esc(c['status'])}</td><td>{ds}</td>"
            f"<td>{ci}</td><td>{_esc(c.get('replicates', 1)) if c.get('delta') is not None else ''}</td><td>{pb}</td>"
            f"<td>{_esc(c.get('rows_out') or '')}/{_esc(c.get('rows_in') or '')}</td><td>{_esc(c.get('origin', ''))}</td>"
            f"<td><details><summary>.dp</summary><pre>{_esc(c['dp_text'])}</pre></details>"
            f"{_attempts_html(props.get(c['cid']))}</td></tr>"
        )
    fin = ""
    if fe.get("win_rate") is not None:
        fin = (f"<p class='big'>Final: win rate <b>{fe['win_rate']:.3f}</b> (95% CI {fe['ci_low']:.3f}–{fe['ci_high']:.3f}) "
               f"against the unprocessed data, {fe.get('wins')} wins / {fe.get('ties')} ties / {fe.get('losses')} losses "
               f"on {fe.get('n')} held-out questions not used during the search. Rows kept: {final.get('rows_out')} of "
               f"{final.get('rows_in')}.</p>")
        pb = fe.get("placebo")
        if pb:
            verdict = {True: "beats", False: "loses to"}.get(pb.get("beats_placebo"), "does not separate from")
            fin += (f"<p class='big'>Placebo control: the best strategy <b>{verdict}</b> {_esc(placebo_control(pb))}."
                    f"</p><p>{_esc(pb.get('statement'))}</p>")
            if not improvement_shown(fe):
                fin += f"<p><b>Verdict:</b> {NOT_SHOWN}.</p>"
    elif final:
        fin = f"<p>Final evaluation failed: {_esc(fe.get('error'))}</p>"
    if best:
        best_line = "<p>score − r0 on the search sample: {:+.3f} (win rate {:.3f}, interval {:.3f}–{:.3f}, {} replicate(s){})</p>".format(
            best["delta"], best["win_rate"], best["ci_low"], best["ci_high"], best.get("replicates", 1),
            "" if best.get("placebo") is None else "; placebo of its size {:.3f}".format(best["placebo"]))
    else:
        best_line = "<p>No candidate was scored.</p>"
    cfg = rep.get("config", {})
    used = rep.get("budget_used", {})
    est = rep.get("estimate") or {}
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>autodp search report</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 960px; margin: 2em auto; padding: 0 1em; color: #222; }}
table {{ border-collapse: collapse; font-size: 13px; }} td, th {{ border-bottom: 1px solid #ddd; padding: 3px 8px; text-align: left; vertical-align: top; }}
pre {{ background: #f6f6f6; padding: 8px; overflow-x: auto; font-size: 12px; }} .big {{ font-size: 1.1em; }}
</style></head><body>
<h1>autodp search report</h1>
<p>Data: <code>{_esc(rep['data']['path'])}</code> — {rep['data'].get('full')} rows ({rep['data'].get('search')} searched).
Agent: {_esc(cfg.get('agent'))}; seed {_esc(cfg.get('seed'))}; sampling {'on' if cfg.get('sampling') else 'off'},
target selection {'on' if cfg.get('target_selection') else 'off'}, cache {'on' if cfg.get('cache') else 'off'}.
Stopped: {_esc(rep.get('stop_reason'))}. Total time {rep.get('seconds', 0):.1f} s; {used.get('finetunes')} fine-tune runs as the budget counts them
({used.get('trained', '?')} arms trained in this run; the evaluator's memo held the others),
{used.get('evaluations')} evaluations, {used.get('agent_calls')} agent calls ({used.get('repairs')} repairs).
Pre-flight estimate: at most {est.get('finetunes', '?')} fine-tune runs, {est.get('evaluations', '?')} evaluations, about {est.get('seconds', 0):.0f} s
(at most {est.get('seconds_max', est.get('seconds', 0)):.0f} s one after another).</p>
<p class='big'><b>In plain words:</b> {_esc(rep.get('verdict_text', ''))}</p>
{fin}
<p><small>{_esc(_interval_note(rep))}</small></p>
<h2>Best strategy{(' — ' + _esc(best.get('cid'))) if best else ''}</h2>
{best_line}
<pre>{_esc(best.get('dp_text', ''))}</pre>
<h2>Score per round and candidate</h2>
{_scatter(cands, best.get('cid'), rep.get('noise_band'))}
{_band_text(rep.get('noise_band'))}
<h2>Rows dropped per step (best strategy{', full data' if final else ''})</h2>
{_hbars(drop_items, 'rows dropped by each step', '{:.0f}')}
<h2>Sampling fidelity</h2>
<pre>{_esc(rep.get('fidelity_text', ''))}</pre>
{_fidelity_plot(rep.get('fidelity'))}
<h2>Processing target selection</h2>
<pre>{_esc(json.dumps(rep.get('targets'), indent=1, default=str))}</pre>
<h2>All candidates</h2>
<table><tr><th>id</th><th>status</th><th>score − r0</th><th>interval (win rate)</th><th>replicates</th><th>placebo of its size</th><th>rows</th><th>origin</th><th>strategy</th></tr>
{''.join(rows)}</table>
<h2>Agent</h2>
<pre>{_esc(json.dumps(rep.get('agent'), indent=1, default=str))}</pre>
<h2>Data profile (what the agent saw)</h2>
<pre>{_esc(rep.get('profile_text', ''))}</pre>
</body></html>
"""
