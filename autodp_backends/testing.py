"""The fake OpenAI-compatible server on 127.0.0.1, for tests: real HTTP, no network, no model.

>>> from autodp_backends.testing import FakeOpenAIServer, Reply
>>> def handler(req):
...     if req.index == 0:
...         return Reply.error(500)                 # the first request fails
...     return "echo: " + req.last_user             # the others answer
>>> with FakeOpenAIServer(handler) as srv:
...     backend = OpenAIBackend("fake-model", srv.base_url)   # doctest: +SKIP

It implements ``POST /v1/chat/completions`` (plain and ``stream=true``) and ``GET /v1/models``.
Each request is recorded in ``requests`` (a ``FakeRequest``: method, path, headers, JSON body,
arrival ``index``; ``chat_requests`` are the chat completions) and handed to the ``handler``,
which returns what to answer:

- a ``str``: a normal completion with that content;
- a ``Reply``, the one vocabulary of faults: ``Reply.text(content, delay=...)`` (a slow success),
  ``Reply.error(status, message, retry_after=..., delay=...)``, ``Reply.hang(seconds)`` (answers
  after a delay: a client with a shorter timeout sees a timeout), ``Reply.raw(body, status)`` (any
  body, e.g. malformed JSON);
- a ``dict``: the JSON body as is.

A handler that raises answers 500 with the exception text. With ``api_key`` set, a request without
``Authorization: Bearer <api_key>`` gets 401 before the handler sees it (and is not recorded).
``stop()`` (or leaving the ``with`` block) cuts every pending delay short, so hung requests never
keep a test waiting. The server binds an ephemeral port; ``base_url`` is
``http://127.0.0.1:PORT/v1``.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["FakeOpenAIServer", "FakeRequest", "Reply", "echo_handler"]


def _text(content: Any) -> str:
    if isinstance(content, list):  # content parts
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return str(content or "")


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
                return _text(m.get("content"))
        return ""

    @property
    def system(self) -> str:
        for m in self.messages:
            if m.get("role") == "system":
                return _text(m.get("content"))
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
    def error(cls, status: int = 500, message: str = "internal error", retry_after: float | None = None, delay: float = 0.0) -> Reply:
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        kind = "rate_limit_error" if status == 429 else ("server_error" if status >= 500 else "invalid_request_error")
        return cls(status=status, body={"error": {"message": message, "type": kind, "code": status}}, headers=headers, delay=delay)

    @classmethod
    def hang(cls, seconds: float, content: str = "too late") -> Reply:
        return cls(content=content, delay=seconds)

    @classmethod
    def raw(cls, body: Any, status: int = 200) -> Reply:
        return cls(status=status, body=body)


def echo_handler(req: FakeRequest) -> str:
    """The default handler: answer with the last user message."""
    return req.last_user


def _completion(model: str, content: str, index: int, messages: list[dict[str, Any]]) -> dict[str, Any]:
    prompt_tokens = sum(len(_text(m.get("content")).split()) for m in messages)
    return {
        "id": f"chatcmpl-fake-{index}",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": len(content.split()),
                  "total_tokens": prompt_tokens + len(content.split())},
    }


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class FakeOpenAIServer:
    """A threaded HTTP server speaking enough of the OpenAI API for the ``openai`` client."""

    def __init__(self, handler: Callable[[FakeRequest], str | Reply | dict] | None = None, *, model: str = "fake-model",
                 host: str = "127.0.0.1", api_key: str | None = None):
        self.handler = handler or echo_handler
        self.model = model
        self.host = host
        self.api_key = api_key
        self.requests: list[FakeRequest] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._chat_count = 0
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("the fake server is not running; use it as a context manager or call start()")
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def start(self) -> FakeOpenAIServer:
        server = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as real servers: no new connection per request

            def log_message(self, *args):  # keep test output clean
                pass

            def setup(self) -> None:
                super().setup()
                # headers and body go out in two writes: without this, Nagle + delayed ACK add ~40 ms
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def _authorised(self) -> bool:
                if server.api_key and self.headers.get("Authorization") != f"Bearer {server.api_key}":
                    self._send(401, {"error": {"message": "invalid api key", "type": "invalid_request_error", "code": 401}})
                    return False
                return True

            def do_GET(self):  # noqa: N802
                if not self._authorised():
                    return
                server._record("GET", self.path, self._headers(), None, chat=False)
                if self.path.rstrip("/") in ("/v1/models", "/models"):
                    self._send(200, {"object": "list", "data": [{"id": server.model, "object": "model", "created": 0, "owned_by": "fake"}]})
                else:
                    self._send(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})

            def do_POST(self):  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                if not self._authorised():
                    return
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode("utf-8", "replace")
                if self.path.rstrip("/") not in ("/v1/chat/completions", "/chat/completions"):
                    server._record("POST", self.path, self._headers(), body, chat=False)
                    self._send(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
                    return
                req = server._record("POST", self.path, self._headers(), body, chat=True)
                if not isinstance(body, dict):
                    self._send(400, {"error": {"message": "body is not a JSON object", "type": "invalid_request_error", "code": 400}})
                    return
                try:
                    reply = server.handler(req)
                except Exception as e:  # the handler's bug becomes a 500, visible to the test
                    reply = Reply.error(500, f"handler raised {type(e).__name__}: {e}")
                if isinstance(reply, str):
                    reply = Reply(content=reply)
                elif isinstance(reply, dict):
                    reply = Reply(body=reply)
                if reply.delay and server._stopping.wait(reply.delay):
                    self.close_connection = True
                    return  # shutting down: drop the connection
                if reply.body is None and reply.status == 200 and body.get("stream"):
                    self._stream(req, reply.content or "")
                    return
                body_out = reply.body if reply.body is not None else _completion(req.model or server.model, reply.content or "", req.index, req.messages)
                self._send(reply.status, body_out, reply.headers)

            def _stream(self, req: FakeRequest, text: str) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                cid = f"chatcmpl-{uuid.uuid4().hex[:12]}"
                model = req.model or server.model
                pieces = [text[i : i + 16] for i in range(0, len(text), 16)] or [""]
                chunks = [{"index": 0, "delta": ({"content": p} if k else {"role": "assistant", "content": p}), "finish_reason": None}
                          for k, p in enumerate(pieces)]
                chunks.append({"index": 0, "delta": {}, "finish_reason": "stop"})
                for choice in chunks:
                    chunk = {"id": cid, "object": "chat.completion.chunk", "created": int(time.time()), "model": model, "choices": [choice]}
                    self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()
                self.close_connection = True

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
                    self.close_connection = True

        self._stopping.clear()
        self._httpd = _Server((self.host, 0), _Handler)
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
