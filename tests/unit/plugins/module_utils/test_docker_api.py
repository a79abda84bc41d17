"""The standard-library Docker API client against a small Engine-API-speaking server on a unix socket."""

import json
import os
import socketserver
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler

import pytest

from ansible_collections.engine_ops.lifecycle.plugins.module_utils._docker.api import (
    ApiError, DockerApi, DockerTimeout, demux, split_reference, tls_settings)
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._docker.client import EngineDocker
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._errors import EngineDockerError


def frame(stream, text):
    data = text.encode()
    return struct.pack(">BxxxL", stream, len(data)) + data


class Handler(BaseHTTPRequestHandler):
    calls = []

    def address_string(self):
        return "unix"

    def log_message(self, *args):
        pass

    def reply(self, status, body=None, ctype="application/json", headers=None):
        data = body if isinstance(body, bytes) else json.dumps(body).encode() if body is not None else b""
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self.calls.append(("GET", self.path))
        if self.path == "/version":
            return self.reply(200, {"Version": "x.y", "ApiVersion": self.server.api_version,
                                    "MinAPIVersion": self.server.min_version})
        if self.path.startswith("/v%s/containers/engine/json" % self.server.client_version):
            return self.reply(200, {"Id": "abc", "Name": "/engine", "State": {"Running": True}})
        if "/containers/json" in self.path:
            return self.reply(200, [{"Id": "abc"}])
        if "/containers/tty/json" in self.path:
            return self.reply(200, {"Id": "tty", "Config": {"Tty": True}})
        if "/containers/tty/logs" in self.path:  # a TTY's raw output, which happens to start like a frame header
            return self.reply(200, b"\x01\x00\x00\x00 raw", "application/vnd.docker.raw-stream")
        if "/logs" in self.path:
            return self.reply(200, frame(1, '{"message": "one"}\n') + frame(2, "not json\n") + frame(1, '{"message": "two"}\n'),
                              "application/vnd.docker.raw-stream")
        return self.reply(404, {"message": "No such container: x"})

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        self.calls.append(("POST", self.path, body))
        if "/wait" in self.path:
            time.sleep(1.0)
            return self.reply(200, {"StatusCode": 0})
        if self.path.startswith("/v%s/containers/create" % self.server.client_version):
            return self.reply(201, {"Id": "new"})
        if "/images/create" in self.path:
            return self.reply(200, b'{"status": "Pulling"}\n{"error": "manifest unknown"}\n', "application/json")
        if "/start" in self.path:
            return self.reply(304)
        return self.reply(500, {"message": "boom"})


class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


@pytest.fixture
def daemon(tmp_path):
    path = str(tmp_path / "docker.sock")
    server = Server(path, Handler)
    server.api_version, server.min_version, server.client_version = "1.45", "1.24", "1.45"
    Handler.calls = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server, "unix://" + path
    server.shutdown()
    server.server_close()


def test_calls_over_the_unix_socket(daemon):
    server, host = daemon
    docker = EngineDocker.connect(host, timeout=5)
    assert docker.api.version == "1.45"  # the newest version both speak
    assert docker.inspect_container("engine")["Id"] == "abc"
    assert docker.inspect_container("missing") is None and docker.inspect_image("nope:1") is None
    assert [r["message"] for r in docker.log_records("engine")] == ["one", "two"]  # frames removed, non-JSON skipped
    assert docker.create({"Image": "engine:2.3.1"}, "engine-next") == "new"
    assert Handler.calls[-1] == ("POST", "/v1.45/containers/create?name=engine-next", {"Image": "engine:2.3.1"})
    docker.start("new")  # 304: already started is fine
    with pytest.raises(EngineDockerError, match="rename x to y: .*HTTP 500: boom"):
        docker.rename("x", "y")
    with pytest.raises(EngineDockerError, match="manifest unknown"):
        docker.pull("registry.example.com:5000/engine:2.3.1")
    pull = [c for c in Handler.calls if "/images/create" in c[1]][0]
    assert "fromImage=registry.example.com%3A5000%2Fengine" in pull[1] and "tag=2.3.1" in pull[1]


def test_an_older_daemon_is_spoken_to_in_its_version(daemon):
    server, host = daemon
    server.api_version = "1.40"
    api = DockerApi(host, 5)
    api.negotiate()
    assert api.version == "1.40"


@pytest.mark.parametrize("newest, oldest, environ, chosen", [
    ("1.52", "1.44", {}, "1.52"),  # Docker 29
    ("1.41", "1.12", {}, "1.41"),  # Docker 20.10
    ("1.60", "1.44", {}, "1.52"),  # a daemon newer than the collection: the newest the collection knows
    ("1.52", "1.44", {"DOCKER_API_VERSION": "1.45"}, "1.45"),  # pinned, as the CLI honours it
])
def test_the_version_is_negotiated_as_the_docker_cli_does(daemon, newest, oldest, environ, chosen):
    server, host = daemon
    server.api_version, server.min_version = newest, oldest
    api = DockerApi(host, 5)
    assert api.negotiate(environ) == chosen and api.version == chosen


@pytest.mark.parametrize("newest, oldest, environ, message", [
    ("1.52", "1.44", {"DOCKER_API_VERSION": "1.41"}, "DOCKER_API_VERSION=1.41, but the Docker daemon at unix://"),
    ("1.52", "1.44", {"DOCKER_API_VERSION": "latest"}, "DOCKER_API_VERSION='latest' is not a Docker API version"),
    ("1.70", "1.60", {}, "speaks API 1.60 to 1.70 and this collection 1.40 to 1.52: no version in common"),
    ("1.30", "1.12", {}, "speaks API 1.12 to 1.30 and this collection 1.40 to 1.52: no version in common"),
])
def test_no_version_in_common_is_named_before_any_other_call(daemon, newest, oldest, environ, message):
    server, host = daemon
    server.api_version, server.min_version = newest, oldest
    with pytest.raises(ApiError, match=message.replace("(", "\\(").replace(".", "\\.")):
        DockerApi(host, 5).negotiate(environ)
    assert [c[1] for c in Handler.calls] == ["/version"]


def test_log_framing_follows_the_containers_tty_setting(daemon):
    server, host = daemon
    api = DockerApi(host, 5)
    api.negotiate({})
    assert api.logs("tty") == b"\x01\x00\x00\x00 raw"  # a TTY's output is never taken for frames
    assert api.logs("engine", tty=False) == b'{"message": "one"}\nnot json\n{"message": "two"}\n'


def test_the_docker_cli_tls_environment_means_what_it_means_to_the_cli():
    home = os.path.join(os.path.expanduser("~"), ".docker")
    assert tls_settings({}) == (False, False, home)
    assert tls_settings({"DOCKER_TLS_VERIFY": "0", "DOCKER_CERT_PATH": "/certs"}) == (True, True, "/certs")
    assert tls_settings({"DOCKER_TLS_VERIFY": "", "DOCKER_CERT_PATH": "/certs"}) == (False, False, "/certs")
    assert tls_settings({"DOCKER_TLS": "1"}) == (True, False, home)


def test_verifying_a_daemon_without_its_ca_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKER_TLS_VERIFY", "1")
    monkeypatch.setenv("DOCKER_CERT_PATH", str(tmp_path))
    with pytest.raises(ApiError, match="DOCKER_TLS_VERIFY is set but .*ca.pem does not exist"):
        DockerApi("tcp://127.0.0.1:2376")


def test_a_wait_that_outlasts_its_timeout_says_so(daemon):
    server, host = daemon
    docker = EngineDocker.connect(host, timeout=5)
    assert docker.wait("engine", timeout=0.2) is None
    assert docker.wait("engine", timeout=5) == 0
    with pytest.raises(DockerTimeout):
        DockerApi(host, 5).wait("engine", 0.2)


def test_an_unreachable_or_unsupported_daemon_is_named(tmp_path):
    with pytest.raises(EngineDockerError, match="cannot reach the Docker daemon at unix://%s" % tmp_path):
        EngineDocker.connect("unix://%s/none.sock" % tmp_path, timeout=1)
    with pytest.raises(ApiError, match="only unix:// and tcp://"):
        DockerApi("ssh://user@host")


def test_demux_and_references():
    assert demux(frame(1, "a") + frame(2, "b")) == b"ab"
    assert split_reference("engine:2.3.1") == ("engine", "2.3.1")
    assert split_reference("registry:5000/engine") == ("registry:5000/engine", "latest")
    assert split_reference("engine@sha256:" + "0" * 64) == ("engine", "sha256:" + "0" * 64)


def test_tcp_hosts_use_tls_when_the_environment_says_so(monkeypatch, tmp_path):
    monkeypatch.setenv("DOCKER_TLS_VERIFY", "")
    monkeypatch.delenv("DOCKER_CERT_PATH", raising=False)
    plain = DockerApi("tcp://127.0.0.1:2375")._connect(1)
    assert type(plain).__name__ == "HTTPConnection" and plain.port == 2375
    monkeypatch.setenv("DOCKER_CERT_PATH", str(tmp_path))  # where the certificates are; not, by itself, TLS
    assert type(DockerApi("tcp://127.0.0.1")._connect(1)).__name__ == "HTTPConnection"
    monkeypatch.setenv("DOCKER_TLS", "1")
    secure = DockerApi("tcp://127.0.0.1")._connect(1)
    assert type(secure).__name__ == "HTTPSConnection" and secure.port == 2376
    assert os.environ["DOCKER_CERT_PATH"] == str(tmp_path)
