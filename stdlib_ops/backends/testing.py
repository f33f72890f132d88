"""A fake OpenAI-compatible server on 127.0.0.1, for tests: real HTTP, no network, no model.

>>> from stdlib_ops.backends.testing import FakeOpenAIServer, Reply
>>> def handler(req):
...     if req.index == 0:
...         return Reply.error(500)                 # the first request fails
...     return "echo: " + req.last_user             # the others answer
>>> with FakeOpenAIServer(handler) as srv:
...     backend = OpenAIBackend("fake-model", srv.base_url)   # doctest: +SKIP

It implements ``POST /v1/chat/completions`` and ``GET /v1/models``. Each request is recorded in
``requests`` (a ``FakeRequest``: path, headers, JSON body, arrival ``index``) and handed to the
``handler``, which returns what to answer:

- a ``str``: a normal completion with that content;
- a ``Reply``: full control: ``Reply.text(content, delay=...)``, ``Reply.error(status, message,
  retry_after=...)``, ``Reply.hang(seconds)`` (answers after a delay: a client with a shorter
  timeout sees a timeout), ``Reply.raw(body, status)`` (any body, e.g. malformed JSON);
- a ``dict``: the JSON body as is.

A handler that raises answers 500 with the exception text. ``stop()`` (or leaving the ``with``
block) cuts every pending delay short, so hung requests never keep a test waiting. The server
binds an ephemeral port; ``base_url`` is ``http://127.0.0.1:PORT/v1``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["FakeOpenAIServer", "FakeRequest", "Reply", "echo_handler"]


@dataclass
class FakeRequest:
    """One request the server received."""

    method: str
    path: str
    headers: dict[str, str]  # names in lower case
    body: Any
    index: int  # arrival order among chat-completion requests (0-based); -1 for other paths

    @property
    def model(self) -> str | None:
        return self.body.get("model") if isinstance(self.body, dict) else None

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self.body.get("messages", [])) if isinstance(self.body, dict) else []

    @property
    def last_user(self) -> str:
        for m in reversed(self.messages):
            if m.get("role") == "user":
                return str(m.get("content", ""))
        return ""

    @property
    def system(self) -> str:
        for m in self.messages:
            if m.get("role") == "system":
                return str(m.get("content", ""))
        return ""

    @property
    def response_format(self) -> dict[str, Any] | None:
        return self.body.get("response_format") if isinstance(self.body, dict) else None


@dataclass
class Reply:
    """What the server answers to one request."""

    content: str | None = None
    status: int = 200
    delay: float = 0.0
    body: Any = None  # dict (sent as JSON) or str (sent as is); overrides content
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def text(cls, content: str, delay: float = 0.0) -> Reply:
        return cls(content=content, delay=delay)

    @classmethod
    def error(cls, status: int = 500, message: str = "internal error", retry_after: float | None = None) -> Reply:
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        kind = "rate_limit_error" if status == 429 else ("server_error" if status >= 500 else "invalid_request_error")
        return cls(status=status, body={"error": {"message": message, "type": kind, "code": status}}, headers=headers)

    @classmethod
    def hang(cls, seconds: float, content: str = "too late") -> Reply:
        return cls(content=content, delay=seconds)

    @classmethod
    def raw(cls, body: Any, status: int = 200) -> Reply:
        return cls(status=status, body=body)


def echo_handler(req: FakeRequest) -> str:
    """The default handler: answer with the last user message."""
    return req.last_user


def _completion(model: str, content: str, index: int) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-fake-{index}",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
    }


class FakeOpenAIServer:
    """A threaded HTTP server speaking enough of the OpenAI API for the ``openai`` client."""

    def __init__(self, handler: Callable[[FakeRequest], str | Reply | dict] | None = None, *, model: str = "fake-model", host: str = "127.0.0.1"):
        self.handler = handler or echo_handler
        self.model = model
        self.host = host
        self.requests: list[FakeRequest] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._chat_count = 0
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("the fake server is not running")
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def start(self) -> FakeOpenAIServer:
        server = self

        class _Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_GET(self):
                server._record("GET", self.path, self._headers(), None, chat=False)
                if self.path.rstrip("/") in ("/v1/models", "/models"):
                    self._send(200, {"object": "list", "data": [{"id": server.model, "object": "model", "owned_by": "fake"}]})
                else:
                    self._send(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode("utf-8", "replace")
                if self.path.rstrip("/") not in ("/v1/chat/completions", "/chat/completions"):
                    server._record("POST", self.path, self._headers(), body, chat=False)
                    self._send(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
                    return
                req = server._record("POST", self.path, self._headers(), body, chat=True)
                try:
                    reply = server.handler(req)
                except Exception as e:  # the handler's bug becomes a 500, visible to the test
                    reply = Reply.error(500, f"handler raised {type(e).__name__}: {e}")
                if isinstance(reply, str):
                    reply = Reply(content=reply)
                elif isinstance(reply, dict):
                    reply = Reply(body=reply)
                if reply.delay and server._stopping.wait(reply.delay):
                    return  # shutting down: drop the connection
                body_out = reply.body if reply.body is not None else _completion(req.model or server.model, reply.content or "", req.index)
                self._send(reply.status, body_out, reply.headers)

            def _headers(self) -> dict[str, str]:
                return {k.lower(): v for k, v in self.headers.items()}

            def _send(self, status: int, body: Any, headers: dict[str, str] | None = None):
                data = body.encode("utf-8") if isinstance(body, str) else json.dumps(body).encode("utf-8")
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for k, v in (headers or {}).items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
                    pass

        self._stopping.clear()
        self._httpd = ThreadingHTTPServer((self.host, 0), _Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-openai", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ---- records

    def _record(self, method: str, path: str, headers: dict[str, str], body: Any, *, chat: bool) -> FakeRequest:
        with self._lock:
            index = self._chat_count if chat else -1
            if chat:
                self._chat_count += 1
            req = FakeRequest(method, path, headers, body, index)
            self.requests.append(req)
            return req

    @property
    def chat_requests(self) -> list[FakeRequest]:
        with self._lock:
            return [r for r in self.requests if r.index >= 0]
