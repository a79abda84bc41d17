"""HTTP API, turns and the SIGTERM drain of the reference Engine."""

import hashlib
import hmac
import json
import os
import signal
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from . import faults
from .brain import BRAIN_TABLES, PREVIOUS_ID, MigrationRequired, brain_from_config, embedding_of, load_migrations
from .health import health_document
from .jsonlog import JsonLogger, utcnow_iso
from .sealing import open_sealed, seal

TICK = 0.25


class ApiError(Exception):
    def __init__(self, status, code, message):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class Engine:
    """Lifecycle: starting -> serving -> draining -> exit; or migration_required; or crash."""

    def __init__(self, config, log=None):
        self.config = config
        self.log = log or JsonLogger("engine")
        self.brain = None
        self.phase = "starting"
        self.migration_error = None
        self.started = time.monotonic()
        self.cond = threading.Condition()
        self.in_flight = {}
        self.turns_started = 0
        self.stop_requested = threading.Event()
        self.stop_signal = None
        self.server = None

    # -- lifecycle --------------------------------------------------------------------------------
    def startup(self):
        """Open the brain (migrating it if needed) and become ready; returns an exit code or None."""
        cfg = self.config
        self.log.info("engine starting", version=cfg.version, brain_backend=cfg.backend)
        if self.stop_requested.wait(cfg.startup_seconds):
            return 0
        if cfg.fault == "crash":
            # Fails where a bad release usually does: loading its code, before the brain is opened.
            self.log.critical("startup failed: plugin registry could not be loaded", error_code="STARTUP_CRASH")
            return 3
        brain = brain_from_config(cfg)
        try:
            applied = brain.open(load_migrations(), utcnow_iso())
        except MigrationRequired as exc:
            self.migration_error = "%s (this Engine is %s); the brain was not modified" % (exc, cfg.version)
            self.log.error("brain needs a newer Engine: MIGRATION_REQUIRED", error_code="MIGRATION_REQUIRED",
                           unknown_migrations=exc.unknown)
            with self.cond:
                self.phase = "migration_required"
            return None
        self.brain = brain
        for migration_id in applied:
            self.log.info("migration applied", migration=migration_id)
        os.makedirs(cfg.asset_dir, exist_ok=True)
        self._check_connections()
        with self.cond:
            self.phase = "serving"
        self.log.info("engine ready", version=cfg.version, port=cfg.port)
        return None

    def _check_connections(self):
        for name, sealed in self.brain.execute("SELECT name, encrypted_credentials FROM connections"):
            if open_sealed(self.config.encryption_key, sealed) is None:
                self.log.warning("MCP connection unusable: credentials sealed under another AD_ENCRYPTION_KEY",
                                 connection=name, error_code="CONNECTION_KEY_MISMATCH")

    def request_stop(self, signum, _frame=None):
        # No logging here: the handler may interrupt a thread that holds the log lock.
        self.stop_signal = signal.Signals(signum).name
        self.stop_requested.set()

    def drain(self):
        """Stop taking turns, let the in-flight ones finish and persist, then return."""
        with self.cond:
            previous, self.phase = self.phase, "draining"
            ids = sorted(self.in_flight)
        self.log.info("drain started", in_flight_turns=len(ids), request_ids=ids, previous_phase=previous,
                      signal=self.stop_signal)
        began = time.monotonic()
        with self.cond:
            while self.in_flight:
                self.cond.wait(0.5)
        if self.server is not None:
            self.server.shutdown()
        if self.brain is not None:
            self.brain.close()
        self.log.info("drain complete", completed_turns=len(ids),
                      duration_ms=round((time.monotonic() - began) * 1000, 1))

    # -- health -----------------------------------------------------------------------------------
    def subsystems(self):
        states = {"database": "ok", "llm_provider": "ok", "asset_directory": "ok"}
        if self.phase == "migration_required":
            states["database"] = "error: MIGRATION_REQUIRED"
        elif self.brain is None:
            states["database"] = "starting"
        else:
            try:
                self.brain.ping()
            except Exception as exc:  # pylint: disable=broad-except
                states["database"] = "error: %s" % str(exc).strip().splitlines()[0]
        if not os.access(self.config.asset_dir, os.W_OK):
            states["asset_directory"] = "error: %s is not writable" % self.config.asset_dir
        states.update(faults.subsystem_faults(self.config.fault))
        return states

    def health(self):
        with self.cond:
            phase = self.phase
        return health_document(phase, self.config.version, time.monotonic() - self.started,
                               self.subsystems(), self.migration_error)

    # -- API --------------------------------------------------------------------------------------
    def check_available(self):
        with self.cond:
            phase = self.phase
        if phase == "migration_required":
            raise ApiError(503, "MIGRATION_REQUIRED", self.migration_error)
        if phase != "serving":
            raise ApiError(503, "DRAINING" if phase == "draining" else "STARTING", "engine is %s" % phase)

    def authorize(self, headers):
        """Every endpoint but /health needs X-Engine-Key: its SHA-256 must be ENGINE_KEY_HASH (production) or
        that of ENGINE_API_KEY (development). With neither configured, nothing is authorized."""
        expected = self.config.key_hash.lower() or (
            hashlib.sha256(self.config.api_key.encode()).hexdigest() if self.config.api_key else "")
        key = headers.get("X-Engine-Key", "")
        if not key:
            raise ApiError(401, "UNAUTHORIZED", "the X-Engine-Key header is required")
        if not expected or not hmac.compare_digest(hashlib.sha256(key.encode()).hexdigest(), expected):
            raise ApiError(401, "UNAUTHORIZED", "wrong engine key")

    def begin_turn(self, request_id):
        with self.cond:
            if self.phase != "serving":
                raise ApiError(503, "DRAINING" if self.phase == "draining" else "STARTING",
                               "engine is %s; turn refused" % self.phase)
            self.turns_started += 1
            self.in_flight[request_id] = time.monotonic()
            return self.turns_started

    def end_turn(self, request_id):
        with self.cond:
            self.in_flight.pop(request_id, None)
            self.cond.notify_all()

    def persist_turn(self, request_id, conversation_id, message, reply, feedback, duration_ms, tool_calls=()):
        now = utcnow_iso()
        embedding = self.brain.embedding_param(embedding_of(message))  # recall finds what the user said
        summary = "user asked: %s" % message[:200]
        rows = [
            ("INSERT INTO episodes (request_id, conversation_id, summary, outcome, created_at) VALUES (?, ?, ?, ?, ?)",
             (request_id, conversation_id, summary, "completed", now)),
            ("INSERT INTO episodes_vec (episode_id, embedding, created_at) VALUES (?, ?, ?)",
             (PREVIOUS_ID, embedding, now)),
        ] + ([
            ("INSERT INTO episodes_fts (rowid, summary, outcome, created_at) VALUES (?, ?, ?, ?)",
             (PREVIOUS_ID, summary, "completed", now)),
        ] if self.brain.dialect == "sqlite" else []) + [
            ("INSERT INTO conversations (conversation_id, request_id, role, content, created_at) VALUES (?, ?, ?, ?, ?)",
             (conversation_id, request_id, "user", message, now)),
            ("INSERT INTO conversations (conversation_id, request_id, role, content, created_at) VALUES (?, ?, ?, ?, ?)",
             (conversation_id, request_id, "assistant", reply, now)),
            ("INSERT INTO learning_signals (request_id, conversation_id, signal, score, created_at) "
             "VALUES (?, ?, ?, ?, ?)",
             (request_id, conversation_id, feedback.get("signal", "implicit"), float(feedback.get("score", 0.0)), now)),
            ("INSERT INTO working_memory_log (request_id, content, created_at) VALUES (?, ?, ?)",
             (request_id, "turn context: %s" % message[:200], now)),
            ("INSERT INTO trajectories (request_id, steps, created_at) VALUES (?, ?, ?)",
             (request_id, json.dumps([{"step": "plan"}] + [dict(call, step="tool_call") for call in tool_calls]
                                     + [{"step": "respond"}]), now)),
            ("INSERT INTO observability_events (request_id, kind, payload, created_at) VALUES (?, ?, ?, ?)",
             (request_id, "turn.completed", json.dumps({"duration_ms": duration_ms}), now)),
        ] + [("INSERT INTO observability_events (request_id, kind, payload, created_at) VALUES (?, ?, ?, ?)",
              (request_id, "tool.call", json.dumps(call), now)) for call in tool_calls]
        self.brain.insert_many(rows)

    def add_connection(self, body):
        if not self.config.encryption_key:
            raise ApiError(400, "ENCRYPTION_KEY_MISSING", "AD_ENCRYPTION_KEY is not configured")
        for field in ("name", "server_url", "credentials"):
            if not isinstance(body.get(field), str) or not body[field]:
                raise ApiError(400, "INVALID_REQUEST", "field %r must be a non-empty string" % field)
        self.brain.insert_many([(
            "INSERT INTO connections (name, server_url, encrypted_credentials, created_at) VALUES (?, ?, ?, ?)",
            (body["name"], body["server_url"], seal(self.config.encryption_key, body["credentials"]), utcnow_iso()))])
        return {"name": body["name"], "usable": True}

    def list_connections(self):
        rows = self.brain.execute("SELECT name, server_url, encrypted_credentials FROM connections ORDER BY id")
        return [{"name": n, "server_url": u, "usable": open_sealed(self.config.encryption_key, s) is not None}
                for n, u, s in rows]

    # -- serving ----------------------------------------------------------------------------------
    def serve(self):
        self.server = ThreadingHTTPServer((self.config.bind, self.config.port), make_handler(self))
        self.server.daemon_threads = True
        thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
        thread.start()
        self.log.info("listening", bind=self.config.bind, port=self.config.port)
        return thread

    def run(self):
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)
        self.serve()
        code = self.startup()
        if code is not None:
            self.server.shutdown()
            return code
        # Wait in short slices: CPython runs a Python signal handler only in the main thread, and when the
        # kernel hands SIGTERM to another thread (a turn, a request) a main thread blocked in an untimed
        # wait would not notice until something else woke it (seen once: no drain for 10 s).
        while not self.stop_requested.wait(0.2):
            pass
        self.drain()
        return 0


def make_handler(engine):
    class Handler(BaseHTTPRequestHandler):
        server_version = "ReferenceEngine"
        protocol_version = "HTTP/1.0"

        def log_message(self, *_args):  # access logging is our JSON line, not stderr
            pass

        def _send_json(self, status, body):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self):
            length = int(self.headers.get("Content-Length") or 0)
            if not length:
                return {}
            try:
                body = json.loads(self.rfile.read(length))
            except ValueError:
                raise ApiError(400, "INVALID_JSON", "request body is not JSON") from None
            if not isinstance(body, dict):
                raise ApiError(400, "INVALID_JSON", "request body must be a JSON object")
            return body

        def _dispatch(self, method):
            request_id = self.headers.get("X-Request-ID") or uuid.uuid4().hex
            began = time.monotonic()
            status = 500
            url = urlparse(self.path)
            try:
                status = self._route(method, url, request_id)
            except ApiError as exc:
                status = exc.status
                expected = exc.status < 500 or exc.code in ("DRAINING", "STARTING")
                level = engine.log.warning if expected else engine.log.error
                level("request failed: %s" % exc.message, request_id, error_code=exc.code, status=status)
                self._send_json(status, {"error": {"code": exc.code, "message": exc.message}})
            except (BrokenPipeError, ConnectionResetError):
                status = 499
            except Exception as exc:  # pylint: disable=broad-except
                engine.log.error("internal error: %s" % exc, request_id, error_code="INTERNAL", status=500)
                self._send_json(500, {"error": {"code": "INTERNAL", "message": str(exc)}})
            engine.log.info("request completed", request_id, method=method, path=url.path, status=status,
                            duration_ms=round((time.monotonic() - began) * 1000, 1))

        def do_GET(self):  # noqa: N802 (http.server naming)
            self._dispatch("GET")

        def do_POST(self):  # noqa: N802
            self._dispatch("POST")

        def _route(self, method, url, request_id):
            if (method, url.path) == ("GET", "/health"):
                status, body = engine.health()
                self._send_json(status, body)
                return status
            routes = {("POST", "/execute"): self._execute, ("GET", "/memory/export"): self._export,
                      ("POST", "/memory/import"): self._import, ("GET", "/memory/search"): self._search,
                      ("GET", "/connections"): self._connections, ("POST", "/connections"): self._connections}
            handler = routes.get((method, url.path))
            if handler is None:
                raise ApiError(404, "NOT_FOUND", "no route %s %s" % (method, url.path))
            engine.authorize(self.headers)
            engine.check_available()
            return handler(method, url, request_id)

        def _export(self, _method, url, _request_id):
            query = parse_qs(url.query)
            tables = query.get("tables", [",".join(BRAIN_TABLES)])[0].split(",")
            bad = [t for t in tables if t not in BRAIN_TABLES]
            if bad:
                raise ApiError(400, "INVALID_REQUEST", "unknown tables: %s" % ", ".join(bad))
            since = query.get("since", [None])[0]
            body = {"version": engine.config.version, "exported_at": utcnow_iso(), "since": since,
                    "tables": engine.brain.export(since, tables)}
            self._send_json(200, body)
            return 200

        def _import(self, _method, _url, _request_id):
            body = self._body()
            tables = body.get("tables")
            on_conflict = body.get("on_conflict", "fail")
            if not isinstance(tables, dict) or not all(isinstance(v, list) for v in tables.values()):
                raise ApiError(400, "INVALID_REQUEST", "field 'tables' must map table names to lists of rows")
            bad = [t for t in tables if t not in BRAIN_TABLES]
            if bad or on_conflict not in ("fail", "skip"):
                raise ApiError(400, "INVALID_REQUEST", "unknown tables: %s" % ", ".join(bad) if bad
                               else "on_conflict must be fail or skip")
            imported, conflicts = engine.brain.import_rows(tables, on_conflict)
            if conflicts and on_conflict == "fail":
                self._send_json(409, {"error": {"code": "IMPORT_CONFLICT", "message": "%d rows already present; "
                                                "nothing was imported" % len(conflicts)}, "conflicts": conflicts})
                return 409
            self._send_json(200, {"imported": imported, "skipped": conflicts})
            return 200

        def _search(self, _method, url, _request_id):
            """Recall: nearest episodes by embedding (vec0 KNN) and, in SQLite, full-text matches (FTS5)."""
            query = parse_qs(url.query)
            text = query.get("q", [""])[0]
            if not text:
                raise ApiError(400, "INVALID_REQUEST", "parameter 'q' is required")
            k = int(query.get("k", ["5"])[0])
            self._send_json(200, engine.brain.search(text, k))
            return 200

        def _connections(self, method, _url, _request_id):
            if method == "POST":
                self._send_json(201, engine.add_connection(self._body()))
                return 201
            self._send_json(200, {"connections": engine.list_connections()})
            return 200

        def _execute(self, _method, _url, request_id):
            body = self._body()
            message = body.get("message")
            if not isinstance(message, str) or not message:
                raise ApiError(400, "INVALID_REQUEST", "field 'message' must be a non-empty string")
            conversation_id = str(body.get("conversation_id") or uuid.uuid4().hex)
            base = body.get("duration_seconds", engine.config.turn_seconds)
            if not isinstance(base, (int, float)) or base < 0:
                raise ApiError(400, "INVALID_REQUEST", "field 'duration_seconds' must be a non-negative number")
            tool_calls = body.get("tool_calls") or []
            if not isinstance(tool_calls, list) or not all(
                    isinstance(c, dict) and isinstance(c.get("server"), str) and isinstance(c.get("tool"), str)
                    for c in tool_calls):
                raise ApiError(400, "INVALID_REQUEST", "field 'tool_calls' must be a list of {server, tool}")
            number = engine.begin_turn(request_id)
            try:
                return self._run_turn(request_id, number, conversation_id, message, float(base),
                                      body.get("feedback") or {}, tool_calls)
            finally:
                engine.end_turn(request_id)

        def _run_turn(self, request_id, number, conversation_id, message, base, feedback, tool_calls=()):
            cfg = engine.config
            duration = faults.turn_duration(cfg.fault, base, cfg.latency_factor)
            engine.log.info("turn started", request_id, turn=number, conversation_id=conversation_id)
            began = time.monotonic()
            if cfg.fault == "llm":
                time.sleep(min(duration, 0.2))
                raise ApiError(502, "LLM_PROVIDER_UNAVAILABLE", "LLM provider answered 503")
            if faults.turn_fails(cfg.fault, cfg.error_rate, number):
                time.sleep(duration / 10)
                raise ApiError(500, "TOOL_EXECUTION_FAILED", "tool call failed during the turn")
            self.send_response(200)
            self.send_header("Content-Type", "application/x-ndjson")
            self.end_headers()
            client = True

            def emit(event):
                nonlocal client
                if client:
                    try:
                        self.wfile.write((json.dumps(event) + "\n").encode())
                        self.wfile.flush()
                    except OSError:
                        client = False  # the turn still completes and persists without its reader

            emit({"event": "turn.started", "request_id": request_id, "conversation_id": conversation_id})
            tokens = 0
            while time.monotonic() - began < duration:
                time.sleep(min(TICK, max(0.0, duration - (time.monotonic() - began))))
                tokens += 1
                emit({"event": "token", "text": "t%d " % tokens})
            reply = "reply to %r after %d tokens" % (message[:80], tokens)
            duration_ms = round((time.monotonic() - began) * 1000, 1)
            engine.persist_turn(request_id, conversation_id, message, reply, feedback, duration_ms,
                                [{"server": c["server"], "tool": c["tool"]} for c in tool_calls])
            engine.log.info("turn completed", request_id, turn=number, duration_ms=duration_ms)
            emit({"event": "turn.completed", "request_id": request_id, "conversation_id": conversation_id,
                  "reply": reply, "duration_ms": duration_ms})
            return 200

    return Handler
