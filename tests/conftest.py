"""Shared test settings: hypothesis profiles and paths."""

from __future__ import annotations

import os
from pathlib import Path

from hypothesis import HealthCheck, settings

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"

# "ci" keeps the suite fast; "thorough" is the 10,000-example fuzz run (see README).
settings.register_profile("ci", max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", max_examples=10_000, deadline=None, suppress_health_check=list(HealthCheck))
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))

# caches the code writes by default (the operator manifest, the run cache) go to a folder of this
# test session, not to the home folder; tests that check the rule set the variable themselves
if "AUTODP_CACHE_DIR" not in os.environ:
    import tempfile

    os.environ["AUTODP_CACHE_DIR"] = tempfile.mkdtemp(prefix="autodp-tests-cache-")

