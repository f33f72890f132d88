"""Shared helpers of the search tests: tiny data sets, scripted agents."""

from __future__ import annotations

import json
import random
import string
from pathlib import Path

from autodp_search.agents import AgentContext, Proposal, RepairRequest


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def qa_rows(n: int = 240, seed: int = 0, junk: float = 0.3) -> list[dict]:
    """Learnable QA rows (autodp_eval.testing.make_qa_rows) with a share of junk answers."""
    from autodp_eval.testing import corrupt_rows, make_qa_rows

    rows = make_qa_rows(n, seed=seed)
    bad, _ = corrupt_rows(rows, fraction=junk, seed=seed + 1)
    return bad


def random_word(rng: random.Random, lo: int = 3, hi: int = 9) -> str:
    return "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(lo, hi)))


def canary_rows(n: int = 200, seed: int = 7) -> tuple[list[dict], list[str]]:
    """Rows of random, unique words (so any 20-character substring of a row is specific to it),
    each carrying a unique canary string; a few exact duplicates give dedup something to do."""
    rng = random.Random(seed)
    rows, canaries = [], []
    for i in range(n):
        canary = f"CANARY-{i:04d}-{rng.getrandbits(64):016x}"
        canaries.append(canary)
        q = " ".join(random_word(rng) for _ in range(rng.randint(4, 9))) + " ?"
        a = " ".join(random_word(rng) for _ in range(rng.randint(3, 40))) + f" {canary} " + random_word(rng)
        if i % 17 == 0:
            a = "<p>" + a + "</p>"
        rows.append({"id": f"row-{i}", "instruction": q, "input": "", "output": a})
    for i in range(0, n, 23):
        rows.append(dict(rows[i], id=f"dup-{i}"))
    return rows, canaries


class ScriptedAgent:
    """Returns fixed proposals per round (the last list repeats) and scripted repairs."""

    name = "scripted"

    def __init__(self, rounds: list[list[str]], repairs: list[str | None] | None = None):
        self.rounds = rounds
        self.repairs = list(repairs or [])
        self.contexts: list[AgentContext] = []
        self.repair_requests: list[RepairRequest] = []

    def propose(self, context: AgentContext) -> list[Proposal]:
        self.contexts.append(context)
        texts = self.rounds[min(context.round - 1, len(self.rounds) - 1)]
        return [Proposal(t, "scripted", "scripted") for t in texts]

    def repair(self, context: AgentContext, request: RepairRequest) -> Proposal | None:
        self.repair_requests.append(request)
        if not self.repairs:
            return None
        t = self.repairs.pop(0)
        return None if t is None else Proposal(t, "repaired", "repair")


def dp(name: str, *steps: str) -> str:
    body = "\n".join(f"  - {s}" for s in steps) if steps else ""
    return f"dp: 1\nname: {name}\nsteps:\n{body}\n" if steps else f"dp: 1\nname: {name}\nsteps: []\n"
