"""The search journal: every finished piece of work, written atomically, so a search can resume.

Layout of ``<out>/journal/``::

    meta.json                 what the search is (data fingerprint, seed, agent, settings); a resume
                              with different settings is refused
    setup.json                profile, sampling fidelity, target-selection metrics, baseline score
    round-0001.plan.json      the round's candidates after linting, repairs and de-duplication,
                              written before any evaluation (a resumed round reuses them: an LLM
                              is not asked again)
    round-0001.ahead.json     arms trained ahead of their candidates' evaluation (``--eval-workers``),
                              per candidate, written as soon as they are trained: a search that stops
                              before evaluating them keeps the count (the arms are in the memo)
    cand-r1c2.json            one evaluated candidate (written as soon as it is scored)
    round-0001.race.json      the round's race so far: each extra replicate given, with the score it
                              gave (rewritten after each; a resumed race replays it, then goes on)
    round-0001.json           the finished round (all its records): the round is done
    final.json                the final evaluation on the full data

Every file is written with ``autodp_dsl.atomic.write_text_atomic`` (temp file, fsync, rename), so
a killed search leaves whole files only.

A folder is a search run's when its ``journal/meta.json`` is autodp's (``is_journal_meta``), and
starting over (``--force``) deletes only the files named like the ones above (``JOURNAL_FILE``):
anything else a user put in ``journal/`` stays.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict
from pathlib import Path
from typing import Any

from autodp_dsl.atomic import write_text_atomic

from .agents import CandidateRecord, StepCount
from .racing import RACE_FIELDS

__all__ = ["Journal", "JournalMismatch", "is_journal_meta", "out_dir_problem", "record_from_json", "record_to_json"]

JOURNAL_VERSION = 1
# the names of the files a journal holds (and the temporary files of their atomic writes)
_NAME = r"(?:meta|setup|final|round-\d{4}(?:\.w\d+)?(?:\.plan|\.race|\.ahead)?|cand-[A-Za-z0-9_-]+)\.json"
JOURNAL_FILE = re.compile(rf"{_NAME}|\.{_NAME}\.\w+\.tmp")


def is_journal_meta(doc: Any) -> bool:
    """True for the ``meta.json`` a search writes (its version, identity and settings)."""
    return (isinstance(doc, dict) and doc.get("version") == JOURNAL_VERSION
            and isinstance(doc.get("identity"), dict) and isinstance(doc.get("config"), dict))


class JournalMismatch(RuntimeError):
    """``--resume`` on a journal written with different settings."""


class Journal:
    def __init__(self, folder: str | Path):
        self.dir = Path(folder)

    # ---------------------------------------------------------------- basics
    def _write(self, name: str, obj: Any) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        write_text_atomic(self.dir / name, json.dumps(obj, indent=1, ensure_ascii=False, sort_keys=True, default=str))

    def _read(self, name: str) -> Any | None:
        p = self.dir / name
        if not p.exists():
            return None
        try:
            return json.loads(p.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return None

    def exists(self) -> bool:
        return (self.dir / "meta.json").exists()

    def is_autodps(self) -> bool:
        """Whether the journal's meta.json is one a search wrote."""
        return is_journal_meta(self._read("meta.json"))

    def clear(self) -> None:
        """Start over: delete the journal's own files, by name; nothing else in the folder."""
        if self.dir.is_dir():
            for p in self.dir.iterdir():
                if JOURNAL_FILE.fullmatch(p.name) and p.is_file() and not p.is_symlink():
                    p.unlink()

    # ---------------------------------------------------------------- meta
    def start(self, meta: dict[str, Any], resume: bool) -> bool:
        """Create the journal, or check it on resume. Returns True when resuming earlier work."""
        old = self._read("meta.json")
        if old is not None and resume:
            mismatched = sorted(k for k in set(old.get("identity", {})) | set(meta["identity"])
                                if old.get("identity", {}).get(k) != meta["identity"].get(k))
            if mismatched:
                raise JournalMismatch(
                    "cannot resume: the journal was written with different settings ("
                    + ", ".join(f"{k}: {old['identity'].get(k)!r} -> {meta['identity'].get(k)!r}" for k in mismatched)
                    + "); start a new search with --force or another --out")
            return True
        if old is not None and not resume:
            if not is_journal_meta(old):  # out_dir_problem refuses such a folder first
                raise JournalMismatch(f"{self.dir / 'meta.json'} is not a search journal's; choose another --out")
            self.clear()
        self._write("meta.json", {"version": JOURNAL_VERSION, **meta})
        return False

    def meta(self) -> dict[str, Any] | None:
        return self._read("meta.json")

    def write_meta(self, meta: dict[str, Any]) -> None:
        """Replace ``meta.json`` (``start`` wrote it; the search adds what it learns later)."""
        self._write("meta.json", meta)

    # ---------------------------------------------------------------- setup, rounds, candidates
    def write_setup(self, setup: dict[str, Any]) -> None:
        self._write("setup.json", setup)

    def setup(self) -> dict[str, Any] | None:
        return self._read("setup.json")

    def write_plan(self, rnd: int, plan: dict[str, Any], wave: int = 0) -> None:
        self._write(_plan_name(rnd, wave), plan)

    def plan(self, rnd: int, wave: int = 0) -> dict[str, Any] | None:
        return self._read(_plan_name(rnd, wave))

    def write_candidate(self, cid: str, rec: dict[str, Any]) -> None:
        self._write(f"cand-{cid}.json", rec)

    def candidate(self, cid: str) -> dict[str, Any] | None:
        return self._read(f"cand-{cid}.json")

    def write_race(self, rnd: int, steps: list[dict[str, Any]]) -> None:
        self._write(f"round-{rnd:04d}.race.json", {"round": rnd, "steps": steps})

    def race(self, rnd: int) -> list[dict[str, Any]]:
        return (self._read(f"round-{rnd:04d}.race.json") or {}).get("steps", [])

    def write_ahead(self, rnd: int, arms: dict[str, int]) -> None:
        self._write(f"round-{rnd:04d}.ahead.json", {"round": rnd, "arms": arms})

    def ahead(self, rnd: int) -> dict[str, int]:
        """The arms trained ahead per candidate id; entries that are not a count (a tampered file) are
        left out like an unreadable file: the count is the report's, no decision depends on it."""
        doc = self._read(f"round-{rnd:04d}.ahead.json")
        arms = doc.get("arms") if isinstance(doc, dict) else None
        return {cid: n for cid, n in arms.items() if type(n) is int and n >= 0} if isinstance(arms, dict) else {}

    def write_round(self, rnd: int, data: dict[str, Any]) -> None:
        self._write(f"round-{rnd:04d}.json", data)

    def round(self, rnd: int) -> dict[str, Any] | None:
        return self._read(f"round-{rnd:04d}.json")

    def rounds(self) -> list[dict[str, Any]]:
        out = []
        i = 1
        while (r := self.round(i)) is not None:
            out.append(r)
            i += 1
        return out

    def write_final(self, data: dict[str, Any]) -> None:
        self._write("final.json", data)

    def final(self) -> dict[str, Any] | None:
        return self._read("final.json")


def record_to_json(r: CandidateRecord) -> dict[str, Any]:
    return asdict(r)


def record_from_json(d: dict[str, Any]) -> CandidateRecord:
    steps = tuple(
        StepCount(s["path"], s["step"], s["rows_in"], s["rows_out"], tuple((a, b) for a, b in s.get("reasons", ())))
        for s in d.get("steps", ())
    )
    return CandidateRecord(
        round=d["round"], cid=d["cid"], dp_text=d["dp_text"], status=d["status"], key=d.get("key", ""),
        delta=d.get("delta"), win_rate=d.get("win_rate"), ci_low=d.get("ci_low"), ci_high=d.get("ci_high"),
        rows_in=d.get("rows_in"), rows_out=d.get("rows_out"), steps=steps, feedback=d.get("feedback", ""),
        duplicate_of=d.get("duplicate_of"), errors=tuple(d.get("errors", ())), origin=d.get("origin", ""),
        **{k: d[k] for k in RACE_FIELDS if k in d},
    )


def _plan_name(rnd: int, wave: int) -> str:
    """The first plan of a round, then its refills (``round-0002.plan.json``, ``round-0002.w1.plan.json``)."""
    return f"round-{rnd:04d}.plan.json" if wave == 0 else f"round-{rnd:04d}.w{wave}.plan.json"


def out_dir_problem(out: str | Path, data: str | Path) -> str | None:
    """Why the search may not write into ``out`` (None: it may). A search writes best.dp,
    processed.jsonl, report.* and journal/ into its folder, so the folder must be new, empty, or an
    earlier search run (it holds journal/; only .cache/ when a run was stopped before its first
    journal entry), and the data must not be inside it. An earlier run is recognised by the
    journal's meta.json, which a search writes first: a ``journal/`` folder of the user's is not one."""
    import os

    real_out, real_data = os.path.realpath(out), os.path.realpath(data)
    if real_data == real_out or real_data.startswith(real_out.rstrip(os.sep) + os.sep):
        return f"the data {data} is inside --out {out}; the search writes there: choose another --out"
    if not os.path.lexists(out):
        return None
    if not os.path.isdir(out):
        return f"--out {out} exists and is not a folder"
    names = set(os.listdir(out))
    if names and names != {".cache"} and not Journal(os.path.join(out, "journal")).is_autodps():
        return (f"--out {out} is a folder that is not an autodp search run (it holds no journal/meta.json written by "
                "autodp search); choose another --out")
    from autodp_dsl.atomic import check_target

    for name in ("best.dp", "processed.jsonl", "report.json", "report.html"):  # refused now, not after the search
        p = os.path.join(out, name)
        if os.path.realpath(p) == real_data or (os.path.exists(p) and os.path.exists(data) and os.path.samefile(p, data)):
            return f"{p} is the data {data} (a link to it); the search would overwrite it: choose another --out"
        try:
            check_target(p)
        except ValueError as e:
            return str(e).replace("use --force to replace this name anyway", "remove the other links or choose another --out")
    return None

