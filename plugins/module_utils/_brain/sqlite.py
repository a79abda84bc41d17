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
from contextlib import contextmanager

from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain.base import BrainError, fingerprint
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain.sqlite_tables import (
    KEY, Catalog, load_extensions, quote)
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._files import fsync_path

SNAPSHOT_FILE = "brain.sqlite"
SIDECARS = ("-wal", "-shm")


@contextmanager
def _keep_owner(path):
    """SQLite may create -wal/-shm beside a brain it opens; give any new one the brain's owner.

    Otherwise a root-owned -shm would stop the Engine (a non-root user) from opening its brain.
    """
    before = dict((s, os.path.exists(path + s)) for s in SIDECARS)
    try:
        yield
    finally:
        if os.path.exists(path):
            st = os.stat(path)
            for suffix, existed in before.items():
                side = path + suffix
                if not existed and os.path.exists(side):
                    os.chown(side, st.st_uid, st.st_gid)
                    os.chmod(side, st.st_mode & 0o777)


@contextmanager
def connect(path, readonly=True, extensions=True):
    """An open brain; with `extensions`, sqlite-vec is loaded when this Python can (conn.brain_access says)."""
    if not os.path.isfile(path):
        raise BrainError("%s does not exist" % path)
    with _keep_owner(path):
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

    # -- restore ------------------------------------------------------------------------------------
    def staged_path(self, snapshot_id):
        directory, base = os.path.split(self.path)
        return os.path.join(directory, ".%s.restore-%s" % (base, snapshot_id))

    def aside_path(self, stamp):
        return "%s.pre-restore-%s" % (self.path, stamp)

    def free_bytes(self):
        return shutil.disk_usage(os.path.dirname(self.path) or ".").free

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

    def export(self, export, marks, after_keys=None):
        """Append to `export` the live rows the snapshot does not have.

        A row is not in the snapshot when its key is above the snapshot's highest or its created_at is
        newer than the snapshot's newest. With `after_keys` (the second, short phase, Engine stopped) only
        rows above those keys are read. Virtual tables export their logical rows (vec0 embeddings as their
        exact float32 bytes, FTS5 rows with their rowid); shadow tables are not exported on their own.
        Returns the high-water keys.
        """
        high = {}
        with connect(self.path) as (conn, access):
            catalog = Catalog(conn, access)
            for table in catalog.logical_tables():
                relation = catalog.relation(table)
                if relation is None:
                    continue
                mark = marks.get(table) or {}
                key = mark.get("max_key") or 0
                high[table] = None
                if relation.key:
                    high[table] = conn.execute("SELECT max(%s) FROM (%s)" % (KEY, relation.select)).fetchone()[0] or 0
                has_created = "created_at" in relation.columns
                if after_keys is not None and high[table] is not None:
                    where, args = KEY + " > ?", (after_keys.get(table) or 0,)
                elif table not in marks:
                    where, args = "", ()  # a table the snapshot does not have: all of it is new
                elif high[table] is not None and has_created and mark.get("max_created_at"):
                    where, args = KEY + " > ? OR created_at > ?", (key, mark["max_created_at"])
                elif high[table] is not None:
                    where, args = KEY + " > ?", (key,)
                elif has_created and mark.get("max_created_at"):
                    where, args = "created_at > ?", (mark["max_created_at"],)
                elif after_keys is not None:
                    continue  # exported whole in the first phase already
                else:
                    where, args = "", ()  # no way to tell new rows: keep all of them
                    export.whole_tables.append(table)
                export.write(table, relation.columns, (row[1:] for row in relation.rows(conn, where, args)))
        return high

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
