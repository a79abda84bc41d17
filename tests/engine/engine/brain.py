"""The brain: SQLite file or PostgreSQL database, with forward-only SQL migrations.

Applied migrations are recorded in `engine_migrations`, a private detail of this reference
Engine (the collection must never read it; it judges schemas by fingerprint).
"""

import base64
import hashlib
import os
import sqlite3
import threading
from dataclasses import dataclass

try:
    import psycopg2
except ImportError:  # only the PostgreSQL mode needs it; the image ships it
    psycopg2 = None

MIGRATIONS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "migrations")

DIALECTS = {
    "sqlite": {"pk": "INTEGER PRIMARY KEY AUTOINCREMENT", "blob": "BLOB"},
    "postgres": {"pk": "BIGSERIAL PRIMARY KEY", "blob": "BYTEA"},
}

BRAIN_TABLES = (
    "episodes", "episodes_vec", "knowledge_store", "knowledge_store_vec", "social_graph_nodes",
    "social_graph_edges", "social_graph_edges_vec", "conversations", "learning_signals",
    "working_memory_log", "trajectories", "channel_state_snapshots", "connections",
    "server_registry", "action_registry", "observability_events", "ingestion_chunks",
)


class BrainError(Exception):
    pass


class MigrationRequired(BrainError):
    """The brain carries migrations this Engine does not know: it was written by a newer Engine."""

    def __init__(self, unknown):
        self.unknown = sorted(unknown)
        super().__init__("brain has migrations unknown to this Engine: " + ", ".join(self.unknown))


@dataclass(frozen=True)
class Migration:
    id: str
    sql: str

    @property
    def checksum(self):
        return hashlib.sha256(self.sql.encode()).hexdigest()

    def statements(self, dialect):
        text = "\n".join(line for line in self.sql.splitlines() if not line.lstrip().startswith("--"))
        text = text.format(**DIALECTS[dialect])
        return [stmt.strip() for stmt in text.split(";") if stmt.strip()]


def load_migrations(directory=MIGRATIONS_DIR):
    """Every `NNNN_name.sql` in the directory, in order; the image carries only its version's files."""
    migrations = []
    for name in sorted(os.listdir(directory)):
        if name.endswith(".sql"):
            with open(os.path.join(directory, name), encoding="utf-8") as handle:
                migrations.append(Migration(name[:-4], handle.read()))
    return migrations


def plan_migrations(known, applied):
    """Return the migrations to apply, or raise MigrationRequired when the brain is newer."""
    known_ids = [m.id for m in known]
    unknown = set(applied) - set(known_ids)
    if unknown:
        raise MigrationRequired(unknown)
    return [m for m in known if m.id not in set(applied)]


def _jsonable(value):
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"base64": base64.b64encode(bytes(value)).decode()}
    return value


PREVIOUS_ID = object()  # placeholder in insert_many params for the id just inserted


class Brain:
    """One writer connection guarded by a lock: the Engine is the brain's single writer."""

    dialect = "sqlite"

    def __init__(self):
        self.lock = threading.RLock()
        self.conn = None

    # -- subclass hooks --------------------------------------------------------------------------
    def applied_readonly(self):
        raise NotImplementedError

    def _connect(self):
        raise NotImplementedError

    def _sql(self, text):
        return text

    # -- common ----------------------------------------------------------------------------------
    def open(self, migrations, now):
        """Check the brain read-only first, so an Engine too old for it never modifies it."""
        pending = plan_migrations(migrations, self.applied_readonly())
        self._connect()
        with self.lock:
            cur = self.conn.cursor()
            cur.execute("CREATE TABLE IF NOT EXISTS engine_migrations "
                        "(id TEXT PRIMARY KEY, checksum TEXT NOT NULL, applied_at TEXT NOT NULL)")
            self.conn.commit()
            for migration in pending:
                for statement in migration.statements(self.dialect):
                    cur.execute(statement)
                cur.execute(self._sql("INSERT INTO engine_migrations (id, checksum, applied_at) VALUES (?, ?, ?)"),
                            (migration.id, migration.checksum, now))
                self.conn.commit()
        return [m.id for m in pending]

    def execute(self, text, params=()):
        with self.lock:
            cur = self.conn.cursor()
            cur.execute(self._sql(text), params)
            rows = cur.fetchall() if cur.description else []
            self.conn.commit()
            return rows

    def ping(self):
        with self.lock:
            try:
                cur = self.conn.cursor()
                cur.execute("SELECT 1")
                cur.fetchall()
            except Exception:
                self._reconnect()
                raise

    def _reconnect(self):
        try:
            self.conn.close()
        except Exception:  # pylint: disable=broad-except
            pass
        try:
            self._connect()
        except Exception:  # pylint: disable=broad-except
            pass

    def insert_many(self, statements):
        """Run (sql, params) pairs in one transaction; PREVIOUS_ID in params takes the last id."""
        with self.lock:
            cur = self.conn.cursor()
            last_id = None
            try:
                for text, params in statements:
                    params = tuple(last_id if p is PREVIOUS_ID else p for p in params)
                    cur.execute(self._sql(text + " RETURNING id"), params)
                    last_id = cur.fetchone()[0]
                self.conn.commit()
            except Exception:
                self.conn.rollback()
                raise

    def bulk_insert(self, table, columns, rows):
        """Insert many rows into one table in one transaction (seeding large brains)."""
        text = 'INSERT INTO "%s" (%s) VALUES (%s)' % (table, ", ".join(columns), ", ".join("?" * len(columns)))
        with self.lock:
            cur = self.conn.cursor()
            cur.executemany(self._sql(text), rows)
            self.conn.commit()

    def export(self, since=None, tables=BRAIN_TABLES):
        out = {}
        with self.lock:
            cur = self.conn.cursor()
            for table in tables:
                if since:
                    cur.execute(self._sql('SELECT * FROM "%s" WHERE created_at > ? ORDER BY id' % table), (since,))
                else:
                    cur.execute('SELECT * FROM "%s" ORDER BY id' % table)
                names = [d[0] for d in cur.description]
                out[table] = [{k: _jsonable(v) for k, v in zip(names, row)} for row in cur.fetchall()]
            self.conn.commit()
        return out

    def close(self):
        with self.lock:
            if self.conn is not None:
                self.conn.close()
                self.conn = None


class SqliteBrain(Brain):
    dialect = "sqlite"

    def __init__(self, path):
        super().__init__()
        self.path = path

    def applied_readonly(self):
        if not os.path.exists(self.path):
            return []
        conn = sqlite3.connect("file:%s?mode=ro" % self.path, uri=True)
        try:
            has = conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='engine_migrations'").fetchone()
            return [row[0] for row in conn.execute("SELECT id FROM engine_migrations")] if has else []
        finally:
            conn.close()

    def _connect(self):
        directory = os.path.dirname(self.path)
        if directory:
            os.makedirs(directory, exist_ok=True)
        self.conn = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA busy_timeout=30000")

    def close(self):
        with self.lock:
            if self.conn is not None:
                # A clean exit folds the WAL back into the main file.
                self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        super().close()


class PostgresBrain(Brain):
    dialect = "postgres"

    def __init__(self, url):
        super().__init__()
        if psycopg2 is None:
            raise BrainError("DATABASE_URL is set but psycopg2 is not installed")
        self.url = url

    def _sql(self, text):
        return text.replace("?", "%s")

    def applied_readonly(self):
        conn = psycopg2.connect(self.url, connect_timeout=10)
        try:
            conn.set_session(readonly=True, autocommit=True)
            cur = conn.cursor()
            cur.execute("SELECT to_regclass('engine_migrations') IS NOT NULL")
            if not cur.fetchone()[0]:
                return []
            cur.execute("SELECT id FROM engine_migrations")
            return [row[0] for row in cur.fetchall()]
        finally:
            conn.close()

    def _connect(self):
        self.conn = psycopg2.connect(self.url, connect_timeout=10)


def brain_from_config(config):
    if config.database_url:
        return PostgresBrain(config.database_url)
    return SqliteBrain(config.sqlite_path)
