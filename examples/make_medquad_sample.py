"""Rebuild ``examples/medquad_sample.jsonl`` from the full MedQuAD conversion (deterministic).

    python examples/make_medquad_sample.py /work/shared/data/medquad/medquad.jsonl examples/medquad_sample.jsonl

1,600 records drawn without replacement with ``random.Random(20261125)``, kept in file order.
Fields: ``id``, ``instruction``, ``input``, ``output``, ``source`` as upstream, plus ``category``
(upstream ``meta.qtype``); the rest of ``meta`` is left out to keep the file small.
"""

from __future__ import annotations

import json
import random
import sys

N = 1600
SEED = 20261125


def main(src: str, dst: str) -> None:
    with open(src, encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    idx = sorted(random.Random(SEED).sample(range(len(rows)), N))
    with open(dst, "w", encoding="utf-8") as f:
        for i in idx:
            r = rows[i]
            rec = {k: r[k] for k in ("id", "instruction", "input", "output", "source")}
            rec["category"] = r["meta"]["qtype"]
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main(*sys.argv[1:3])
