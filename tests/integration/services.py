"""Fixtures and helpers for tests against real services: the Docker engine, PostgreSQL and reference Engines.

Shared by tests/integration and tests/reliability (each conftest.py re-exports it).

Every Engine runs with host networking on its own free 127.0.0.1 port; every resource a test
creates carries a random prefix and is removed by a finalizer, whatever the outcome.
"""

import hashlib
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import tempfile
import threading
import time
import uuid
from contextlib import contextmanager
from urllib.parse import quote
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import docker
import psycopg
import pytest
import requests
from psycopg import sql

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ENGINE_REPOSITORY = "engine"
# Every test Engine runs the production way: only the key's SHA-256 (ENGINE_KEY_HASH) is in its environment,
# and callers send the key in X-Engine-Key (playbooks get it as engine_api_key).
ENGINE_API_KEY = "eo-test-key-" + uuid.uuid4().hex
ENGINE_KEY_HASH = hashlib.sha256(ENGINE_API_KEY.encode()).hexdigest()
AUTH = {"X-Engine-Key": ENGINE_API_KEY}
BOTH_BACKENDS = pytest.mark.parametrize("backend", ["sqlite", "postgres"])


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate, timeout, what, interval=0.1):
    """Poll until predicate() is truthy; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
        except (requests.RequestException, OSError) as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(interval)
    raise AssertionError("timed out after %ss waiting for %s (last: %r)" % (timeout, what, last))


@pytest.fixture(scope="session")
def docker_client():
    client = docker.from_env(timeout=120)
    client.ping()  # no daemon is a broken setup, not a reason to skip
    return client


@pytest.fixture(scope="session")
def pg_params():
    password = os.environ.get("ENGINE_OPS_PG_PASSWORD")
    if not password:
        pytest.fail("ENGINE_OPS_PG_PASSWORD is not set: run scripts/bootstrap.sh and source .work/env.sh")
    return {"host": os.environ.get("ENGINE_OPS_PG_HOST", "127.0.0.1"),
            "port": int(os.environ.get("ENGINE_OPS_PG_PORT", "5432")),
            "user": os.environ.get("ENGINE_OPS_PG_USER", "engine_ops"), "password": password}


def admin_params(pg_params):
    """The DBA stand-in that creates and drops the test databases; the collection never runs as it (except the
    test of pg_restore_strategy=database). pg_params is the Engine's own role: owner of its database, no more."""
    return dict(pg_params, user=os.environ.get("ENGINE_OPS_PG_ADMIN_USER", "engine_ops_admin"))


@pytest.fixture
def prefix():
    return "eo-" + uuid.uuid4().hex[:8]


@contextmanager
def sqlite_copy(path):
    """A connection to a copy of a SQLite brain and its WAL: reading it never touches the live -shm."""
    scratch = tempfile.mkdtemp(prefix="brain-copy-")
    try:
        for suffix in ("", "-wal"):
            if os.path.exists(path + suffix):
                shutil.copy2(path + suffix, os.path.join(scratch, "brain.sqlite" + suffix))
        conn = sqlite3.connect(os.path.join(scratch, "brain.sqlite"))
        try:
            yield conn
        finally:
            conn.close()
    finally:
        shutil.rmtree(scratch)


class Brain:
    """Where one Engine's brain lives, and how a test reads it without disturbing the Engine."""

    def __init__(self, backend, volume, database, pg_params):
        self.backend, self.volume, self.database, self.pg_params = backend, volume, database, pg_params

    def dsn(self, host="127.0.0.1"):
        """The Engine's DATABASE_URL; user, password and database percent-encoded, as a URL needs them."""
        p = self.pg_params
        return "postgresql://%s:%s@%s:%s/%s" % (quote(p["user"], safe=""), quote(p["password"], safe=""), host,
                                                p["port"], quote(self.database or "", safe=""))

    def sqlite_path(self, docker_client):
        mountpoint = docker_client.volumes.get(self.volume).attrs["Mountpoint"]
        return os.path.join(mountpoint, "brain.sqlite")

    def query(self, docker_client, text, params=()):
        """Run a read query; SQLite is read from a copy so the live -shm is never touched."""
        if self.backend == "postgres":
            with psycopg.connect(self.dsn(), autocommit=True) as conn:
                return conn.execute(text.replace("?", "%s"), params).fetchall()
        with sqlite_copy(self.sqlite_path(docker_client)) as conn:
            return conn.execute(text, params).fetchall()

    def columns(self, docker_client, table):
        if self.backend == "postgres":
            rows = self.query(docker_client, "SELECT column_name FROM information_schema.columns "
                              "WHERE table_schema = 'public' AND table_name = ?", (table,))
        else:
            rows = [(r[1],) for r in self.query(docker_client, 'PRAGMA table_info("%s")' % table)]
        return {r[0] for r in rows}

    def checksum(self, docker_client):
        """Bytes of the SQLite file, or schema plus every row of every table in PostgreSQL."""
        if self.backend == "sqlite":
            with open(self.sqlite_path(docker_client), "rb") as handle:
                return hashlib.sha256(handle.read()).hexdigest()
        digest = hashlib.sha256()
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            schema = conn.execute("SELECT table_name, column_name, data_type FROM information_schema.columns "
                                  "WHERE table_schema = 'public' ORDER BY 1, 2").fetchall()
            digest.update(repr(schema).encode())
            for table in sorted({row[0] for row in schema}):
                rows = conn.execute(sql.SQL("SELECT * FROM {} ORDER BY 1").format(sql.Identifier(table))).fetchall()
                digest.update(repr(rows).encode())
        return digest.hexdigest()

    def schema(self, docker_client):
        if self.backend == "sqlite":
            return sorted(self.query(docker_client, "SELECT type, name, sql FROM sqlite_master "
                                                    "WHERE name NOT LIKE 'sqlite_%'"))
        return self.query(docker_client, "SELECT table_name, column_name, data_type FROM information_schema.columns "
                                         "WHERE table_schema = 'public' ORDER BY 1, 2")


class Engine:
    """A running reference Engine container and the ways a test talks to it."""

    def __init__(self, client, container, port, brain):
        self.client, self.container, self.port, self.brain = client, container, port, brain
        self.url = "http://127.0.0.1:%d" % port

    def health(self):
        response = requests.get(self.url + "/health", timeout=5)
        return response.status_code, response.json()

    def wait_healthy(self, timeout=60):
        return wait_for(lambda: self.health()[1].get("status") == "ok", timeout, "%s healthy" % self.url)

    def wait_started(self, timeout=60):
        """Until the Engine is past its start-up: /health answers something other than "starting", or the container
        has stopped (a release that crashes at start)."""
        def past_start():
            self.container.reload()
            if self.container.status in ("exited", "dead", "restarting"):
                return True
            return self.health()[1].get("status") != "starting"
        return wait_for(past_start, timeout, "%s past its start-up" % self.url)

    def wait_status(self, status, timeout=60):
        return wait_for(lambda: self.health()[1].get("status") == status, timeout, "status %s" % status)

    def execute(self, message="hello", duration=0.0, headers=None, request_id=None):
        """Run one turn with the Engine key; returns (http_status, list of streamed events or the error document)."""
        hdrs = dict(AUTH, **(headers or {}))
        if request_id:
            hdrs["X-Request-ID"] = request_id
        response = requests.post(self.url + "/execute", json={"message": message, "duration_seconds": duration},
                                 headers=hdrs, timeout=120, stream=True)
        if response.headers.get("Content-Type") == "application/x-ndjson":
            return response.status_code, [json.loads(line) for line in response.iter_lines() if line]
        return response.status_code, response.json()

    def execute_in_background(self, **kwargs):
        result = {}

        def run():
            try:
                result["response"] = self.execute(**kwargs)
            except requests.RequestException as exc:
                result["error"] = exc

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        return thread, result

    def logs(self):
        lines = self.container.logs(stdout=True, stderr=False).decode().splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]

    def wait_log(self, message, timeout=30, request_id=None):
        """The Engine's log lines `message` (of the turn `request_id` when given), once there is one."""
        return wait_for(lambda: [r for r in self.logs() if r["message"] == message
                                 and request_id in (None, r.get("request_id"))], timeout,
                        "log %r%s" % (message, " of %s" % request_id if request_id else ""))

    def wait_exit(self, timeout=60):
        return self.container.wait(timeout=timeout)["StatusCode"]

    def rows(self, table, request_id=None):
        where, params = ("WHERE request_id = ?", (request_id,)) if request_id else ("", ())
        return self.brain.query(self.client, 'SELECT * FROM "%s" %s' % (table, where), params)


class Names:
    """Container names a module creates (with its -next/-previous companions), removed by cleanup()."""

    def __init__(self, docker_client):
        self.client, self.names = docker_client, []

    def __call__(self, name):
        self.names.append(name)

    def cleanup(self):
        for name in self.names:
            for suffix in ("", "-engine_ops-next", "-engine_ops-previous"):
                try:
                    self.client.containers.get(name + suffix).remove(force=True)
                except docker.errors.NotFound:
                    pass


class EngineFactory:
    """brain(backend) makes a brain, start(version, brain) runs an Engine on it; cleanup() removes them all."""

    def __init__(self, docker_client, pg_params, prefix):
        self.client, self.pg_params, self.prefix = docker_client, pg_params, prefix
        self.created = {"containers": [], "volumes": [], "databases": []}

    def brain(self, backend="sqlite", database=None, role=None):
        """A new brain. PostgreSQL: a database owned by the Engine's role, or by `role` ({"user", "password"}, an
        existing role the Engine then connects as); `database` names it (any name PostgreSQL allows)."""
        volume = "%s-data-%s" % (self.prefix, uuid.uuid4().hex[:6])
        self.client.volumes.create(volume, labels={"engine_ops.test": self.prefix})
        self.created["volumes"].append(volume)
        params = dict(self.pg_params, **(role or {}))
        if backend == "postgres":
            database = database or "%s_brain_%s" % (self.prefix.replace("-", "_"), uuid.uuid4().hex[:6])
            with psycopg.connect(dbname="postgres", autocommit=True, **admin_params(self.pg_params)) as conn:
                conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(database), sql.Identifier(params["user"])))
            self.created["databases"].append(database)
        return Brain(backend, volume, database, params)

    def brain_at(self, backend, volume, database):
        """A brain some other code created (a playbook under test); the test does not own it."""
        return Brain(backend, volume, database, self.pg_params)

    def start(self, version, brain, env=None, port=None, image=None):
        """An Engine on `brain`, from engine:<version>, or from `image` (a full reference) when given."""
        port = port or free_port()
        environment = {"ENGINE_PORT": str(port), "ENGINE_BIND": "127.0.0.1", "ENGINE_STARTUP_SECONDS": "0.2",
                       "ENGINE_KEY_HASH": ENGINE_KEY_HASH}
        if brain.backend == "postgres":
            environment["DATABASE_URL"] = brain.dsn()
        environment.update(env or {})
        container = self.client.containers.run(
            image or "%s:%s" % (ENGINE_REPOSITORY, version), detach=True, network_mode="host",
            name="%s-engine-%s" % (self.prefix, uuid.uuid4().hex[:6]), environment=environment,
            volumes={brain.volume: {"bind": "/data", "mode": "rw"}}, labels={"engine_ops.test": self.prefix})
        self.created["containers"].append(container)
        return Engine(self.client, container, port, brain)

    def attach(self, container, port, brain):
        """An Engine some other tool started (docker-compose), on a brain of this factory's."""
        return Engine(self.client, container, port, brain)

    def cleanup(self):
        for container in self.created["containers"]:
            try:
                container.remove(force=True)
            except docker.errors.NotFound:
                pass
        for volume in self.created["volumes"]:
            try:
                self.client.volumes.get(volume).remove(force=True)
            except docker.errors.NotFound:
                pass
        if self.created["databases"]:
            with psycopg.connect(dbname="postgres", autocommit=True, **admin_params(self.pg_params)) as conn:
                for database in self.created["databases"]:
                    # with the restores of pg_restore_strategy=database this test made, if any
                    for (name,) in conn.execute("SELECT datname FROM pg_database WHERE datname = %s OR datname LIKE %s",
                                                (database, database[:34] + "\\_\\_%")).fetchall():
                        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def named(docker_client):
    """Register container names a module creates (with its -next/-previous companions) for removal."""
    names = Names(docker_client)
    yield names
    names.cleanup()


@pytest.fixture
def engines(docker_client, pg_params, prefix):
    """Factory: engines.brain(backend) makes a brain, engines.start(version, brain) runs an Engine on it."""
    factory = EngineFactory(docker_client, pg_params, prefix)
    yield factory
    factory.cleanup()


def named_engines(engines, named, prefix, count, version, backend="sqlite"):
    """`count` healthy Engines on `version`, each renamed to a unique name (kept for removal), and their host vars."""
    members, hosts = [], {}
    for dummy in range(count):
        engine = engines.start(version, engines.brain(backend))
        engine.name = "%s-%s" % (prefix, uuid.uuid4().hex[:6])
        engine.container.rename(engine.name)
        named(engine.name)
        members.append(engine)
        hosts[engine.name] = {"engine_container": engine.name, "engine_url": engine.url, "engine_api_key": ENGINE_API_KEY}
    for engine in members:
        engine.wait_healthy()
    return members, hosts


class Receiver:
    """A notification receiver on 127.0.0.1. Records (method, path, json body, headers); answers 500 for paths in `failing`."""

    def __init__(self):
        self.calls, self.failing, self.lock = [], set(), threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"null")
                with receiver.lock:
                    receiver.calls.append((self.command, self.path, body, dict(self.headers)))
                failing = any(self.path.startswith(p) for p in receiver.failing)
                answer = {"id": "inc-42"} if self.path.startswith("/status/") else {"ok": True}
                data = json.dumps(answer).encode()
                self.send_response(500 if failing else 200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_POST = do_PATCH = _handle  # noqa: N815

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def texts(self):
        return [(method, path.split("/")[1], body.get("text") or body["incident"]["body"]) for method, path, body, dummy
                in self.calls]


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.server.shutdown()


def docker_info_answers():
    return subprocess.run(["docker", "info"], capture_output=True, check=False).returncode == 0


def restart_docker_daemon(timeout=120):
    """Stop the one dockerd with SIGTERM (as a package upgrade or an operator would) and start it again as it was.

    Without live-restore the daemon stops every container on its way down. Returns when `docker info` answers.
    """
    pids = subprocess.run(["pgrep", "-x", "dockerd"], capture_output=True, text=True, check=False).stdout.split()
    assert len(pids) == 1, "expected exactly one dockerd, found %r" % pids
    pid = int(pids[0])
    with open("/proc/%d/cmdline" % pid, "rb") as handle:
        cmdline = [part.decode() for part in handle.read().split(b"\0") if part]
    os.kill(pid, signal.SIGTERM)
    wait_for(lambda: not os.path.exists("/proc/%d" % pid), timeout, "dockerd %d to exit" % pid, interval=0.2)
    start_docker_daemon(cmdline, timeout)


def start_docker_daemon(cmdline, timeout=120):
    log = os.path.join(os.environ.get("ENGINE_OPS_WORK", os.path.join(REPO, ".work")), "dockerd.log")
    with open(log, "ab") as handle:
        subprocess.Popen(cmdline, stdout=handle, stderr=handle, stdin=subprocess.DEVNULL,  # pylint: disable=consider-using-with
                         start_new_session=True)
    wait_for(docker_info_answers, timeout, "dockerd to answer again", interval=0.5)
