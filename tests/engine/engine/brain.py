"""The brain: SQLite file or PostgreSQL database, with forward-only SQL migrations.

Applied migrations are recorded in `engine_migrations`, a private detail of this reference
Engine (the collection must never read it; it judges schemas by fingerprint).

As in the real Engine ("brain.sqlite with sqlite-vec + FTS5"), the SQLite brain keeps embeddings
in sqlite-vec `vec0` virtual tables (1536-dim float32) and episodes in an FTS5 index; every
connection the Engine opens loads the vec0 extension. PostgreSQL has no pgvector here: its
`*_vec` tables hold the embedding as `REAL[]`.
"""

import base64
import hashlib
import os
import re
import sqlite3
import struct
import threading
from dataclasses import dataclass

try:
    import psycopg2
except ImportError:  # only the PostgreSQL mode needs it; the image ships it
    psycopg2 = None

try:
    import sqlite_vec
except ImportError:  # the image carries it (from the PyPI wheel); unit tests run where it is installed
    sqlite_vec = None

MIGRATIONS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "migrations")
EMBEDDING_DIM = 1536

DIALECTS = {
    "sqlite": {"pk": "INTEGER PRIMARY KEY AUTOINCREMENT", "blob": "BLOB"},
    "postgres": {"pk": "BIGSERIAL PRIMARY KEY", "blob": "BYTEA"},
}

# vec0 tables are keyed by the row they embed; every other table by its own `id`.
VECTOR_TABLES = {"episodes_vec": "episode_id", "knowledge_store_vec": "knowledge_id",
                 "social_graph_edges_vec": "edge_id"}

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
        """Statements for one dialect; a statement starting `@sqlite` or `@postgres` is for that dialect only."""
        text = "\n".join(line for line in self.sql.splitlines() if not line.lstrip().startswith("--"))
        text = text.format(**DIALECTS[dialect])
        out = []
        for stmt in (s.strip() for s in text.split(";")):
            match = re.match(r"@(sqlite|postgres)\s+", stmt)
            if match:
                if match.group(1) != dialect:
                    continue
                stmt = stmt[match.end():]
            if stmt:
                out.append(stmt)
        return out


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


def embedding_of(text, dim=EMBEDDING_DIM):
    """A deterministic unit-range float32 embedding of a text (stands in for the embedding model)."""
    stream = b""
    counter = 0
    while len(stream) < dim * 3:
        stream += hashlib.sha256(text.encode() + counter.to_bytes(4, "big")).digest()
        counter += 1
    return float32_bytes(stream[:dim * 3])


_MANTISSA_HIGH = bytes(0x80 | (b & 0x7F) for b in range(256))


def float32_bytes(mantissa):
    """Little-endian float32 values in [1, 2) from 3 bytes of mantissa each (fast: slicing, no loop per value)."""
    count = len(mantissa) // 3
    out = bytearray(count * 4)
    out[0::4] = mantissa[0::3][:count]
    out[1::4] = mantissa[1::3][:count]
    out[2::4] = mantissa[2::3][:count].translate(_MANTISSA_HIGH)
    out[3::4] = b"\x3f" * count
    return bytes(out)


def floats(blob):
    return list(struct.unpack("<%df" % (len(blob) // 4), blob))


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
        """Run (sql, params) pairs in one transaction; PREVIOUS_ID in params takes the id of the last row
        inserted into a table with an `id` (vector and full-text rows carry the id of the row they index)."""
        with self.lock:
            cur = self.conn.cursor()
            last_id = None
            try:
                for text, params in statements:
                    params = tuple(last_id if p is PREVIOUS_ID else p for p in params)
                    if _keyed_by_id(text):
                        cur.execute(self._sql(text + " RETURNING id"), params)
                        last_id = cur.fetchone()[0]
                    else:
                        cur.execute(self._sql(text), params)
                self.conn.commit()
            except Exception:
                self.conn.rollback()
                raise

    def bulk_insert(self, table, columns, rows):
        """Insert many rows into one table in one transaction (seeding large brains)."""
        text = 'INSERT INTO "%s" (%s) VALUES (%s)' % (table, ", ".join(columns), ", ".join("?" * len(columns)))
        if table in VECTOR_TABLES:
            at = columns.index("embedding")
            rows = (row[:at] + (self.embedding_param(row[at]),) + row[at + 1:] for row in rows)
        with self.lock:
            cur = self.conn.cursor()
            cur.executemany(self._sql(text), rows)
            if table == "episodes":
                self._index_episodes(cur, "id > coalesce((SELECT max(rowid) FROM episodes_fts), 0)")
            self.conn.commit()

    def _index_episodes(self, cur, where, params=()):
        """Keep the full-text index (SQLite only) in step with episodes just written."""
        if self.dialect == "sqlite":
            cur.execute("INSERT INTO episodes_fts (rowid, summary, outcome, created_at) "
                        "SELECT id, summary, outcome, created_at FROM episodes WHERE " + where, params)

    def embedding_param(self, blob):
        """How an embedding (float32 bytes) is stored: the vec0 blob as it is."""
        return blob

    def export(self, since=None, tables=BRAIN_TABLES):
        out = {}
        with self.lock:
            cur = self.conn.cursor()
            for table in tables:
                if since:
                    cur.execute(self._sql('SELECT * FROM "%s" WHERE created_at > ? ORDER BY 1' % table), (since,))
                else:
                    cur.execute('SELECT * FROM "%s" ORDER BY 1' % table)
                names = [d[0] for d in cur.description]
                out[table] = [{k: _jsonable(v) for k, v in zip(names, row)} for row in cur.fetchall()]
            self.conn.commit()
        return out

    def import_rows(self, tables, on_conflict="fail"):
        """Insert exported rows (keys included) in one transaction.

        A row whose key is already present is a conflict: with on_conflict=fail nothing is imported and
        the conflicts are returned; with skip those rows are left out. Returns (imported, conflicts).
        """
        imported, conflicts = {}, []
        with self.lock:
            cur = self.conn.cursor()
            try:
                for table in BRAIN_TABLES:
                    for row in tables.get(table) or []:
                        key = VECTOR_TABLES.get(table, "id")
                        cur.execute(self._sql('SELECT 1 FROM "%s" WHERE %s = ?' % (table, key)), (row.get(key),))
                        if cur.fetchone():
                            conflicts.append({"table": table, "key": {key: row.get(key)}})
                            continue
                        values = dict((k, self._import_value(table, k, v)) for k, v in row.items())
                        cur.execute(self._sql('INSERT INTO "%s" (%s) VALUES (%s)' % (
                            table, ", ".join('"%s"' % c for c in values), ", ".join("?" * len(values)))),
                            tuple(values.values()))
                        if table == "episodes":
                            self._index_episodes(cur, "id = ?", (row["id"],))
                        imported[table] = imported.get(table, 0) + 1
                if conflicts and on_conflict == "fail":
                    self.conn.rollback()
                    return {}, conflicts
                self.conn.commit()
            except Exception:
                self.conn.rollback()
                raise
        return imported, conflicts

    def search(self, text, k=5):
        """Nearest episodes to the text's embedding (vec0 KNN) and its full-text matches (FTS5)."""
        probe = embedding_of(text)
        with self.lock:
            cur = self.conn.cursor()
            cur.execute("SELECT episode_id, distance FROM episodes_vec WHERE embedding MATCH ? AND k = ? "
                        "ORDER BY distance", (probe, k))
            nearest = [{"episode_id": r[0], "distance": r[1]} for r in cur.fetchall()]
            cur.execute("SELECT rowid FROM episodes_fts WHERE episodes_fts MATCH ? ORDER BY rank LIMIT ?",
                        ('"%s"' % text.replace('"', '""'), k))
            matches = [r[0] for r in cur.fetchall()]
            self.conn.commit()
        return {"nearest": nearest, "full_text": matches}

    def _import_value(self, table, column, value):
        if isinstance(value, dict) and set(value) == {"base64"}:
            value = base64.b64decode(value["base64"])
        if table in VECTOR_TABLES and column == "embedding":
            if isinstance(value, list):
                value = struct.pack("<%df" % len(value), *value)
            return self.embedding_param(value)
        return value

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
        load_vec0(self.conn)
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

    def embedding_param(self, blob):
        return floats(blob)  # REAL[]: the same float32 values, without pgvector

    def search(self, text, k=5):
        """Nearest episodes by L2 distance over REAL[] (no pgvector here); full text by ILIKE."""
        with self.lock:
            cur = self.conn.cursor()
            cur.execute("SELECT v.episode_id, sqrt(sum((a - b) * (a - b))) AS distance FROM episodes_vec v, "
                        "unnest(v.embedding, %s::real[]) AS t(a, b) GROUP BY v.episode_id ORDER BY distance LIMIT %s",
                        (floats(embedding_of(text)), k))
            nearest = [{"episode_id": r[0], "distance": r[1]} for r in cur.fetchall()]
            cur.execute("SELECT id FROM episodes WHERE summary ILIKE %s ORDER BY id LIMIT %s", ("%" + text + "%", k))
            matches = [r[0] for r in cur.fetchall()]
            self.conn.commit()
        return {"nearest": nearest, "full_text": matches}

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


def _keyed_by_id(text):
    match = re.match(r"\s*INSERT INTO \"?(\w+)", text, re.I)
    return not match or (match.group(1) not in VECTOR_TABLES and not match.group(1).endswith("_fts"))


def load_vec0(conn):
    """Load sqlite-vec into a connection, as the real Engine does on every connection to its brain."""
    if sqlite_vec is None:
        raise BrainError("the sqlite-vec extension is not installed; the brain's vec0 tables need it")
    conn.enable_load_extension(True)
    try:
        sqlite_vec.load(conn)
    finally:
        conn.enable_load_extension(False)


def brain_from_config(config):
    if config.database_url:
        return PostgresBrain(config.database_url)
    return SqliteBrain(config.sqlite_path)
