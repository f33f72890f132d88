"""datatrove's MinHash stage on one jsonl file, in one process; run by bench_peers.py with the bench venv.

    python datatrove_minhash.py DATA.jsonl WORKDIR RESULT.json

Signatures, buckets, clustering, then the filter that writes the kept documents, each a
LocalPipelineExecutor with one worker (the buckets stage: one task per band, run in turn), one
after the other. The LSH layout is the
one autodp and Data-Juicer use for threshold 0.7 and 256 permutations: 25 bands of 10 rows, 5-word
shingles. datatrove's own text normalisation (lower case, punctuation and digits removed) and word
tokenizer stay as they are: this times its stage, it does not re-implement autodp's. Writes the
seconds of each stage and the kept ids to RESULT.json.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.dedup.minhash import (
    MinhashConfig,
    MinhashDedupBuckets,
    MinhashDedupCluster,
    MinhashDedupFilter,
    MinhashDedupSignature,
)
from datatrove.pipeline.readers import JsonlReader
from datatrove.pipeline.writers import JsonlWriter
from datatrove.utils.hashing import HashConfig


def id_only(writer, document) -> dict:
    """The writer's adapter: the kept document's id is all the comparison needs."""
    return {"id": document.id}


def main() -> None:
    data, work, result = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    cfg = MinhashConfig(n_grams=5, num_buckets=25, hashes_per_bucket=10, hash_config=HashConfig(precision=64))

    def reader():
        return JsonlReader(str(data.parent), glob_pattern=data.name, text_key="text", id_key="id")

    stages = {
        "signatures": [reader(), MinhashDedupSignature(output_folder=str(work / "sigs"), config=cfg)],
        "buckets": [MinhashDedupBuckets(input_folder=str(work / "sigs"), output_folder=str(work / "buckets"), config=cfg)],
        "clusters": [MinhashDedupCluster(input_folder=str(work / "buckets"), output_folder=str(work / "remove_ids"), config=cfg)],
        "filter": [reader(), MinhashDedupFilter(input_folder=str(work / "remove_ids")),
                   JsonlWriter(str(work / "kept"), output_filename="kept.jsonl", compression=None, adapter=id_only)],
    }
    seconds = {}
    for name, pipeline in stages.items():
        # the buckets stage needs one task per band; workers=1 runs them one after the other in this process
        tasks = cfg.num_buckets if name == "buckets" else 1
        t = time.perf_counter()
        LocalPipelineExecutor(pipeline=pipeline, tasks=tasks, workers=1, logging_dir=str(work / "logs" / name)).run()
        seconds[name] = time.perf_counter() - t
    kept = [json.loads(line)["id"] for line in (work / "kept" / "kept.jsonl").read_text(encoding="utf-8").splitlines()]
    result.write_text(json.dumps({"seconds": seconds, "kept": kept}), encoding="utf-8")


if __name__ == "__main__":
    main()
