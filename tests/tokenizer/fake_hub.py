"""A local stand-in for the Hugging Face Hub: the few endpoints huggingface_hub's snapshot_download uses.

Repositories are folders under `root` (root/org/name/...), served at one fixed commit. Every request is
logged as (method, path) so tests can see what was downloaded.
"""

from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse

COMMIT = "0123456789abcdef0123456789abcdef01234567"


class FakeHub:
    def __init__(self, root: Path):
        self.root, self.log = Path(root), []
        self.missing: set[str] = set()  # repo/file paths listed but answered 404, as a broken mirror would
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def downloads(self) -> list[str]:
        return [path for method, path in self.log if method == "GET" and "/resolve/" in path]

    def _files(self, repo: str) -> list[str]:
        base = self.root / repo
        return sorted(p.relative_to(base).as_posix() for p in base.rglob("*") if p.is_file())

    def _handler(self):
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                self._route(head=False)

            def do_HEAD(self):
                self._route(head=True)

            def _send(self, code, body=b"", headers=None, head=False):
                self.send_response(code)
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if not head:
                    self.wfile.write(body)

            def _route(self, head):
                path = unquote(urlparse(self.path).path)
                hub.log.append((self.command, path))
                parts = path.strip("/").split("/")
                if parts[:2] == ["api", "models"]:
                    return self._api("/".join(parts[2:4]), parts[4:5])
                if len(parts) >= 5 and parts[2] == "resolve":
                    return self._file("/".join(parts[:2]), "/".join(parts[4:]), head)
                return self._send(404)

            def _api(self, repo, kind):
                if not (hub.root / repo).is_dir():
                    return self._send(404, b'{"error": "Repository not found"}', {"X-Error-Code": "RepoNotFound"})
                files = hub._files(repo)
                if kind in ([], ["revision"]):  # model_info, with or without a revision
                    body = {"id": repo, "sha": COMMIT, "siblings": [{"rfilename": f} for f in files]}
                else:  # tree
                    body = [
                        {
                            "type": "file",
                            "path": f,
                            "size": (hub.root / repo / f).stat().st_size,
                            "oid": hashlib.sha1((hub.root / repo / f).read_bytes()).hexdigest(),
                        }
                        for f in files
                    ]
                return self._send(200, json.dumps(body).encode(), {"Content-Type": "application/json"})

            def _file(self, repo, name, head):
                file = hub.root / repo / name
                if not file.is_file() or f"{repo}/{name}" in hub.missing:
                    return self._send(404, b"", {"X-Error-Code": "EntryNotFound"})
                data = file.read_bytes()
                headers = {"X-Repo-Commit": COMMIT, "ETag": f'"{hashlib.sha1(data).hexdigest()}"'}
                return self._send(200, data, headers, head)

        return Handler
