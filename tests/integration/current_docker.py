"""A stand-in for a current Docker daemon (29.x) in front of the 20.10 one this machine runs.

Users run Docker 25-29; only Debian's 20.10 (API 1.41) runs here. This proxy listens on its own unix
socket and behaves as Docker 29 does towards a client:

- `/version` and `/_ping` say API 1.52, minimum 1.44, version 29.0.0;
- a request for an API version below 1.44 gets Docker's own answer, HTTP 400
  `client version 1.41 is too old. Minimum supported API version is 1.44, please upgrade your client to
  a newer version`, and never reaches the daemon; above 1.52, `client version ... is too new`;
- a request without a version is served as 1.52;
- what API 1.44 removed from answers is removed (image inspect: `Container`, `ContainerConfig`,
  `VirtualSize`), so code that still reads it breaks here as it would there;
- everything else is forwarded to the real daemon as API 1.41 and its answer streamed back as it comes
  (a container wait, logs, a pull).

It records every request line it received (`requests`), so a test can prove the traffic went through it.
"""

import http.client
import json
import os
import re
import socket
import socketserver
import threading

MIN_API, MAX_API, DAEMON_API, VERSION = "1.44", "1.52", "1.41", "29.0.0"
REMOVED_FROM_IMAGE = ("Container", "ContainerConfig", "VirtualSize")
_VERSIONED = re.compile(r"^/v(?P<version>[0-9]+\.[0-9]+)(?P<rest>/.*)$")


def _as_tuple(version):
    return tuple(int(p) for p in version.split("."))


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path):
        http.client.HTTPConnection.__init__(self, "localhost", timeout=900)
        self.socket_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.socket_path)


class _Handler(socketserver.StreamRequestHandler):
    def handle(self):
        while True:
            request_line = self.rfile.readline().decode("latin-1")
            if not request_line.strip():
                return
            method, target, dummy = request_line.split(" ", 2)
            headers = {}
            while True:
                line = self.rfile.readline().decode("latin-1")
                if line in ("\r\n", "\n", ""):
                    break
                key, value = line.split(":", 1)
                headers[key.strip().lower()] = value.strip()
            body = self.rfile.read(int(headers.get("content-length") or 0))
            self.server.requests.append("%s %s" % (method, target))
            keep_alive = self._serve(method, target, headers, body)
            if not keep_alive or headers.get("connection", "").lower() == "close":
                return

    def _reply(self, status, document, extra=None):
        data = json.dumps(document).encode()
        head = ["HTTP/1.1 %d %s" % (status, http.client.responses.get(status, "")),
                "Content-Type: application/json", "Content-Length: %d" % len(data), "Api-Version: %s" % MAX_API,
                "Server: Docker/%s (linux)" % VERSION]
        head += ["%s: %s" % kv for kv in (extra or {}).items()]
        self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + data)
        self.wfile.flush()
        return True

    def _serve(self, method, target, headers, body):
        path, query = (target.split("?", 1) + [""])[:2]
        match = _VERSIONED.match(path)
        version, rest = (match.group("version"), match.group("rest")) if match else (MAX_API, path)
        if _as_tuple(version) < _as_tuple(MIN_API):
            return self._reply(400, {"message": "client version %s is too old. Minimum supported API version is %s, "
                                                "please upgrade your client to a newer version" % (version, MIN_API)})
        if _as_tuple(version) > _as_tuple(MAX_API):
            return self._reply(400, {"message": "client version %s is too new. Maximum supported API version is %s"
                                                % (version, MAX_API)})
        if rest == "/_ping":
            data = b"OK"
            self.wfile.write(("HTTP/1.1 200 OK\r\nApi-Version: %s\r\nContent-Type: text/plain\r\n"
                              "Content-Length: 2\r\n\r\n" % MAX_API).encode("latin-1") + data)
            self.wfile.flush()
            return True
        forwarded = "/v%s%s%s" % (DAEMON_API, rest, "?" + query if query else "")
        if rest == "/version" or (rest.startswith("/images/") and rest.endswith("/json") and method == "GET"):
            status, document = self._fetch_json(method, forwarded, headers, body)
            if status == 200 and rest == "/version":
                document.update(ApiVersion=MAX_API, MinAPIVersion=MIN_API, Version=VERSION)
            elif status == 200:
                for key in REMOVED_FROM_IMAGE:
                    document.pop(key, None)
            return self._reply(status, document)
        self._pipe(method, forwarded, headers, body)
        return False  # the daemon's answer ran until it closed: this connection ends with it

    def _fetch_json(self, method, target, headers, body):
        conn = _UnixHTTPConnection(self.server.daemon_socket)
        try:
            conn.request(method, target, body=body or None, headers=self._forward_headers(headers))
            response = conn.getresponse()
            data = response.read()
        finally:
            conn.close()
        try:
            return response.status, json.loads(data.decode("utf-8"))
        except ValueError:
            return response.status, {"message": data.decode("utf-8", "replace")}

    @staticmethod
    def _forward_headers(headers):
        kept = dict((k, v) for k, v in headers.items() if k not in ("host", "connection", "content-length"))
        kept["Connection"] = "close"
        return kept

    def _pipe(self, method, target, headers, body):
        """Forward the request and copy the daemon's raw answer back byte for byte, as it streams."""
        upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        upstream.connect(self.server.daemon_socket)
        try:
            lines = ["%s %s HTTP/1.1" % (method, target), "Host: docker"]
            lines += ["%s: %s" % kv for kv in self._forward_headers(headers).items()]
            lines += ["Content-Length: %d" % len(body)] if body or method in ("POST", "PUT") else []
            upstream.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
            while True:
                chunk = upstream.recv(65536)
                if not chunk:
                    break
                self.wfile.write(chunk)
                self.wfile.flush()
        finally:
            upstream.close()


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


class CurrentDocker:
    """`with CurrentDocker(path) as proxy:` serves on unix://`path`; `proxy.url` is what DOCKER_HOST takes."""

    def __init__(self, path, daemon_socket="/var/run/docker.sock"):
        self.path = path
        self.server = _Server(path, _Handler)
        self.server.daemon_socket = daemon_socket
        self.server.requests = []
        self.url = "unix://" + path

    @property
    def requests(self):
        return list(self.server.requests)

    def __enter__(self):
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        if os.path.exists(self.path):
            os.unlink(self.path)
