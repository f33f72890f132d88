"""autodp_backends, the shared model-backend layer: a leaf, and the one place for each of its parts."""

from __future__ import annotations

import ast
import random
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("autodp_dsl", "stdlib_ops", "autodp_eval", "autodp_search")


def _imports(path: Path) -> set[str]:
    """Every module a file imports, at the top or inside functions (relative ones resolved)."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            out.add(".".join(p for p in (base, node.module or "") if p))
    return out


def test_the_backends_layer_is_a_leaf():
    files = sorted((ROOT / "autodp_backends").glob("*.py"))
    assert files
    for f in files:
        up = {m for m in _imports(f) if m.split(".")[0] in PACKAGES}
        assert not up, f"{f.name} imports {sorted(up)}"


def test_the_evaluator_reaches_the_layer_without_the_language():
    for f in sorted((ROOT / "autodp_eval").glob("*.py")):
        assert not {m for m in _imports(f) if m.split(".")[0] in ("autodp_dsl", "stdlib_ops", "autodp_search")}, f.name


def test_one_fake_server_under_every_name():
    import autodp_backends.testing as one
    import autodp_eval.testing as eval_testing
    import stdlib_ops.backends.testing as stdlib_testing

    for name in ("FakeOpenAIServer", "FakeRequest", "Reply"):
        assert getattr(eval_testing, name) is getattr(one, name) is getattr(stdlib_testing, name)


def test_one_atomic_write():
    """Files are replaced by autodp_backends.atomic only: no other module of the product renames
    onto a path, except the output folder swap of outputs.py (a folder set aside, then removed
    file by file, which a rename of one file cannot express)."""
    import autodp_backends.atomic as one
    import autodp_dsl.atomic as dsl_name

    assert dsl_name.write_bytes_atomic is one.write_bytes_atomic and dsl_name.commit is one.commit
    renamers = set()
    for pkg in ("autodp_backends", *PACKAGES):
        for f in (ROOT / pkg).rglob("*.py"):
            for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
                if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("replace", "rename")
                        and isinstance(node.func.value, ast.Name) and node.func.value.id == "os"):
                    renamers.add(f.relative_to(ROOT).as_posix())
    assert renamers == {"autodp_backends/atomic.py", "autodp_dsl/outputs.py"}


def test_backoff_doubles_with_jitter_up_to_the_cap_and_honours_retry_after():
    from autodp_backends.retry import backoff_delay

    rng = random.Random(0)
    for k, nominal in ((1, 0.5), (2, 1.0), (3, 2.0), (10, 4.0)):
        d = backoff_delay(k, 0.5, 4.0, rng=rng)
        assert 0.75 * nominal <= d <= nominal
    assert backoff_delay(1, 0.5, 4.0, retry_after=3.0, rng=rng) == 3.0
    assert backoff_delay(1, 0.5, 4.0, retry_after=60.0, rng=rng) == 4.0  # never longer than the cap


@pytest.mark.parametrize(
    ("status", "error", "kind"),
    [(408, "TransientError", "timeout"), (429, "TransientError", "rate_limit"), (503, "TransientError", "server"),
     (400, "PermanentError", "client"), (409, "PermanentError", "client"), (401, "ConfigError", None), (404, "ConfigError", None)],
)
def test_the_client_errors_map_to_one_vocabulary(status, error, kind):
    """What the openai client raises for each answer of the fake server, in autodp_backends' terms."""
    from autodp_backends import errors
    from autodp_backends.openai_client import openai_client, request_error
    from autodp_backends.testing import FakeOpenAIServer, Reply

    with FakeOpenAIServer(lambda req: Reply.error(status, "nope", retry_after=1 if status == 429 else None)) as srv:
        client = openai_client(srv.base_url, "k", timeout=5)
        with pytest.raises(Exception) as info:
            client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    err = request_error(info.value, 5)
    assert type(err) is getattr(errors, error) and err.status == status
    assert getattr(err, "kind", None) == kind
    if status == 429:
        assert err.retry_after == 1.0
    assert request_error(ValueError("a bug"), 5) is None  # not the client's: the caller reports it as a bug
