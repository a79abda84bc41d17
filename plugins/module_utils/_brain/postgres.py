# -*- coding: utf-8 -*-
# Copyright: (c) 2026, engine_ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""PostgreSQL brain: pg_dump -Fd -j from an exported snapshot, staged pg_restore, swap by renaming databases."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re
import threading
import traceback
from contextlib import ExitStack

from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain.base import BrainError, export_diff, fingerprint

try:
    import psycopg
    from psycopg import sql
    from psycopg.conninfo import conninfo_to_dict
    HAS_PSYCOPG = True
    PSYCOPG_IMPORT_ERROR = None
except ImportError:
    HAS_PSYCOPG = False
    PSYCOPG_IMPORT_ERROR = traceback.format_exc()

DUMP_DIR = "dump"
INTEGER_TYPES = ("smallint", "integer", "bigint")


def _short(stamp):
    return re.sub(r"[^0-9]", "", stamp)[:14]


class PostgresBackend:
    name = "postgres"

    def __init__(self, host, port, user, password, database, jobs=2, run=None):
        if not HAS_PSYCOPG:
            raise BrainError("the Python library psycopg (3) is required for PostgreSQL brains")
        if not database:
            raise BrainError("name the brain database (pg_database or pg_dsn)")
        self.host, self.port, self.user, self.password, self.database = host, int(port), user, password, database
        self.jobs, self.run = max(1, int(jobs)), run
        self._structure_cache = None

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
                   fields["dbname"], params.get("pg_jobs") or 2, run)

    # -- connections ------------------------------------------------------------------------------
    def _connect(self, database=None, autocommit=True):
        try:
            return psycopg.connect(host=self.host, port=self.port, user=self.user, password=self.password,
                                   dbname=database or self.database, autocommit=autocommit, connect_timeout=10)
        except psycopg.Error as exc:
            raise BrainError("cannot connect to database %s on %s:%s: %s"
                             % (database or self.database, self.host, self.port, str(exc).strip()))

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
        with self._connect("postgres") as conn:
            return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (self.database,)).fetchone() is not None

    def size_bytes(self):
        with self._connect("postgres") as conn:
            return conn.execute("SELECT pg_database_size(%s)", (self.database,)).fetchone()[0]

    def free_bytes(self):
        return None  # the server's disk is not visible from a client

    # -- describing -------------------------------------------------------------------------------
    @staticmethod
    def _structure(conn):
        """Schema, single-column primary keys and index definitions (catalog reads only, no table scans)."""
        rows = conn.execute("SELECT c.table_name, c.column_name, c.data_type FROM information_schema.columns c "
                            "JOIN information_schema.tables t ON t.table_schema = c.table_schema "
                            "AND t.table_name = c.table_name AND t.table_type = 'BASE TABLE' "
                            "WHERE c.table_schema = 'public' ORDER BY 1, 2").fetchall()
        schema = {}
        for table, column, data_type in rows:
            schema.setdefault(table, {})[column] = data_type
        keys = dict(conn.execute(
            "SELECT tc.table_name, min(kcu.column_name) FROM information_schema.table_constraints tc "
            "JOIN information_schema.key_column_usage kcu ON kcu.constraint_name = tc.constraint_name "
            "AND kcu.table_schema = tc.table_schema WHERE tc.constraint_type = 'PRIMARY KEY' "
            "AND tc.table_schema = 'public' GROUP BY tc.table_name HAVING count(*) = 1").fetchall())
        indexes = sorted(r[0] for r in conn.execute(
            "SELECT indexdef FROM pg_indexes WHERE schemaname = 'public'").fetchall())
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

    def describe(self, database=None):
        with self._connect(database) as conn:
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
                self._run(["pg_dump", "--format=directory", "--jobs=%d" % self.jobs, "--compress=0",
                           "--snapshot=%s" % exported, "--file=%s" % target, "--dbname=%s" % self.database],
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

    def verify_snapshot(self, snapshot_dir):
        try:
            listing = self._run(["pg_restore", "--list", os.path.join(snapshot_dir, DUMP_DIR)], "pg_restore --list")
        except BrainError as exc:
            return [str(exc)]
        return [] if "TABLE DATA" in listing or "TABLE" in listing else ["the archive lists no tables"]

    # -- restore ----------------------------------------------------------------------------------
    def staged_path(self, snapshot_id):
        return "%s__restore_%s" % (self.database[:36], _short(snapshot_id))

    def aside_path(self, stamp):
        return "%s__pre_restore_%s" % (self.database[:34], _short(stamp))

    def _owner(self, conn, database):
        row = conn.execute("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s", (database,)).fetchone()
        return row[0] if row else None

    def stage(self, snapshot_dir, snapshot_id):
        staged = self.staged_path(snapshot_id)
        with self._connect("postgres") as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(staged)))
            conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0 OWNER {}").format(
                sql.Identifier(staged), sql.Identifier(self._owner(conn, self.database))))
        # a failed restore is discarded by the caller (_restore.stage), whatever the backend
        self._run(["pg_restore", "--jobs=%d" % self.jobs, "--exit-on-error", "--dbname=%s" % staged,
                   os.path.join(snapshot_dir, DUMP_DIR)], "pg_restore into %s" % staged)
        self._checkpoint()
        return staged

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
        return self.database

    def staged_identity(self, staged):
        with self._connect("postgres") as conn:
            row = conn.execute("SELECT oid FROM pg_database WHERE datname = %s", (staged,)).fetchone()
        return [int(row[0])] if row else None

    def discard(self, staged):
        with self._connect("postgres") as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(staged)))

    def sessions(self):
        with self._connect("postgres") as conn:
            rows = conn.execute("SELECT coalesce(nullif(application_name, ''), usename), client_addr::text "
                                "FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                                (self.database,)).fetchall()
        return ["session %s from %s" % (name, addr or "local socket") for name, addr in rows]

    def export(self, export, marks, after_keys=None, basis=None):
        """Append to `export` the rows of the live brain that the snapshot does not hold.

        With `basis` (the staged database, equal to the snapshot) every table with an integer primary key is
        compared with it row by row, both read in key order through server-side cursors: inserted, updated
        (before and after) and deleted rows. Otherwise rows above the snapshot's highest key or newer than its
        newest created_at count as new; `after_keys` (Engine stopped) reads only rows above those keys.
        """
        high = {}
        with ExitStack() as stack:
            conn = stack.enter_context(self._connect(autocommit=False))
            if after_keys is None or self._structure_cache is None:
                self._structure_cache = self._structure(conn)  # the second phase (downtime) reuses it
            schema, keys, dummy = self._structure_cache
            base = None
            if basis is not None and after_keys is None:
                bconn = stack.enter_context(self._connect(basis, autocommit=False))
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

    def swap(self, staged, stamp):
        aside = self.aside_path(stamp)
        self._rename_all([(self.database, aside), (staged, self.database)])
        return aside

    def swap_back(self, aside, stamp):
        replaced = "%s__replaced_%s" % (self.database[:36], _short(stamp))
        with self._connect("postgres") as conn:
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (aside,)).fetchone() is None:
                raise BrainError("set-aside database %s does not exist" % aside)
        self._rename_all([(self.database, replaced), (aside, self.database)])
        return replaced

    def ownership_problems(self, replaced):
        with self._connect("postgres") as conn:
            live, old = self._owner(conn, self.database), self._owner(conn, replaced)
        return [] if live == old else ["owner %s differs from the replaced brain's %s" % (live, old)]

    def set_aside(self):
        with self._connect("postgres") as conn:
            rows = conn.execute("SELECT datname FROM pg_database WHERE datname LIKE %s ORDER BY 1 DESC",
                                (self.database[:34] + "__pre_restore_%",)).fetchall()
        return [r[0] for r in rows]


def _chain(first, rest):
    yield from first
    yield from rest
