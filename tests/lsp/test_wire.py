"""Bytes on the wire that are not valid JSON-RPC: the server skips them and keeps answering."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import ROOT


def _frame(body: bytes) -> bytes:
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


def _msg(**kw) -> bytes:
    return _frame(json.dumps({"jsonrpc": "2.0", **kw}).encode())


def _replies(out: bytes) -> list[dict]:
    replies = []
    while b"\r\n\r\n" in out:
        head, _, rest = out.partition(b"\r\n\r\n")
        n = int(next(h for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")).split(b":")[1])
        if len(rest) < n:  # a frame still arriving
            break
        replies.append(json.loads(rest[:n]))
        out = rest[n:]
    return replies


def test_invalid_utf8_and_garbage_frames_do_not_end_the_server():
    bad_open = (b'{"jsonrpc":"2.0","method":"textDocument/didOpen","params":{"textDocument":'
                b'{"uri":"file:///tmp/x.dp","languageId":"dp","version":1,"text":"dp: 1\xff\xfe\x80steps: []"}}}')
    good_open = _msg(method="textDocument/didOpen", params={"textDocument": {
        "uri": "file:///tmp/y.dp", "languageId": "dp", "version": 1, "text": "dp: 1\nname: y\nsteps:\n  - clean.htm(output)\n"}})
    stream = b"".join([
        _msg(id=1, method="initialize", params={"capabilities": {}}),
        _msg(method="initialized", params={}),
        _frame(bad_open),  # invalid UTF-8 inside the JSON text
        _frame(b"\x00\x01 not json at all \xff"),
        _frame(b'{"jsonrpc": "2.0", "id": 7, "method": "textDocument/hover", "params": {"textDocument": 5}}'),
        good_open,
        _msg(id=2, method="textDocument/hover", params={"textDocument": {"uri": "file:///tmp/y.dp"}, "position": {"line": 3, "character": 15}}),
        _msg(id=3, method="shutdown"),
        _msg(method="exit"),
    ])
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    p = subprocess.run([sys.executable, "-m", "autodp_dsl.cli", "lsp"], input=stream, capture_output=True, timeout=60, env=env)
    replies = _replies(p.stdout)
    by_id = {r.get("id"): r for r in replies if "id" in r}
    assert "result" in by_id[1] and "result" in by_id[3], replies
    assert "result" not in by_id.get(7, {})  # a malformed request gets an error or nothing, not an answer
    assert "column" in by_id[2]["result"]["contents"]["value"]  # later requests are answered (hover on `output`)
    published = [r["params"] for r in replies if r.get("method") == "textDocument/publishDiagnostics"]
    y = [d for pub in published if pub["uri"] == "file:///tmp/y.dp" for d in pub["diagnostics"]]
    assert [d["code"] for d in y] == ["unknown-op"]
    assert p.returncode == 0


def test_a_check_over_its_time_limit_is_reported_not_awaited():
    stream = b"".join([
        _msg(id=1, method="initialize", params={"capabilities": {}}),
        _msg(method="initialized", params={}),
        _msg(method="textDocument/didOpen", params={"textDocument": {
            "uri": "file:///tmp/slow.dp", "languageId": "dp", "version": 1, "text": "dp: 1\nname: s\nsteps:\n  - clean.html(output)\n"}}),
        _msg(id=2, method="textDocument/hover", params={"textDocument": {"uri": "file:///tmp/slow.dp"}, "position": {"line": 3, "character": 6}}),
    ])
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    p = subprocess.Popen([sys.executable, "-m", "autodp_dsl.cli", "lsp", "--check-timeout", "0.000001"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, env=env)
    p.stdin.write(stream)
    p.stdin.flush()
    out = b""
    try:
        while not any(r.get("method") == "textDocument/publishDiagnostics" for r in _replies(out)) or 2 not in {r.get("id") for r in _replies(out)}:
            out += os.read(p.stdout.fileno(), 65536)
    finally:
        p.stdin.write(_msg(id=3, method="shutdown") + _msg(method="exit"))
        p.stdin.close()
        p.wait(timeout=30)
    (pub,) = [r["params"] for r in _replies(out) if r.get("method") == "textDocument/publishDiagnostics"]
    (d,) = pub["diagnostics"]
    assert d["code"] == "limit-exceeded" and "took longer than" in d["message"] and d["severity"] == 2
