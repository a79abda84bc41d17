# -*- coding: utf-8 -*-
# Copyright: (c) 2026, engine_ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""PostgreSQL brain: pg_dump -Fd -j from an exported snapshot, a staged pg_restore, an O(1) swap.

Two ways to stage and swap, chosen by what the role may do (`pg_restore_strategy`):

- `schema`, for the role a deployment really has (the Engine's DATABASE_URL: it owns its database,
  without CREATEDB or superuser): the dump is restored into a new schema of the brain's own
  database (pg_restore's script moved out of `public` by `pg_remap.SchemaRemap`), and the swap
  renames the schemas `public` -> aside and staged -> `public` in one transaction.
- `database`, for a role that may create databases: the dump is restored into a new database with
  pg_restore -j, and the swap renames the databases.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re
import shutil
import subprocess
import tempfile
import threading
import traceback
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain.base import (
    ENGINE_TABLES, LINEAGE_ROWS, BrainError, export_diff, fingerprint)
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain.pg_remap import (
    SchemaRemap, filtered_toc, toc_sections)

try:
    import psycopg
    from psycopg import sql
    from psycopg.conninfo import conninfo_to_dict, make_conninfo
    HAS_PSYCOPG = True
    PSYCOPG_IMPORT_ERROR = None
except ImportError:
    HAS_PSYCOPG = False
    PSYCOPG_IMPORT_ERROR = traceback.format_exc()

DUMP_DIR = "dump"  # what brain_snapshot writes: pg_dump --format=directory
# adopted dumps taken by hand are kept as they were made: custom format, or a plain SQL script
ADOPTED_DUMPS = {"custom": "dump.pgdump", "plain": "dump.sql"}
PLAIN_HEADER = b"-- PostgreSQL database dump"
PLAIN_END = b"-- PostgreSQL database dump complete"
INTEGER_TYPES = ("smallint", "integer", "bigint")
LIVE_SCHEMA = "public"
SCHEMA_PREFIX = "engine_ops_"  # staged, set-aside and replaced brains of the schema strategy; never dumped
STRATEGIES = ("auto", "schema", "database")
RESTORE_APPLICATION = "engine_ops restore"  # application_name of the sessions that load a staged schema


def _short(stamp):
    return re.sub(r"[^0-9]", "", stamp)[:14]


def dump_kind(path):
    """`directory`, `custom` or `plain` for a pg_dump output, else None."""
    if os.path.isdir(path):
        return "directory" if os.path.isfile(os.path.join(path, "toc.dat")) else None
    with open(path, "rb") as handle:
        head = handle.read(4096)
    if head.startswith(b"PGDMP"):
        return "custom"
    return "plain" if PLAIN_HEADER in head else None


def snapshot_dump(snapshot_dir):
    """The dump inside a snapshot directory: pg_dump's directory, or an adopted custom or plain dump."""
    for name in [DUMP_DIR] + sorted(ADOPTED_DUMPS.values()):
        if os.path.exists(os.path.join(snapshot_dir, name)):
            return os.path.join(snapshot_dir, name)
    return os.path.join(snapshot_dir, DUMP_DIR)


class PostgresBackend:
    name = "postgres"

    def __init__(self, host, port, user, password, database, jobs=2, run=None, strategy="auto"):
        if not HAS_PSYCOPG:
            raise BrainError("the Python library psycopg (3) is required for PostgreSQL brains")
        if not database:
            raise BrainError("name the brain database (pg_database or pg_dsn)")
        if strategy not in STRATEGIES:
            raise BrainError("pg_restore_strategy must be one of %s, not %r" % (", ".join(STRATEGIES), strategy))
        self.host, self.port, self.user, self.password, self.database = host, int(port), user, password, database
        self.jobs, self.run, self.requested_strategy = max(1, int(jobs)), run, strategy
        self._structure_cache = None
        self._strategy = None

    @classmethod
    def from_params(cls, params, run=None, container_url=None):
        fields = {"host": params.get("pg_host"), "port": params.get("pg_port"), "user": params.get("pg_user"),
                  "password": params.get("pg_password"), "dbname": params.get("pg_database")}
        dsn = params.get("pg_dsn") or (container_url if not params.get("pg_database") else None)
        if dsn:
            if not HAS_PSYCOPG:
                raise BrainError("the Python library psycopg (3) is required for PostgreSQL brains")
            try:
                parsed = conninfo_to_dict(dsn)
            except psycopg.ProgrammingError:
                raise BrainError("pg_dsn is not a valid PostgreSQL connection string")
            fields.update(dict((k, v) for k, v in parsed.items() if v))
        return cls(fields["host"] or "127.0.0.1", fields["port"] or 5432, fields["user"], fields["password"],
                   fields["dbname"], params.get("pg_jobs") or 2, run, params.get("pg_restore_strategy") or "auto")

    @property
    def strategy(self):
        """`database` when the role may create databases (and nothing else was asked for), else `schema`."""
        if self._strategy is None:
            if self.requested_strategy != "auto":
                self._strategy = self.requested_strategy
            else:
                with self._connect() as conn:
                    row = conn.execute("SELECT rolsuper OR rolcreatedb FROM pg_roles "
                                       "WHERE rolname = current_user").fetchone()
                self._strategy = "database" if row and row[0] else "schema"
        return self._strategy

    # -- connections ------------------------------------------------------------------------------
    def _connect(self, database=None, autocommit=True, schema=LIVE_SCHEMA):
        """A connection whose unqualified names resolve in `schema` (the live brain's `public` unless told)."""
        try:
            return psycopg.connect(host=self.host, port=self.port, user=self.user, password=self.password,
                                   dbname=database or self.database, autocommit=autocommit, connect_timeout=10,
                                   options="-c search_path=%s" % _quote_ident(schema))
        except psycopg.Error as exc:
            raise BrainError("cannot connect to database %s on %s:%s: %s"
                             % (database or self.database, self.host, self.port, str(exc).strip()))

    def _where(self, name):
        """Connection arguments for a brain named by the restore steps: a schema or a database, by strategy."""
        if name is None:
            return {}
        return {"schema": name} if self.strategy == "schema" else {"database": name}

    def _env(self):
        env = {"PGHOST": self.host, "PGPORT": str(self.port), "PGCONNECT_TIMEOUT": "10"}
        if self.user:
            env["PGUSER"] = self.user
        if self.password:
            env["PGPASSWORD"] = self.password
        return env

    def _run(self, argv, what):
        rc, out, err = self.run(argv, self._env())
        if rc != 0:
            raise BrainError("%s failed (exit %s): %s" % (what, rc, (err or out).strip()[-500:]))
        return out

    def location(self):
        return {"host": self.host, "port": self.port, "database": self.database}

    def exists(self):
        try:
            with self._connect() as conn:
                return conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (LIVE_SCHEMA,)).fetchone() is not None
        except BrainError as exc:
            if 'database "%s" does not exist' % self.database in str(exc):
                return False
            raise

    def size_bytes(self):
        with self._connect() as conn:
            return conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]

    def free_bytes(self):
        return None  # the server's disk is not visible from a client

    # -- describing -------------------------------------------------------------------------------
    @staticmethod
    def _structure(conn):
        """Schema, single-column primary keys and index definitions (catalog reads only, no table scans) of the
        connection's schema; index definitions name it `public`, as the live brain's do, wherever it is staged."""
        rows = conn.execute("SELECT c.table_name, c.column_name, c.data_type FROM information_schema.columns c "
                            "JOIN information_schema.tables t ON t.table_schema = c.table_schema "
                            "AND t.table_name = c.table_name AND t.table_type = 'BASE TABLE' "
                            "WHERE c.table_schema = current_schema() ORDER BY 1, 2").fetchall()
        schema = {}
        for table, column, data_type in rows:
            schema.setdefault(table, {})[column] = data_type
        keys = dict(conn.execute(
            "SELECT tc.table_name, min(kcu.column_name) FROM information_schema.table_constraints tc "
            "JOIN information_schema.key_column_usage kcu ON kcu.constraint_name = tc.constraint_name "
            "AND kcu.table_schema = tc.table_schema WHERE tc.constraint_type = 'PRIMARY KEY' "
            "AND tc.table_schema = current_schema() GROUP BY tc.table_name HAVING count(*) = 1").fetchall())
        indexes = sorted(r[0] for r in conn.execute(
            "SELECT replace(indexdef, ' ON ' || quote_ident(current_schema()) || '.', ' ON public.') "
            "FROM pg_indexes WHERE schemaname = current_schema()").fetchall())
        return schema, dict((t, k) for t, k in keys.items() if t in schema), indexes

    @classmethod
    def _describe_conn(cls, conn):
        schema, keys, indexes = cls._structure(conn)
        tables = {}
        for table, columns in schema.items():
            ident = sql.Identifier(table)
            key = keys.get(table) if columns.get(keys.get(table)) in INTEGER_TYPES else None
            info = {"rows": conn.execute(sql.SQL("SELECT count(*) FROM {}").format(ident)).fetchone()[0],
                    "max_key": None, "max_created_at": None}
            if key:
                info["max_key"] = conn.execute(sql.SQL("SELECT max({}) FROM {}").format(
                    sql.Identifier(key), ident)).fetchone()[0]
            if "created_at" in columns:
                value = conn.execute(sql.SQL("SELECT max(created_at) FROM {}").format(ident)).fetchone()[0]
                info["max_created_at"] = value.isoformat() if hasattr(value, "isoformat") else value
            tables[table] = info
        return {"schema": schema, "fingerprint": fingerprint({"tables": schema, "indexes": indexes}),
                "tables": tables, "keys": keys}

    def describe(self, name=None, schema=False):
        """The live brain, or a staged/set-aside one by the name the restore steps use (`schema`: a schema's name)."""
        with self._connect(**({"schema": name} if schema else self._where(name))) as conn:
            description = self._describe_conn(conn)
        description.pop("keys")
        return description

    def column_values(self, table, column):
        """Distinct non-empty values of one column of the live brain; [] when the table or column does not exist."""
        try:
            with self._connect() as conn:
                rows = conn.execute(sql.SQL("SELECT DISTINCT {} FROM {}").format(
                    sql.Identifier(column), sql.Identifier(table))).fetchall()
        except (psycopg.Error, BrainError):
            return []
        return sorted(set(str(r[0]) for r in rows if r[0]))

    def describe_staged(self, staged):
        return self.describe(staged)

    # -- snapshot ---------------------------------------------------------------------------------
    def snapshot(self, directory):
        """pg_dump -Fd -j from an exported snapshot; counts and keys read in that same snapshot."""
        target = os.path.join(directory, DUMP_DIR)
        conn = self._connect(autocommit=False)
        described = {}

        def describe_in_snapshot(snapshot_id):
            """Counts and high-water marks of exactly what pg_dump sees, read while it runs."""
            try:
                with self._connect(autocommit=False) as other:
                    other.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                    other.execute("SET TRANSACTION SNAPSHOT %s" % sql.quote(snapshot_id))
                    described["value"] = self._describe_conn(other)
                    other.rollback()
            except Exception as exc:  # pylint: disable=broad-except
                described["error"] = exc

        try:
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            exported = conn.execute("SELECT pg_export_snapshot()").fetchone()[0]
            worker = threading.Thread(target=describe_in_snapshot, args=(exported,))
            worker.start()
            try:
                # the schema strategy's staged and set-aside brains live in the same database: never dumped
                self._run(["pg_dump", "--format=directory", "--jobs=%d" % self.jobs, "--compress=0",
                           "--exclude-schema=%s*" % SCHEMA_PREFIX, "--snapshot=%s" % exported,
                           "--file=%s" % target, "--dbname=%s" % make_conninfo(dbname=self.database)],
                          "pg_dump of %s" % self.database)
            finally:
                worker.join()
        finally:
            conn.rollback()
            conn.close()
        if "error" in described:
            raise BrainError("reading row counts in the dump's snapshot failed: %s" % described["error"])
        description = described["value"]
        description.pop("keys")
        names = []
        for root, dummy, files in os.walk(target):
            for name in files:
                path = os.path.join(root, name)
                os.chmod(path, 0o600)
                names.append(os.path.relpath(path, directory))
        os.chmod(target, 0o700)
        return sorted(names), description

    def describe_snapshot(self, snapshot_dir):
        raise BrainError("a PostgreSQL snapshot is described while it is taken")

    def rows_by_key(self, table, rows):
        """The live rows with the keys of exported `rows` (see SqliteBackend.rows_by_key)."""
        with self._connect() as conn:
            schema, keys, dummy = self._structure(conn)
            if table not in schema:
                return None
            key = keys.get(table) or "id"
            wanted = [r.get(key) for r in rows if r.get(key) is not None]
            present = {}
            if wanted:
                with conn.cursor() as cursor:
                    cursor.execute(sql.SQL("SELECT * FROM {} WHERE {} = ANY(%s)").format(
                        sql.Identifier(table), sql.Identifier(key)), (wanted,))
                    names = [d.name for d in cursor.description]
                    for found in cursor:
                        values = dict(zip(names, found))
                        present[values[key]] = values
        return {"key": key, "columns": list(schema[table]), "present": present}

    @staticmethod
    def snapshot_brain(snapshot_dir):
        return None  # a dump: it can be compared with only once restored (the staged database)

    def settle_basis(self, snapshot_dir):
        """The snapshot loaded once more into a scratch schema (schema strategy), for the settled export to compare
        the replaced brain with while the Engine serves; None under the database strategy."""
        if self.strategy != "schema":
            return None
        scratch = "%ssettle_%s" % (SCHEMA_PREFIX, os.getpid())
        try:
            self._stage_schema(snapshot_dump(snapshot_dir), scratch)
        except BrainError:
            self.discard(scratch, schema=True)
            raise
        return scratch

    def release_basis(self, basis):
        self.discard(basis, schema=True)

    def kept(self, aside):
        """Whether a replaced brain is still there (a schema of the brain's database, or a database)."""
        if aside.startswith(SCHEMA_PREFIX):
            return self._is_schema(aside)
        with self._connect("postgres") as conn:
            return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (aside,)).fetchone() is not None

    def verify_snapshot(self, snapshot_dir):
        dump = snapshot_dump(snapshot_dir)
        try:
            if dump_kind(dump) == "plain":
                return self._plain_problems(dump)
            listing = self._run(["pg_restore", "--list", dump], "pg_restore --list")
        except (BrainError, OSError) as exc:
            return [str(exc)]
        return [] if "TABLE DATA" in listing or "TABLE" in listing else ["the archive lists no tables"]

    @staticmethod
    def _plain_problems(path):
        """A plain SQL dump is whole when it ends the way pg_dump ends it."""
        with open(path, "rb") as handle:
            handle.seek(max(0, os.path.getsize(path) - 4096))
            tail = handle.read()
        return [] if PLAIN_END in tail else ["the SQL dump does not end with pg_dump's closing line: it is cut off"]

    # -- snapshots taken by hand ------------------------------------------------------------------
    def for_file(self, path):
        """A hand-made dump seen as a brain to snapshot into the store (see AdoptedDump)."""
        return AdoptedDump(self, path)

    def adoption_problem(self, path):
        """Why a hand-made dump (pg_dump custom, directory or plain) can't be adopted as a snapshot of this brain.

        Whole: pg_restore reads all of an archive (every table's data), a plain dump ends with pg_dump's closing
        line. An Engine brain: the contract's core tables. This Engine's: the dump's oldest episodes (loaded into a
        scratch schema of the brain's database, dropped again) are in the live brain with the same values.
        """
        kind = dump_kind(path)
        if kind is None:
            return "is not a pg_dump output (custom, directory or plain format)"
        if kind == "plain":
            problems = self._plain_problems(path)
            if problems:
                return "is cut off: %s" % problems[0]
        else:
            rc, out, err = self.run(["pg_restore", "--file=/dev/null", path], self._env())
            if rc != 0:
                return "is not whole: pg_restore could not read all of it: %s" % (err or out).strip()[-300:]
        tables = self._dump_tables(path, kind)
        missing = [t for t in ENGINE_TABLES if t not in tables]
        if missing:
            return "is not an Engine brain: it has no %s table" % ", ".join(missing)
        scratch = "%sadopt_%s" % (SCHEMA_PREFIX, os.getpid())
        try:
            self._stage_schema(path, scratch)
            return self._lineage_problem(scratch)
        finally:
            self.discard(scratch, schema=True)

    def _dump_tables(self, path, kind):
        if kind == "plain":
            found = set()
            with open(path, "rb") as handle:
                for line in handle:
                    match = re.match(br"CREATE TABLE public\.([A-Za-z_][A-Za-z0-9_]*) \(", line)
                    if match:
                        found.add(match.group(1).decode())
            return found
        listing = self._run(["pg_restore", "--list", path], "pg_restore --list")
        return set(m.group(1) for m in re.finditer(r"^\d+; \d+ \d+ TABLE public (\S+) ", listing, re.M))

    def _lineage_problem(self, scratch):
        with self._connect(schema=scratch) as conn:
            with conn.cursor() as cursor:
                cursor.execute("SELECT * FROM episodes ORDER BY id LIMIT %d" % LINEAGE_ROWS)
                names = [d.name for d in cursor.description]
                oldest = [dict(zip(names, row)) for row in cursor]
        if not oldest:
            return None
        with self._connect() as conn:
            with conn.cursor() as cursor:
                cursor.execute("SELECT * FROM episodes WHERE id = ANY(%s)", ([r["id"] for r in oldest],))
                names = [d.name for d in cursor.description]
                live = dict((row[names.index("id")], dict(zip(names, row))) for row in cursor)
        found = sum(1 for row in oldest if row["id"] in live and all(
            live[row["id"]][c] == v for c, v in row.items() if c in live[row["id"]]))
        if not found:
            return ("holds none of this Engine's oldest %d episodes: it is another Engine's brain (force=true adopts it "
                    "anyway)" % len(oldest))
        return None

    # -- restore ----------------------------------------------------------------------------------
    def staged_path(self, snapshot_id):
        if self.strategy == "schema":
            return "%srestore_%s" % (SCHEMA_PREFIX, _short(snapshot_id))
        return "%s__restore_%s" % (self.database[:36], _short(snapshot_id))

    def aside_path(self, stamp):
        if self.strategy == "schema":
            return "%spre_restore_%s" % (SCHEMA_PREFIX, _short(stamp))
        return "%s__pre_restore_%s" % (self.database[:34], _short(stamp))

    def _replaced_path(self, stamp, schema):
        if schema:
            return "%sreplaced_%s" % (SCHEMA_PREFIX, _short(stamp))
        return "%s__replaced_%s" % (self.database[:36], _short(stamp))

    def _owner(self, conn, database):
        row = conn.execute("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s", (database,)).fetchone()
        return row[0] if row else None

    def privilege_problems(self, kind):
        """What the role lacks for a `snapshot` or a `restore`, named; [] when it may go ahead. Reads only."""
        with self._connect() as conn:
            who = conn.execute("SELECT current_user").fetchone()[0]
            unreadable = [r[0] for r in conn.execute(
                "SELECT c.relname FROM pg_class c WHERE c.relnamespace = %s::regnamespace AND c.relkind IN "
                "('r', 'p', 'S') AND NOT has_table_privilege(c.oid, 'SELECT') ORDER BY 1", (LIVE_SCHEMA,))]
            problems = ["role %s may not read %s (GRANT SELECT)" % (who, ", ".join(unreadable[:5]))] if unreadable else []
            if kind != "restore":
                return problems
            if self.strategy == "database":
                if not conn.execute("SELECT rolsuper OR rolcreatedb FROM pg_roles WHERE rolname = current_user"
                                    ).fetchone()[0]:
                    problems.append("role %s may not create databases (CREATEDB), which pg_restore_strategy=database "
                                    "needs; the schema strategy needs only the ownership of the brain's database" % who)
                return problems
            may_create, owns_public, public_owner = conn.execute(
                "SELECT has_database_privilege(current_database(), 'CREATE'), pg_has_role(n.nspowner, 'USAGE'), "
                "pg_get_userbyid(n.nspowner) FROM pg_namespace n WHERE n.nspname = %s", (LIVE_SCHEMA,)).fetchone()
            if not may_create:
                problems.append("role %s lacks CREATE on database %s, needed to stage the snapshot in a new schema "
                                "(GRANT CREATE ON DATABASE %s TO %s)" % (who, self.database, self.database, who))
            if not owns_public:
                problems.append("role %s does not own schema public (its owner is %s), so it cannot swap it for the "
                                "restored copy" % (who, public_owner))
            foreign = [r[0] for r in conn.execute(
                "SELECT c.relname FROM pg_class c WHERE c.relnamespace = %s::regnamespace AND c.relkind IN ('r', 'p') "
                "AND NOT pg_has_role(c.relowner, 'USAGE') ORDER BY 1", (LIVE_SCHEMA,))]
            if foreign:
                problems.append("role %s may not act as the owner of %s, so it cannot recreate them"
                                % (who, ", ".join(foreign[:5])))
            extensions = [r[0] for r in conn.execute(
                "SELECT extname FROM pg_extension WHERE extnamespace = %s::regnamespace ORDER BY 1", (LIVE_SCHEMA,))]
            if extensions:
                problems.append("extension %s lives in schema public and a schema swap would move it aside with the "
                                "replaced brain: restore with a role that may create databases "
                                "(pg_restore_strategy=database)" % ", ".join(extensions))
        return problems

    def stage(self, snapshot_dir, snapshot_id):
        staged = self.staged_path(snapshot_id)
        dump = snapshot_dump(snapshot_dir)
        if self.strategy == "schema":
            self._stage_schema(dump, staged)
            return staged
        with self._connect("postgres") as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(staged)))
            conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0 OWNER {}").format(
                sql.Identifier(staged), sql.Identifier(self._owner(conn, self.database))))
        # a failed restore is discarded by the caller (_restore.stage), whatever the backend
        if dump_kind(dump) == "plain":
            self._run(["psql", "--no-psqlrc", "--quiet", "--set=ON_ERROR_STOP=1", "--single-transaction",
                       "--file=%s" % dump, "--dbname=%s" % make_conninfo(dbname=staged)], "psql into %s" % staged)
        else:
            self._run(["pg_restore", "--jobs=%d" % self.jobs, "--exit-on-error",
                       "--dbname=%s" % make_conninfo(dbname=staged), dump], "pg_restore into %s" % staged)
        self._checkpoint()
        return staged

    def _stage_schema(self, dump, staged):
        """The dump restored into the new schema `staged` of the brain's database, with public's owner and grants.

        pg_restore prints the script of each part (definitions, each table's data, indexes and constraints),
        SchemaRemap moves it into `staged` and psql runs it in one transaction; tables load `jobs` at a time.
        """
        with self._connect() as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(staged)))
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(staged)))
            owner = conn.execute("SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = %s",
                                 (LIVE_SCHEMA,)).fetchone()[0]
            conn.execute(sql.SQL("ALTER SCHEMA {} OWNER TO {}").format(sql.Identifier(staged), sql.Identifier(owner)))
            grants = conn.execute(
                "SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END, "
                "a.privilege_type FROM pg_namespace n, aclexplode(n.nspacl) a "
                "WHERE n.nspname = %s AND a.grantee <> n.nspowner", (LIVE_SCHEMA,)).fetchall()
            for grantee, privilege in grants:
                conn.execute(sql.SQL("GRANT {} ON SCHEMA {} TO {}").format(
                    sql.SQL(privilege), sql.Identifier(staged), sql.SQL(grantee)))
        scratch = tempfile.mkdtemp(prefix="engine_ops_toc_")
        try:
            if dump_kind(dump) == "plain":
                self._restore_part(scratch, "SQL dump", None, dump, staged)
                return
            kept, dummy = filtered_toc(self._run(["pg_restore", "--list", dump], "pg_restore --list"))
            before, data, after = toc_sections(kept)
            self._restore_part(scratch, "definitions", before, dump, staged)
            with ThreadPoolExecutor(max_workers=self.jobs) as pool:
                for done in [pool.submit(self._restore_part, scratch, "data-%d" % i, [entry], dump, staged)
                             for i, entry in enumerate(data)]:
                    done.result()
            self._restore_part(scratch, "indexes", after, dump, staged)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def _restore_part(self, scratch, part, entries, dump, staged):
        """One part of the dump (its TOC `entries`; all of a plain dump when None) run into schema `staged`."""
        if entries == []:
            return
        env = dict(os.environ, PGAPPNAME=RESTORE_APPLICATION, **self._env())
        errors = [tempfile.TemporaryFile(dir=scratch) for dummy in range(2)]
        if entries is None:
            restore = subprocess.Popen(["cat", dump], stdout=subprocess.PIPE, stderr=errors[0])
        else:
            listing = os.path.join(scratch, part + ".list")
            with open(listing, "w") as handle:
                handle.write("\n".join(entries) + "\n")
            restore = subprocess.Popen(["pg_restore", "--use-list=%s" % listing, "--schema=%s" % LIVE_SCHEMA,
                                        "--file=-", dump], stdout=subprocess.PIPE, stderr=errors[0], env=env)
        psql = subprocess.Popen(["psql", "--no-psqlrc", "--quiet", "--set=ON_ERROR_STOP=1", "--single-transaction",
                                 "--dbname=%s" % make_conninfo(dbname=self.database)],
                                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=errors[1], env=env)
        remap = SchemaRemap(staged)
        try:
            for line in restore.stdout:
                psql.stdin.write(remap.line(line))
            psql.stdin.close()
        except (BrokenPipeError, OSError):
            pass  # psql stopped at an error: it says which below
        finally:
            restore.stdout.close()
        codes = (restore.wait(), psql.wait())
        if any(codes):
            said = []
            for handle in errors:
                handle.seek(0)
                said.append(handle.read().decode("utf-8", "replace").strip())
            raise BrainError("restoring the %s of the snapshot into schema %s failed (pg_restore exit %s, psql exit %s):"
                             " %s" % (part, staged, codes[0], codes[1], (" ".join(t for t in said if t))[-500:]))

    def _checkpoint(self):
        """Write the restored pages out now, while the Engine serves, not during the swap's downtime."""
        try:
            with self._connect("postgres") as conn:
                conn.execute("CHECKPOINT")
        except BrainError:
            pass
        except psycopg.Error:
            pass  # needs superuser or pg_checkpoint; without it the server checkpoints on its own schedule

    def live_name(self):
        return LIVE_SCHEMA if self.strategy == "schema" else self.database

    def staged_identity(self, staged):
        """What the named brain is, whatever it is called later: its schema's or its database's oid."""
        if self.strategy == "schema":
            with self._connect() as conn:
                row = conn.execute("SELECT oid FROM pg_namespace WHERE nspname = %s", (staged,)).fetchone()
            return ["schema", int(row[0])] if row else None
        with self._connect("postgres") as conn:
            row = conn.execute("SELECT oid FROM pg_database WHERE datname = %s", (staged,)).fetchone()
        return [int(row[0])] if row else None

    def discard(self, staged, schema=False):
        if staged in (self.database, LIVE_SCHEMA):
            raise BrainError("refusing to discard the live brain %s" % staged)
        if schema or self.strategy == "schema":
            with self._connect() as conn:
                conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(staged)))
            return
        with self._connect("postgres") as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(staged)))

    def sessions(self):
        with self._connect() as conn:
            rows = conn.execute("SELECT coalesce(nullif(application_name, ''), usename), client_addr::text "
                                "FROM pg_stat_activity WHERE datname = current_database() "
                                # clients only: an autovacuum worker (no user, no application) is not the Engine
                                "AND backend_type = 'client backend' AND pid <> pg_backend_pid()").fetchall()
        return ["session %s from %s" % (name, addr or "local socket") for name, addr in rows]

    def export(self, export, marks, after_keys=None, basis=None, source=None):
        """Append to `export` the rows of the live brain that the snapshot does not hold.

        With `basis` (the staged database, equal to the snapshot) every table with an integer primary key is
        compared with it row by row, both read in key order through server-side cursors: inserted, updated
        (before and after) and deleted rows. Otherwise rows above the snapshot's highest key or newer than its
        newest created_at count as new; `after_keys` (Engine stopped) reads only rows above those keys.
        """
        high = {}
        with ExitStack() as stack:
            # `source`: a replaced brain (a schema, for the settled export) instead of the live one
            conn = stack.enter_context(self._connect(autocommit=False, **self._where(source)))
            if after_keys is None or self._structure_cache is None:
                self._structure_cache = self._structure(conn)  # the second phase (downtime) reuses it
            schema, keys, dummy = self._structure_cache
            base = None
            if basis is not None and after_keys is None:
                bconn = stack.enter_context(self._connect(autocommit=False, **self._where(basis)))
                base = (bconn,) + self._structure(bconn)[:2]
            for table, columns in sorted(schema.items()):
                key = keys.get(table)
                key = key if columns.get(key) in INTEGER_TYPES else None
                mark = marks.get(table) or {}
                ident = sql.Identifier(table)
                high[table] = conn.execute(sql.SQL("SELECT max({}) FROM {}").format(
                    sql.Identifier(key), ident)).fetchone()[0] if key else None
                if base and key and (table not in base[1] or base[2].get(table) == key):
                    self._export_changes(export, conn, table, key, base if table in base[1] else None)
                    continue
                if after_keys is not None and key and (high[table] or 0) <= (after_keys.get(table) or 0):
                    continue  # nothing new since the first phase
                select = sql.SQL("SELECT * FROM {}").format(ident)
                if after_keys is not None and key:
                    query, args = sql.SQL("{} WHERE {} > %s").format(select, sql.Identifier(key)), (
                        after_keys.get(table) or 0,)
                elif table not in marks:
                    query, args = select, ()
                elif key and "created_at" in columns and mark.get("max_created_at"):
                    query, args = sql.SQL("{} WHERE {} > %s OR created_at > %s").format(
                        select, sql.Identifier(key)), (mark.get("max_key") or 0, mark["max_created_at"])
                elif key:
                    query, args = sql.SQL("{} WHERE {} > %s").format(select, sql.Identifier(key)), (
                        mark.get("max_key") or 0,)
                elif "created_at" in columns and mark.get("max_created_at"):
                    query, args = sql.SQL("{} WHERE created_at > %s").format(select), (mark["max_created_at"],)
                elif after_keys is not None:
                    continue  # exported whole in the first phase already
                else:
                    query, args = select, ()  # no way to tell new rows: keep all of them
                    export.whole_tables.append(table)
                with conn.cursor(name="engine_ops_export") as cursor:  # server-side: memory stays flat
                    cursor.execute(query, args)
                    first = cursor.fetchmany(1)
                    export.write(table, [d.name for d in cursor.description], _chain(first, cursor))
            if base:
                for table in sorted(set(base[1]) - set(schema)):
                    export.dropped[table] = base[0].execute(sql.SQL("SELECT count(*) FROM {}").format(
                        sql.Identifier(table))).fetchone()[0]
                base[0].rollback()
            conn.rollback()
        return high

    @staticmethod
    def _export_changes(export, conn, table, key, base):
        select = sql.SQL("SELECT {}, * FROM {} ORDER BY 1").format(sql.Identifier(key), sql.Identifier(table))
        with conn.cursor(name="engine_ops_live") as live:  # server-side, in key order: memory stays flat
            live.execute(select)
            first = live.fetchmany(1)
            columns = [d.name for d in live.description][1:]
            if base is None:  # a table the snapshot does not have: all of it is new
                export_diff(export, table, key, columns, _chain(first, live))
                return
            with base[0].cursor(name="engine_ops_snapshot") as old:
                old.execute(select)
                old_first = old.fetchmany(1)
                export_diff(export, table, key, columns, _chain(first, live), [d.name for d in old.description][1:],
                            _chain(old_first, old))

    def _rename_all(self, pairs):
        with self._connect("postgres") as conn:
            for database, dummy in pairs:
                conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s "
                             "AND pid <> pg_backend_pid()", (database,))
            with conn.transaction():
                for old, new in pairs:
                    rename = sql.SQL("ALTER DATABASE {} RENAME TO {}")
                    conn.execute(rename.format(sql.Identifier(old), sql.Identifier(new)))

    def _rename_schemas(self, pairs):
        """All renames in one transaction: the brain's `public` is one brain or the other, never neither."""
        with self._connect() as conn:
            with conn.transaction():
                conn.execute("SET LOCAL lock_timeout = '30s'")
                for old, new in pairs:
                    rename = sql.SQL("ALTER SCHEMA {} RENAME TO {}")
                    conn.execute(rename.format(sql.Identifier(old), sql.Identifier(new)))

    def _is_schema(self, name):
        with self._connect() as conn:
            return conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (name,)).fetchone() is not None

    def swap(self, staged, stamp):
        aside = self.aside_path(stamp)
        if self.strategy == "schema":
            self._rename_schemas([(LIVE_SCHEMA, aside), (staged, LIVE_SCHEMA)])
        else:
            self._rename_all([(self.database, aside), (staged, self.database)])
        return aside

    def swap_back(self, aside, stamp):
        """Put a set-aside brain back (a schema of the brain's database, or a database, whichever it is)."""
        if aside.startswith(SCHEMA_PREFIX) and self._is_schema(aside):
            replaced = self._replaced_path(stamp, True)
            self._rename_schemas([(LIVE_SCHEMA, replaced), (aside, LIVE_SCHEMA)])
            return replaced
        replaced = self._replaced_path(stamp, False)
        with self._connect("postgres") as conn:
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (aside,)).fetchone() is None:
                raise BrainError("set-aside brain %s exists neither as a schema of %s nor as a database"
                                 % (aside, self.database))
        self._rename_all([(self.database, replaced), (aside, self.database)])
        return replaced

    def ownership_problems(self, replaced):
        if replaced.startswith(SCHEMA_PREFIX) and self._is_schema(replaced):
            with self._connect() as conn:
                live, old = (self._schema_rights(conn, name) for name in (LIVE_SCHEMA, replaced))
            differ = "%s of the restored brain differ from the replaced brain's: %s against %s"
            return [differ % (what, live[what], old[what]) for what in sorted(live) if live[what] != old[what]]
        with self._connect("postgres") as conn:
            live, old = self._owner(conn, self.database), self._owner(conn, replaced)
        return [] if live == old else ["owner %s differs from the replaced brain's %s" % (live, old)]

    @staticmethod
    def _schema_rights(conn, schema):
        owner = conn.execute("SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = %s",
                             (schema,)).fetchone()[0]
        grants = sorted("%s:%s" % r for r in conn.execute(
            "SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END, a.privilege_type "
            "FROM pg_namespace n, aclexplode(n.nspacl) a WHERE n.nspname = %s AND a.grantee <> n.nspowner", (schema,)))
        tables = dict(conn.execute("SELECT c.relname, pg_get_userbyid(c.relowner) FROM pg_class c "
                                   "WHERE c.relnamespace = %s::regnamespace AND c.relkind IN ('r', 'p')", (schema,)))
        return {"schema owner": owner, "schema grants": grants, "table owners": sorted(set(tables.values()))}

    def set_aside(self):
        if self.strategy == "schema":
            with self._connect() as conn:
                rows = conn.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE %s ORDER BY 1 DESC",
                                    (SCHEMA_PREFIX.replace("_", "\\_") + "pre\\_restore\\_%",)).fetchall()
            return [r[0] for r in rows]
        with self._connect("postgres") as conn:
            rows = conn.execute("SELECT datname FROM pg_database WHERE datname LIKE %s ORDER BY 1 DESC",
                                (self.database[:34] + "__pre_restore_%",)).fetchall()
        return [r[0] for r in rows]


class AdoptedDump:
    """A dump taken by hand, snapshotted into the store as it is: the file (or pg_dump's directory) copied, and
    described by loading it into a scratch schema of the brain's database, dropped again."""

    name = "postgres"

    def __init__(self, backend, path):
        self.backend, self.path, self.kind = backend, path, dump_kind(path)

    def location(self):
        return dict(self.backend.location(), adopted=self.path)

    def snapshot(self, directory):
        if self.kind == "directory":
            target = os.path.join(directory, DUMP_DIR)
            shutil.copytree(self.path, target)
        else:
            target = os.path.join(directory, ADOPTED_DUMPS[self.kind])
            shutil.copyfile(self.path, target)
        names = []
        for root, dummy, files in os.walk(directory):
            for name in files:
                os.chmod(os.path.join(root, name), 0o600)
                names.append(os.path.relpath(os.path.join(root, name), directory))
        scratch = "%sadopt_%s" % (SCHEMA_PREFIX, os.getpid())
        try:
            self.backend._stage_schema(target, scratch)  # pylint: disable=protected-access
            description = self.backend.describe(scratch, schema=True)
        finally:
            self.backend.discard(scratch, schema=True)
        return sorted(names), description

    def verify_snapshot(self, snapshot_dir):
        return self.backend.verify_snapshot(snapshot_dir)


def _quote_ident(name):
    return '"%s"' % name.replace('"', '""')


def _chain(first, rest):
    yield from first
    yield from rest
