# -*- coding: utf-8 -*-
# Copyright: (c) 2026, engine_ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""SQLite brain: online backup API snapshots, staged restore beside the live file, O(1) swap.

vec0 (sqlite-vec) and FTS5 virtual tables are read through sqlite_tables: with the extension when this
Python can load it, else from their shadow tables; the snapshot itself is a page copy that needs neither.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import shutil
import sqlite3
from contextlib import ExitStack, contextmanager

from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain.base import (
    ENGINE_TABLES, LINEAGE_ROWS, BrainError, export_diff, fingerprint)
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain.sqlite_tables import (
    KEY, Catalog, load_extensions, quote)
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._state.files import fsync_path

SNAPSHOT_FILE = "brain.sqlite"
SIDECARS = ("-wal", "-shm")
# Tables every Engine brain has (ENGINE_CONTRACT.md): a file without them is not an Engine's brain.


@contextmanager
def _keep_owner(path, tidy=False):
    """SQLite may create -wal/-shm beside a brain it opens; give any new one the brain's owner.

    Otherwise a root-owned -shm would stop the Engine (a non-root user) from opening its brain. With `tidy` (a
    brain no Engine uses: a replaced brain, a snapshot) new sidecars are removed again once the WAL is empty.
    """
    before = dict((s, os.path.exists(path + s)) for s in SIDECARS)
    try:
        yield
    finally:
        if os.path.exists(path):
            st = os.stat(path)
            new = [path + s for s, existed in before.items() if not existed and os.path.exists(path + s)]
            wal = path + "-wal"
            if tidy and new and (not os.path.exists(wal) or os.path.getsize(wal) == 0):
                for side in new:
                    os.unlink(side)
                new = []
            for side in new:
                os.chown(side, st.st_uid, st.st_gid)
                os.chmod(side, st.st_mode & 0o777)


@contextmanager
def connect(path, readonly=True, extensions=True, tidy=False):
    """An open brain and how its vec0 tables are read; with `extensions`, sqlite-vec is loaded when this Python can.

    `tidy`: a brain no Engine uses (see _keep_owner).
    """
    if not os.path.isfile(path):
        raise BrainError("%s does not exist" % path)
    with _keep_owner(path, tidy):
        uri = "file:%s?mode=%s" % (path, "ro" if readonly else "rw")
        try:
            conn = sqlite3.connect(uri, uri=True, timeout=30)
        except sqlite3.Error as exc:
            raise BrainError("cannot open %s: %s" % (path, exc))
        try:
            access = load_extensions(conn) if extensions else {"vec0": "shadow tables", "reason": "not asked"}
            yield conn, access
        finally:
            conn.close()


def describe_conn(conn, access=None):
    """Schema, fingerprint, per logical table rows / highest key / newest created_at, and how tables were read."""
    try:
        catalog = Catalog(conn, access)
        schema = catalog.schema()
        tables = {}
        for table in catalog.logical_tables():
            relation = catalog.relation(table)
            if relation is None:
                continue
            info = {"rows": conn.execute("SELECT count(*) FROM (%s)" % relation.select).fetchone()[0],
                    "max_key": None, "max_created_at": None}
            if relation.key:
                info["max_key"] = conn.execute("SELECT max(%s) FROM (%s)" % (KEY, relation.select)).fetchone()[0]
            if "created_at" in relation.columns:
                info["max_created_at"] = conn.execute("SELECT max(created_at) FROM (%s)"
                                                      % relation.select).fetchone()[0]
            tables[table] = info
        indexes = sorted(" ".join((r[0] or "").split()) for r in conn.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"))
    except sqlite3.DatabaseError as exc:
        raise BrainError("not a readable SQLite brain: %s" % exc)
    description = {"schema": schema, "fingerprint": fingerprint({"tables": schema, "indexes": indexes}),
                   "tables": tables}
    if catalog.virtual:
        description["virtual_tables"] = catalog.reads()
        description["extensions"] = dict((access or {}), fts5=catalog.fts5_available())
    return description


def _leave_wal_mode(path):
    """Make a closed copy of a WAL-mode database a self-contained rollback-journal database.

    The copy carries the source's header, which says WAL (file format bytes 18-19 = 2). With no
    -wal file beside it and no connection open, setting them to 1 is what `PRAGMA journal_mode=DELETE`
    ends with (see the SQLite file format, "File format version numbers"), without its checkpoint
    and fsyncs: a snapshot then opens read-only without creating -wal/-shm files next to it.
    """
    if os.path.exists(path + "-wal"):
        raise BrainError("the snapshot copy %s has a WAL file; refusing to rewrite its header" % path)
    with open(path, "r+b") as handle:
        handle.seek(18)
        versions = handle.read(2)
        if versions == b"\x02\x02":
            handle.seek(18)
            handle.write(b"\x01\x01")
        elif versions != b"\x01\x01":
            raise BrainError("the snapshot copy %s has an unknown file format version %r" % (path, versions))


class SqliteBackend:
    name = "sqlite"

    def __init__(self, path):
        self.path = path

    def location(self):
        return {"path": self.path}

    def exists(self):
        return os.path.isfile(self.path)

    def describe(self, path=None):
        path = path or self.path
        with connect(path) as (conn, access):
            try:
                return describe_conn(conn, access)
            except BrainError as exc:
                raise BrainError("%s: %s" % (path, exc))

    def column_values(self, table, column):
        """Distinct non-empty values of one column of the live brain; [] when the table or column does not exist."""
        try:
            with connect(self.path, extensions=False) as (conn, dummy):
                rows = conn.execute("SELECT DISTINCT %s FROM %s" % (quote(column), quote(table))).fetchall()
        except (sqlite3.Error, BrainError):
            return []
        return sorted(set(str(r[0]) for r in rows if r[0]))

    def integrity(self, path):
        """[] when PRAGMA quick_check passes, else the problems it lists.

        quick_check reads every page and ordinary table, shadow tables included, without the modules of
        the virtual tables, so it checks a vec0 brain the same way in every Python.
        """
        try:
            with connect(path, extensions=False) as (conn, dummy):
                rows = [r[0] for r in conn.execute("PRAGMA quick_check")]
        except (sqlite3.DatabaseError, BrainError) as exc:
            return [str(exc)]
        return [] if rows == ["ok"] else rows

    def size_bytes(self):
        return sum(os.path.getsize(self.path + s) for s in ("", "-wal") if os.path.exists(self.path + s))

    def snapshot(self, directory):
        """Consistent copy through the online backup API while the Engine keeps writing.

        Returns the file names written and None: the copy is described by describe_snapshot().
        """
        dest = os.path.join(directory, SNAPSHOT_FILE)
        with connect(self.path, extensions=False) as (source, dummy):  # a page copy: no module is needed
            target = sqlite3.connect(dest)
            # The copy is a new file in a partial directory that is discarded on any failure and
            # fsynced before it counts: it needs no journal of its own (2.5x faster at 100 MB).
            target.execute("PRAGMA journal_mode=OFF")
            target.execute("PRAGMA synchronous=OFF")
            try:
                source.backup(target)  # one step: one read transaction, one point in time
            except sqlite3.Error as exc:
                raise BrainError("online backup of %s failed: %s" % (self.path, exc))
            finally:
                target.close()
        _leave_wal_mode(dest)
        os.chmod(dest, 0o600)
        return [SNAPSHOT_FILE], None  # described (and made durable) alongside its verification

    def describe_snapshot(self, snapshot_dir):
        return self.describe(os.path.join(snapshot_dir, SNAPSHOT_FILE))

    @staticmethod
    def snapshot_brain(snapshot_dir):
        """The snapshot as a brain that can be read in place (what a settled export compares with)."""
        return os.path.join(snapshot_dir, SNAPSHOT_FILE)

    def settle_basis(self, snapshot_dir):
        """What a settled export compares the replaced brain with: the snapshot file itself."""
        return self.snapshot_brain(snapshot_dir)

    @staticmethod
    def release_basis(basis):
        """Nothing to clean up: the basis is the snapshot file in the store."""

    @staticmethod
    def kept(aside):
        return os.path.exists(aside)

    def rows_by_key(self, table, rows):
        """The live rows with the keys of exported `rows`: {"key", "columns", "present": {key: {column: value}}}, or
        None when the brain has no such table (a re-import's plan)."""
        with connect(self.path) as (conn, access):
            catalog = Catalog(conn, access)
            relation = catalog.relation(table) if table in catalog.logical_tables() else None
            if relation is None:
                return None
            present = {}
            for row in rows:
                key = row.get(relation.key_name)
                found = relation.row(conn, key)
                if found is not None:
                    present[key] = dict(zip(relation.columns, found[1:]))
        return {"key": relation.key_name, "columns": relation.columns, "present": present}

    # -- snapshots taken by hand ----------------------------------------------------------------------
    def for_file(self, path):
        """The same backend over another file (a hand-made copy), to snapshot it into the store."""
        return SqliteBackend(path)

    def adoption_problem(self, path):
        """Why a hand-made copy (a plain `sqlite3 .backup` file) can't be adopted as a snapshot of this brain, or None.

        Whole: a SQLite header, as many pages as the header says, `PRAGMA quick_check`. An Engine brain: the
        contract's core tables. This Engine's: its oldest episodes (by key) are in the live brain with the same
        values (columns both have), unless the file has none.
        """
        with open(path, "rb") as handle:
            header = handle.read(100)
        if header[:16] != b"SQLite format 3\x00":
            return "is not a SQLite database"
        page_size = int.from_bytes(header[16:18], "big")
        page_size = 65536 if page_size == 1 else page_size
        pages = int.from_bytes(header[28:32], "big")
        size = os.path.getsize(path)
        if header[92:96] == header[24:28] and pages and size < pages * page_size:
            return "is truncated: %d bytes where its header says %d pages of %d bytes" % (size, pages, page_size)
        problems = self.integrity(path)
        if problems:
            return "fails its integrity check: %s" % "; ".join(problems[:3])
        with connect(path) as (conn, access):
            catalog = Catalog(conn, access)
            missing = [t for t in ENGINE_TABLES if t not in catalog.sql]
            if missing:
                return "is not an Engine brain: it has no %s table" % ", ".join(missing)
            old = catalog.relation("episodes")
            oldest = list(old.rows(conn, "%s IN (SELECT %s FROM (%s) ORDER BY %s LIMIT %d)" % (
                KEY, KEY, old.select, KEY, LINEAGE_ROWS)))
        if not oldest or not self.exists():
            return None
        with connect(self.path) as (conn, access):
            live = Catalog(conn, access).relation("episodes")
            if live is None:
                return None
            common = [c for c in live.columns if c in old.columns]
            found = 0
            for row in oldest:
                mine = live.row(conn, row[0])
                if mine and all(mine[1 + live.columns.index(c)] == row[1 + old.columns.index(c)] for c in common):
                    found += 1
        if not found:
            return ("holds none of this Engine's oldest %d episodes: it is another Engine's brain (force=true adopts it "
                    "anyway)" % len(oldest))
        return None

    # -- restore ------------------------------------------------------------------------------------
    def staged_path(self, snapshot_id):
        directory, base = os.path.split(self.path)
        return os.path.join(directory, ".%s.restore-%s" % (base, snapshot_id))

    def aside_path(self, stamp):
        return "%s.pre-restore-%s" % (self.path, stamp)

    def free_bytes(self):
        return shutil.disk_usage(os.path.dirname(self.path) or ".").free

    @staticmethod
    def privilege_problems(kind):
        """A file brain has no privileges of its own to check: the file and its directory are (stage, swap)."""
        return []

    def stage(self, snapshot_dir, snapshot_id):
        """Copy the snapshot beside the live brain with the live brain's owner and mode; return its path."""
        staged = self.staged_path(snapshot_id)
        partial = staged + ".partial"
        shutil.copyfile(os.path.join(snapshot_dir, SNAPSHOT_FILE), partial)
        st = os.stat(self.path)
        os.chown(partial, st.st_uid, st.st_gid)
        os.chmod(partial, st.st_mode & 0o777)
        fsync_path(partial)
        os.rename(partial, staged)
        return staged

    def live_name(self):
        return self.path

    def staged_identity(self, staged):
        try:
            st = os.stat(staged)
        except OSError:
            return None
        return [st.st_dev, st.st_ino]

    def discard(self, staged):
        for path in (staged, staged + ".partial"):
            if os.path.exists(path):
                os.unlink(path)

    def export(self, export, marks, after_keys=None, basis=None, source=None):
        """Append to `export` the rows of the brain (`source`, default the live one) that the snapshot does not hold.

        With `basis` (a file equal to the snapshot: its staged copy, or the snapshot itself) every table with a key
        is compared with it row by row (merge_changes): inserted rows, rows updated in place (before and after) and
        deleted rows (before). Without one (the plan) a row counts as new when its key is above the snapshot's
        highest or its created_at newer than its newest. With `after_keys` (the second, short phase, Engine stopped)
        only rows above those keys are read. Virtual tables export their logical rows (vec0 embeddings as their
        exact float32 bytes, FTS5 rows with their rowid); shadow tables are not exported on their own.
        Returns the high-water keys.
        """
        high = {}
        with ExitStack() as stack:
            conn, access = stack.enter_context(connect(source or self.path, tidy=source is not None))
            catalog = Catalog(conn, access)
            base = None
            if basis is not None and after_keys is None:
                bconn, baccess = stack.enter_context(connect(basis, tidy=basis != self.path))
                base = (bconn, Catalog(bconn, baccess))
            for table in catalog.logical_tables():
                relation = catalog.relation(table)
                if relation is None:
                    continue
                high[table] = None
                if relation.key:
                    high[table] = conn.execute("SELECT max(%s) FROM (%s)" % (KEY, relation.select)).fetchone()[0] or 0
                old = base[1].relation(table) if base and table in base[1].sql else None
                if base and relation.key and (old is None or old.key):
                    export_diff(export, table, relation.key_name, relation.columns, relation.rows(conn, ordered=True),
                                old and old.columns, old and old.rows(base[0], ordered=True))
                    continue
                self._export_new(export, conn, relation, marks, after_keys, high[table])
            for table in (base[1].logical_tables() if base else []):
                gone = base[1].relation(table) if table not in catalog.sql else None
                if gone is not None:
                    export.dropped[table] = base[0].execute("SELECT count(*) FROM (%s)" % gone.select).fetchone()[0]
        return high

    @staticmethod
    def _export_new(export, conn, relation, marks, after_keys, high):
        table = relation.name
        mark = marks.get(table) or {}
        key = mark.get("max_key") or 0
        has_created = "created_at" in relation.columns
        if after_keys is not None and high is not None:
            where, args = KEY + " > ?", (after_keys.get(table) or 0,)
        elif table not in marks:
            where, args = "", ()  # a table the snapshot does not have: all of it is new
        elif high is not None and has_created and mark.get("max_created_at"):
            where, args = KEY + " > ? OR created_at > ?", (key, mark["max_created_at"])
        elif high is not None:
            where, args = KEY + " > ?", (key,)
        elif has_created and mark.get("max_created_at"):
            where, args = "created_at > ?", (mark["max_created_at"],)
        elif after_keys is not None:
            return  # exported whole in the first phase already
        else:
            where, args = "", ()  # no way to tell new rows: keep all of them
            export.whole_tables.append(table)
        export.write(table, relation.columns, (row[1:] for row in relation.rows(conn, where, args)))

    def verify_snapshot(self, snapshot_dir):
        return self.integrity(os.path.join(snapshot_dir, SNAPSHOT_FILE))

    def describe_staged(self, staged):
        return self.describe(staged)

    def ownership_problems(self, replaced):
        """Differences in owner, group or mode between the live brain and the one it replaced."""
        live, old = os.stat(self.path), os.stat(replaced)
        problems = []
        for what, a, b in (("owner", live.st_uid, old.st_uid), ("group", live.st_gid, old.st_gid),
                           ("mode", oct(live.st_mode & 0o777), oct(old.st_mode & 0o777))):
            if a != b:
                problems.append("%s %s differs from the replaced brain's %s" % (what, a, b))
        return problems

    def _swap_in(self, source, set_aside_as):
        """Move the live brain (and its WAL) to `set_aside_as`, then `source` (and its WAL) into place."""
        if os.path.exists(self.path + "-shm"):
            os.unlink(self.path + "-shm")
        os.rename(self.path, set_aside_as)
        if os.path.exists(self.path + "-wal"):
            os.rename(self.path + "-wal", set_aside_as + "-wal")
        os.rename(source, self.path)
        if os.path.exists(source + "-wal"):
            os.rename(source + "-wal", self.path + "-wal")
        fsync_path(os.path.dirname(self.path) or ".")
        return set_aside_as

    def swap(self, staged, stamp):
        """O(1): rename the live brain aside (kept for undo), rename the staged copy into place."""
        return self._swap_in(staged, self.aside_path(stamp))

    def swap_back(self, aside, stamp):
        """Put a set-aside brain back; the brain it replaces is kept as `<brain>.replaced-<stamp>`."""
        if not os.path.isfile(aside):
            raise BrainError("set-aside brain %s does not exist" % aside)
        return self._swap_in(aside, "%s.replaced-%s" % (self.path, stamp))

    def set_aside(self):
        """Set-aside brains beside the live one, newest first."""
        directory, base = os.path.split(self.path)
        names = [n for n in os.listdir(directory or ".") if n.startswith(base + ".pre-restore-")
                 and not n.endswith(("-wal", "-shm"))]
        return [os.path.join(directory, n) for n in sorted(names, reverse=True)]
