"""A webhook receiver for the notification tests: a real HTTP server on 127.0.0.1.

``mode``: ``ok`` (204), ``error`` (500 every time) or ``hang`` (reads the request and
never answers until :meth:`Webhook.close`).  Importable without pytest (the e2e tests
use it too)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Webhook:
    def __init__(self, mode: str = "ok", path: str = "/hooks/T0/B0/s3cretWebhookToken") -> None:
        self.mode = mode
        self.path = path
        self.posts: list[dict[str, Any]] = []
        self.raw: list[bytes] = []
        self.attempts = 0
        self.headers: list[dict[str, str]] = []
        self._release = threading.Event()
        self._lock = threading.Lock()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with hook._lock:
                    hook.attempts += 1
                    hook.raw.append(body)
                    hook.headers.append(dict(self.headers))
                if hook.mode == "hang":
                    hook._release.wait(30)
                    return
                if hook.mode == "error":
                    self.send_response(500)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                with hook._lock:
                    hook.posts.append({"path": self.path, "json": json.loads(body)})
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{self.path}"

    def events(self) -> list[str]:
        with self._lock:
            return [p["json"]["event"] for p in self.posts]

    def close(self) -> None:
        self._release.set()
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> Webhook:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
