"""Run a scripted search in a child process (killed by test_resume_after_sigkill)."""

import sys

from autodp_search import Budget, ScriptedEvaluator, SearchConfig, run_search

if __name__ == "__main__":
    data, out = sys.argv[1], sys.argv[2]
    cfg = SearchConfig(data=data, out_dir=out, seed=5, heldout_n=20, final_heldout_n=20, quiet=True,
                       budget=Budget(max_rounds=3), sample_fraction=0.5, resume="--resume" in sys.argv)
    run_search(cfg, evaluator=ScriptedEvaluator(seconds_per_row=0.004))
