"""Test helpers: a fake OpenAI-compatible server, and small synthetic instruction data.

:class:`FakeOpenAIServer` is a stdlib ``http.server`` on 127.0.0.1 (ephemeral port) in a thread,
speaking enough of the OpenAI API for the ``openai`` client: ``POST /v1/chat/completions``
(plain and ``stream=true``) and ``GET /v1/models``. A handler decides every reply::

    def handler(request: dict) -> str | FakeFailure:
        ...  # request is the parsed JSON body; return the assistant's text, or a failure

    with FakeOpenAIServer(handler) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="x")
        ...
        server.requests          # every JSON body received, in arrival order

A handler that raises gives HTTP 500 with the exception text; ``FakeFailure(status=429)`` gives
that status; ``FakeFailure(delay_s=2)`` sleeps first (to provoke client timeouts) and, with
``status=None``, then answers normally with ``text``.

:func:`make_qa_rows` and :func:`corrupt_rows` build a small learnable data set and a deliberately
degraded copy (heading-only answers, answers duplicated from other questions).
"""

from __future__ import annotations

import json
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = [
    "FakeFailure",
    "FakeOpenAIServer",
    "corrupt_rows",
    "judge_prompt_parts",
    "make_qa_rows",
    "user_text",
]


@dataclass
class FakeFailure:
    """What the fake server does instead of answering: an HTTP status, after an optional delay."""

    status: int | None = 500
    message: str = "simulated failure"
    delay_s: float = 0.0
    text: str = ""  # the reply when status is None (a slow success)


Handler = Callable[[dict[str, Any]], "str | FakeFailure"]


def user_text(request: dict[str, Any]) -> str:
    """The text of the last user message of a chat-completions request."""
    for m in reversed(request.get("messages", [])):
        if m.get("role") == "user":
            c = m.get("content")
            if isinstance(c, list):  # content parts
                return "".join(p.get("text", "") for p in c if isinstance(p, dict))
            return str(c or "")
    return ""


def judge_prompt_parts(request: dict[str, Any]) -> dict[str, str | None]:
    """Question, reference and the two answers of a request sent by ``PairwiseLLMJudge``."""
    text = user_text(request)

    def between(start: str, ends: tuple[str, ...]) -> str | None:
        i = text.find(start)
        if i < 0:
            return None
        i += len(start)
        j = min((k for k in (text.find(e, i) for e in ends) if k >= 0), default=len(text))
        return text[i:j].strip()

    return {
        "question": between("[Question]\n", ("\n[Reference answer", "\n[Answer 1]")),
        "reference": between("[Reference answer (a correct answer, for guidance)]\n", ("\n[Answer 1]",)),
        "answer_1": between("[Answer 1]\n", ("\n[Answer 2]",)),
        "answer_2": between("[Answer 2]\n", ("\nWhich answer is better?",)),
    }


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class FakeOpenAIServer:
    """A scripted OpenAI-compatible server on 127.0.0.1 (see the module docstring).

    ``handler``: ``(request_json) -> str | FakeFailure`` (default: always ``'{"winner": "tie"}'``).
    ``api_key``: when set, requests without ``Authorization: Bearer <api_key>`` get HTTP 401.
    Attributes: ``base_url`` (ends in ``/v1``), ``requests`` (bodies received), ``headers`` (of each
    recorded request, names lower-cased).
    """

    def __init__(
        self, handler: Handler | None = None, *, model: str = "fake-judge", api_key: str | None = None
    ):
        self.handler: Handler = handler or (lambda _req: '{"rationale": "same", "winner": "tie"}')
        self.model = model
        self.api_key = api_key
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the fake server is not running; use it as a context manager")
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> FakeOpenAIServer:
        owner = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def setup(self) -> None:
                super().setup()
                # headers and body go out in two writes: without this, Nagle + delayed ACK add ~40 ms
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def _send(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _error(self, status: int, message: str) -> None:
                self._send(status, {"error": {"message": message, "type": "fake_error", "code": status}})

            def _authorised(self) -> bool:
                if owner.api_key and self.headers.get("Authorization") != f"Bearer {owner.api_key}":
                    self._error(401, "invalid api key")
                    return False
                return True

            def do_GET(self) -> None:  # noqa: N802
                if not self._authorised():
                    return
                if self.path.rstrip("/").endswith("/models"):
                    self._send(
                        200,
                        {
                            "object": "list",
                            "data": [
                                {"id": owner.model, "object": "model", "created": 0, "owned_by": "fake"}
                            ],
                        },
                    )
                else:
                    self._error(404, f"no route {self.path}")

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                if not self._authorised():
                    return
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    self._error(404, f"no route {self.path}")
                    return
                try:
                    req = json.loads(raw or b"{}")
                except ValueError:
                    self._error(400, "body is not JSON")
                    return
                with owner._lock:
                    owner.requests.append(req)
                    owner.headers.append({k.lower(): v for k, v in self.headers.items()})
                try:
                    reply = owner.handler(req)
                except Exception as e:
                    self._error(500, f"{type(e).__name__}: {e}")
                    return
                if isinstance(reply, FakeFailure):
                    if reply.delay_s:
                        time.sleep(reply.delay_s)
                    if reply.status is not None:
                        self._error(reply.status, reply.message)
                        return
                    reply = reply.text
                if req.get("stream"):
                    self._stream(req, str(reply))
                else:
                    self._send(200, owner._completion(req, str(reply)))

            def _stream(self, req: dict[str, Any], text: str) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                cid = f"chatcmpl-{uuid.uuid4().hex[:12]}"
                pieces = [text[i : i + 16] for i in range(0, len(text), 16)] or [""]
                for k, piece in enumerate(pieces):
                    delta = {"content": piece} if k else {"role": "assistant", "content": piece}
                    chunk = {
                        "id": cid,
                        "object": "chat.completion.chunk",
                        "created": int(time.time()),
                        "model": req.get("model", owner.model),
                        "choices": [{"index": 0, "delta": delta, "finish_reason": None}],
                    }
                    self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                end = {
                    "id": cid,
                    "object": "chat.completion.chunk",
                    "created": int(time.time()),
                    "model": req.get("model", owner.model),
                    "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                }
                self.wfile.write(f"data: {json.dumps(end)}\n\ndata: [DONE]\n\n".encode())
                self.wfile.flush()
                self.close_connection = True

        self._server = _Server(("127.0.0.1", 0), H)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-openai", daemon=True
        )
        self._thread.start()
        return self

    def _completion(self, req: dict[str, Any], text: str) -> dict[str, Any]:
        prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in req.get("messages", []))
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": req.get("model", self.model),
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": len(text.split()),
                "total_tokens": prompt_tokens + len(text.split()),
            },
        }

    def __exit__(self, *exc: Any) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None


# --------------------------------------------------------------------------- synthetic data

_SYLLABLES = "ka lo mi ner tus vae dor hel qui ban sor len tra pex lim gor".split()
_CAUSES = [
    "a faulty gene",
    "a viral infection",
    "a bacterial infection",
    "high blood pressure",
    "an autoimmune reaction",
    "long exposure to dust",
    "a lack of vitamin D",
    "a blocked blood vessel",
]
_SYMPTOMS = [
    "fever and tiredness",
    "joint pain",
    "shortness of breath",
    "skin rashes",
    "headaches and dizziness",
    "blurred vision",
    "muscle weakness",
    "stomach pain",
]
_TREATMENTS = [
    "rest and fluids",
    "antibiotics",
    "physical therapy",
    "surgery",
    "a low-salt diet",
    "antiviral drugs",
    "regular exercise",
    "steroid creams",
]
_ORGANS = [
    "the heart",
    "the lungs",
    "the liver",
    "the skin",
    "the brain",
    "the kidneys",
    "the eyes",
    "the bones",
]


def make_qa_rows(n: int = 300, seed: int = 0) -> list[dict[str, Any]]:
    """``n`` learnable question/answer rows about made-up conditions, with a ``category`` column.

    Each condition has a cause, symptoms, a treatment and an organ; five question types ask about
    them and every answer restates the facts in a fixed style, so a tiny model learns the pattern.
    """
    rng = random.Random(seed)
    kinds = ["information", "causes", "symptoms", "treatment", "organ"]
    n_topics = max(1, -(-n // len(kinds)))
    names: list[str] = []
    while len(names) < n_topics:
        name = "".join(rng.sample(_SYLLABLES, 3)).capitalize() + " syndrome"
        if name not in names:
            names.append(name)
    rows = []
    for t, name in enumerate(names):
        cause, symptom, treat, organ = (rng.choice(x) for x in (_CAUSES, _SYMPTOMS, _TREATMENTS, _ORGANS))
        qa = {
            "information": (
                f"What is {name} ?",
                f"{name} is a rare condition that affects {organ}. It is caused by {cause} "
                f"and usually leads to {symptom}.",
            ),
            "causes": (
                f"What causes {name} ?",
                f"{name} is caused by {cause}. Doctors believe that {cause} damages {organ} over time.",
            ),
            "symptoms": (
                f"What are the symptoms of {name} ?",
                f"The main symptoms of {name} are {symptom}. They appear when {organ} is affected.",
            ),
            "treatment": (
                f"How is {name} treated ?",
                f"{name} is treated with {treat}. Most people with {symptom} feel better after treatment.",
            ),
            "organ": (
                f"Which organ does {name} affect ?",
                f"{name} mainly affects {organ}. The damage to {organ} is caused by {cause}.",
            ),
        }
        for k in kinds:
            q, a = qa[k]
            rows.append({"id": f"qa-{t}-{k}", "instruction": q, "input": "", "output": a, "category": k})
    rng.shuffle(rows)
    return rows[:n]


def corrupt_rows(
    rows: list[dict[str, Any]],
    fraction: float = 0.3,
    seed: int = 1,
    kinds: tuple[str, ...] = ("heading", "duplicate"),
) -> tuple[list[dict[str, Any]], list[int]]:
    """A copy of ``rows`` where ``fraction`` of the outputs are junk, and the indices changed.

    ``"heading"``: the output becomes the question restated as a heading (a broken scrape);
    ``"duplicate"``: the output is copied from another row (a wrong, duplicated answer). Kinds
    alternate over the chosen rows.
    """
    rng = random.Random(seed)
    out = [dict(r) for r in rows]
    chosen = sorted(rng.sample(range(len(rows)), round(fraction * len(rows))))
    for k, i in enumerate(chosen):
        kind = kinds[k % len(kinds)]
        if kind == "heading":
            out[i]["output"] = rows[i]["instruction"].replace(" ?", "?").strip()
        elif kind == "duplicate":
            j = rng.randrange(len(rows) - 1)
            j = j + 1 if j >= i else j
            out[i]["output"] = rows[j]["output"]
        else:
            raise ValueError(f"unknown corruption kind {kind!r}; use 'heading' or 'duplicate'")
    return out, chosen
