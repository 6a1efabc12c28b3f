"""A fake Hugging Face Hub on 127.0.0.1 that the real ``huggingface_hub`` client talks to.

It serves what Haven's download path asks for: ``POST /api/models/{repo}/paths-info/{rev}``,
``HEAD`` and ``GET /{repo}/resolve/{rev}/{file}`` with Range support. Faults can be
injected: cut the connection after N bytes, lie about the sha256, refuse everything.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@dataclass
class HostedFile:
    data: bytes
    sha256: str = ""
    cut_after: list[int] = field(default_factory=list)  # per GET, bytes to send before cutting
    stall_after: int | None = None  # send this many bytes, then hang until released
    stalled: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        if not self.sha256:
            self.sha256 = hashlib.sha256(self.data).hexdigest()


class FakeHub:
    def __init__(self) -> None:
        self.files: dict[tuple[str, str], HostedFile] = {}
        self.requests: list[dict] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def add(self, repo: str, filename: str, data: bytes, **kwargs) -> HostedFile:
        hosted = HostedFile(data, **kwargs)
        self.files[(repo, filename)] = hosted
        return hosted

    def __enter__(self) -> FakeHub:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        for hosted in self.files.values():
            hosted.release.set()
        self.server.shutdown()
        self.server.server_close()

    def _handler(self):
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # keep test output clean
                pass

            def _record(self) -> None:
                hub.requests.append({"method": self.command, "path": self.path,
                                     "headers": dict(self.headers)})

            def _find(self):
                path = unquote(self.path.split("?")[0]).lstrip("/")
                if "/resolve/" not in path:
                    return None
                repo, rest = path.split("/resolve/", 1)
                _rev, _, filename = rest.partition("/")
                return hub.files.get((repo, filename))

            def _not_found(self) -> None:
                path = unquote(self.path.split("?")[0]).lstrip("/")
                repo = path.split("/resolve/")[0]
                code = "EntryNotFound" if any(r == repo for r, _ in hub.files) else "RepoNotFound"
                body = b'{"error":"Not Found"}'
                self.send_response(404)
                self.send_header("X-Error-Code", code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                self._record()
                length = int(self.headers.get("Content-Length", 0))
                form = parse_qs(self.rfile.read(length).decode())
                path = unquote(self.path.split("?")[0])
                if not path.startswith("/api/models/") or "/paths-info/" not in path:
                    return self._not_found()
                repo = path[len("/api/models/"):].split("/paths-info/")[0]
                if not any(r == repo for r, _ in hub.files):
                    return self._not_found()
                out = []
                for name in form.get("paths", []):
                    hosted = hub.files.get((repo, name))
                    if hosted:
                        out.append({"type": "file", "path": name, "size": len(hosted.data),
                                    "oid": hashlib.sha1(hosted.data).hexdigest(),
                                    "lfs": {"oid": hosted.sha256, "size": len(hosted.data),
                                            "pointerSize": 134}})
                body = json.dumps(out).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _headers(self, hosted: HostedFile, status: int, start: int, length: int) -> None:
                self.send_response(status)
                self.send_header("X-Repo-Commit", COMMIT)
                self.send_header("X-Linked-Etag", f'"{hosted.sha256}"')
                self.send_header("X-Linked-Size", str(len(hosted.data)))
                self.send_header("ETag", f'"{hosted.sha256}"')
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(length))
                if status == 206:
                    end = start + length - 1
                    self.send_header("Content-Range", f"bytes {start}-{end}/{len(hosted.data)}")
                self.end_headers()

            def do_HEAD(self) -> None:
                self._record()
                hosted = self._find()
                if hosted is None:
                    return self._not_found()
                self._headers(hosted, 200, 0, len(hosted.data))

            def do_GET(self) -> None:
                self._record()
                hosted = self._find()
                if hosted is None:
                    return self._not_found()
                start = 0
                if rng := self.headers.get("Range"):
                    start = int(rng.split("=")[1].split("-")[0])
                payload = hosted.data[start:]
                self._headers(hosted, 206 if start else 200, start, len(payload))
                if hosted.stall_after is not None and not start:
                    self.wfile.write(payload[: hosted.stall_after])
                    self.wfile.flush()
                    hosted.stalled.set()
                    hosted.release.wait(30)
                    self.close_connection = True
                    return
                cut = hosted.cut_after.pop(0) if hosted.cut_after else None
                if cut is not None:
                    self.wfile.write(payload[:cut])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                self.wfile.write(payload)

        return Handler
