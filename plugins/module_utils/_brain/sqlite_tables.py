# -*- coding: utf-8 -*-
# Copyright: (c) 2026, engine_ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The tables of a SQLite brain as rows can be read from them, with or without the SQLite extensions.

The Engine's brain keeps embeddings in sqlite-vec `vec0` virtual tables and text in FTS5 virtual
tables. A virtual table can be read only through its module; its data lives in ordinary *shadow*
tables (`<name>_rowids`, `_vector_chunks00`, `_auxiliary`, ... for vec0; `_content`, `_data`, ...
for FTS5) that any SQLite can read. A Catalog lists a brain's tables (ordinary, virtual, shadow) and
gives each logical table one SELECT that yields its rows, key first: through the module when this
connection has it (sqlite-vec loaded from the `sqlite-vec` package, FTS5 compiled in), else from the
shadow tables. Both ways give the same rows, byte for byte, so fingerprints, counts and exports do not
depend on the Python that runs the module.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re
import sqlite3

from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain.base import BrainError

try:
    import sqlite_vec
except ImportError:
    sqlite_vec = None

KEY = "__key"
CHUNK, OFFSET = "__chunk", "__offset"  # where a vec0 row's vectors are, when read from the shadow tables
VEC0_SHADOW = re.compile(r"^(info|chunks|rowids|auxiliary|vector_chunks\d\d|metadatachunks\d\d|metadatatext\d\d)$")
FTS5_SHADOW = ("data", "idx", "content", "docsize", "config")
VECTOR_TYPE = re.compile(r"^(float|f32|int8|i8|bit)\[(\d+)\]$", re.I)
VIRTUAL = re.compile(r"^\s*CREATE\s+VIRTUAL\s+TABLE\s+.+?\s+USING\s+(\w+)\s*\((.*)\)\s*$", re.I | re.S)


def quote(name):
    return '"%s"' % name.replace('"', '""')


def load_extensions(conn):
    """Load sqlite-vec into `conn` when this Python can; return how vec0 tables will be read.

    {"vec0": "extension" | "shadow tables", "sqlite_vec": version or None, "reason": why not, or None}
    """
    if sqlite_vec is None:
        return {"vec0": "shadow tables", "sqlite_vec": None,
                "reason": "the sqlite-vec package is not installed beside the module"}
    version = getattr(sqlite_vec, "__version__", None)
    if not hasattr(conn, "enable_load_extension"):
        return {"vec0": "shadow tables", "sqlite_vec": version,
                "reason": "this Python's sqlite3 cannot load extensions"}
    try:
        conn.enable_load_extension(True)
        try:
            sqlite_vec.load(conn)
        finally:
            conn.enable_load_extension(False)
    except (sqlite3.Error, AttributeError) as exc:
        return {"vec0": "shadow tables", "sqlite_vec": version, "reason": "loading sqlite-vec failed: %s" % exc}
    return {"vec0": "extension", "sqlite_vec": version, "reason": None}


def _split_args(text):
    """Top-level comma-separated arguments of a module's argument list."""
    args, depth, current, quote_char = [], 0, [], None
    for char in text:
        if quote_char:
            current.append(char)
            if char == quote_char:
                quote_char = None
            continue
        if char in "'\"`":
            quote_char = char
        elif char in "([":
            depth += 1
        elif char in ")]":
            depth -= 1
        elif char == "," and depth == 0:
            args.append("".join(current).strip())
            current = []
            continue
        current.append(char)
    if "".join(current).strip():
        args.append("".join(current).strip())
    return args


def _unquote(name):
    if len(name) > 1 and name[0] == name[-1] and name[0] in "'\"`":
        return name[1:-1]
    if name.startswith("[") and name.endswith("]"):
        return name[1:-1]
    return name


class Vec0Columns:
    """The columns of a vec0 table, from its CREATE VIRTUAL TABLE arguments."""

    def __init__(self, table, args):
        self.table = table
        self.key = None          # (name, "integer" | "text") of the declared primary key, if any
        self.vectors = []        # (name, bytes per vector)
        self.auxiliary = []      # names of `+name type` columns
        self.unsupported = []    # metadata and partition-key columns: readable only through the extension
        self.order = []          # declared column names, in order
        for arg in _split_args(args):
            words = arg.split()
            if not words or "=" in words[0]:
                continue  # a table option such as chunk_size=8
            if words[0].startswith("+"):
                name = _unquote(words[0][1:] or words[1])
                self.auxiliary.append(name)
                self.order.append(name)
                continue
            name = _unquote(words[0])
            kind = words[1] if len(words) > 1 else ""
            lowered = " ".join(w.lower() for w in words[1:])
            match = VECTOR_TYPE.match(kind)
            if match:
                element, dims = match.group(1).lower(), int(match.group(2))
                size = dims * 4 if element in ("float", "f32") else (dims if element in ("int8", "i8") else dims // 8)
                self.vectors.append((name, size))
            elif "primary key" in lowered:
                self.key = (name, "text" if kind.lower() == "text" else "integer")
            else:
                self.unsupported.append(name)
            self.order.append(name)

    def columns(self):
        return list(self.order) if self.key else ["rowid"] + list(self.order)

    def shadow_select(self):
        """The rows as SELECT over the shadow tables: key, the columns in declared order (vectors as NULL), then the
        vector chunk and the row's place in it, from which vector_filler() fills the vectors in."""
        if self.unsupported:
            raise BrainError("vec0 table %s has metadata or partition-key columns (%s), which only the sqlite-vec "
                             "extension can read; install the sqlite-vec package for a Python that can load SQLite "
                             "extensions on this host" % (self.table, ", ".join(self.unsupported)))
        t = self.table
        exprs = dict((name, "NULL") for name, dummy in self.vectors)
        joins = []
        if self.auxiliary:
            joins.append("LEFT JOIN %s AS a ON a.rowid = r.rowid" % quote(t + "_auxiliary"))
            for position, name in enumerate(self.auxiliary):
                exprs[name] = "a.value%02d" % position
        if self.key:
            exprs[self.key[0]] = "r.id" if self.key[1] == "text" else "r.rowid"
        exprs.setdefault("rowid", "r.rowid")
        select = ", ".join("%s AS %s" % (exprs[c], quote(c)) for c in self.columns())
        return "SELECT r.rowid AS %s, %s, r.chunk_id AS %s, r.chunk_offset AS %s FROM %s AS r %s" % (
            KEY, select, CHUNK, OFFSET, quote(t + "_rowids"), " ".join(joins))

    def vector_filler(self):
        """Turns shadow_select() rows into full rows: each vector is its slice of its chunk's blob.

        SQLite would read a chunk's whole blob (chunk_size vectors, 6 MiB for 1024 of 1536 floats) for every slice
        taken in SQL. Here each vector is read alone through incremental blob I/O (Python 3.11+), the chunk's blob
        kept open while its rows pass (rows come in rowid order, which is chunk order); older Pythons read each
        chunk once and slice it, holding one chunk per vector column.
        """
        positions = [(1 + self.columns().index(name), size, "%s_vector_chunks%02d" % (self.table, n))
                     for n, (name, size) in enumerate(self.vectors)]

        def fill(conn, rows):
            incremental = hasattr(conn, "blobopen")
            open_chunks = {}  # table -> (chunk id, open blob or the chunk's bytes)
            try:
                for row in rows:
                    row, chunk, offset = list(row[:-2]), row[-2], row[-1]
                    for index, size, table in positions:
                        if open_chunks.get(table, (None,))[0] != chunk:
                            _close(open_chunks.pop(table, (None, None))[1])
                            open_chunks[table] = (chunk, _open_chunk(conn, table, chunk, incremental))
                        source = open_chunks[table][1]
                        if source is None:
                            row[index] = None
                        elif incremental:
                            source.seek(offset * size)
                            row[index] = source.read(size)
                        else:
                            row[index] = bytes(source[offset * size:(offset + 1) * size])
                    yield tuple(row)
            finally:
                for dummy, source in open_chunks.values():
                    _close(source)
        return fill

    def module_select(self):
        # With an integer primary key, vec0 shows the key under its own name only (there is no `rowid` column).
        key = quote(self.key[0]) if self.key and self.key[1] == "integer" else "rowid"
        select = ", ".join("rowid" if c == "rowid" and not self.key else quote(c) for c in self.columns())
        return "SELECT %s AS %s, %s FROM %s" % (key, KEY, select, quote(self.table))


def _open_chunk(conn, table, chunk, incremental):
    """A vec0 vector chunk: an open read-only blob (its `rowid` column is the chunk id, not the row's rowid), or its
    bytes where this Python has no incremental blob I/O; None when the chunk is missing."""
    if incremental:
        found = conn.execute("SELECT _rowid_ FROM %s WHERE rowid = ?" % quote(table), (chunk,)).fetchone()
        return None if found is None else conn.blobopen(table, "vectors", found[0], readonly=True)
    found = conn.execute("SELECT vectors FROM %s WHERE rowid = ?" % quote(table), (chunk,)).fetchone()
    return None if found is None else found[0]


def _close(source):
    if hasattr(source, "close"):
        source.close()


class Fts5Columns:
    """The columns of an FTS5 table; only a table with its own content holds rows of its own."""

    def __init__(self, table, args):
        self.table = table
        self.names = []
        self.options = {}
        for arg in _split_args(args):
            if "=" in arg:
                key, value = arg.split("=", 1)
                self.options[key.strip().lower()] = _unquote(value.strip())
            else:
                self.names.append(_unquote(arg.split()[0]))

    @property
    def own_content(self):
        return "content" not in self.options

    def columns(self):
        return ["rowid"] + self.names

    def shadow_select(self):
        select = ", ".join("c%d AS %s" % (i, quote(n)) for i, n in enumerate(self.names))
        return "SELECT id AS %s, id AS rowid, %s FROM %s" % (KEY, select, quote(self.table + "_content"))

    def module_select(self):
        select = ", ".join(quote(n) for n in self.names)
        return "SELECT rowid AS %s, rowid, %s FROM %s" % (KEY, select, quote(self.table))


class Relation:
    """One logical table: its column names, and a SELECT that yields (key, *columns) rows.

    `key` is None for a table without a rowid; `key_name` names the key in exports (the INTEGER PRIMARY KEY
    column, the vec0 primary key, or rowid).
    """

    def __init__(self, name, columns, select, key, read_via, module=None, key_name="rowid", fill=None):
        self.name, self.columns, self.select, self.key = name, columns, select, key
        self.read_via, self.module, self.key_name, self.fill = read_via, module, key_name, fill

    def rows(self, conn, where="", args=(), ordered=False):
        """(key, *columns) rows, optionally filtered (SQL over the key, `created_at`, ...) and in key order."""
        sql = "SELECT * FROM (%s)%s%s" % (self.select, " WHERE " + where if where else "",
                                          " ORDER BY %s" % KEY if ordered else "")
        rows = conn.execute(sql, args)
        return self.fill(conn, rows) if self.fill else rows

    def row(self, conn, key):
        """The (key, *columns) row with this key, or None."""
        return next(iter(self.rows(conn, KEY + " = ?", (key,))), None)


class Catalog:
    """The tables of one open brain: ordinary, virtual (with their module) and shadow."""

    def __init__(self, conn, access=None):
        self.conn = conn
        self.access = access or {"vec0": "shadow tables"}
        rows = conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table' "
                            "AND name NOT LIKE 'sqlite_%' ORDER BY name").fetchall()
        self.sql = dict((name, sql or "") for name, sql in rows)
        self.virtual = {}
        for name, sql in self.sql.items():
            match = VIRTUAL.match(sql)
            if match:
                self.virtual[name] = (match.group(1).lower(), match.group(2))
        self.shadow = {}
        for name in self.sql:
            owner = self._owner(name)
            if owner:
                self.shadow[name] = owner
        self._fts5 = None
        self._vec0 = {}

    def _owner(self, name):
        for table, (module, dummy) in self.virtual.items():
            if not name.startswith(table + "_"):
                continue
            suffix = name[len(table) + 1:]
            if (module == "vec0" and VEC0_SHADOW.match(suffix)) or (module == "fts5" and suffix in FTS5_SHADOW):
                return table
        return None

    def logical_tables(self):
        """Tables whose rows are the brain's data: ordinary and virtual tables, not shadow tables."""
        return [name for name in self.sql if name not in self.shadow]

    def schema(self):
        """{table: {column: TYPE}} for ordinary and shadow tables, {table: {"": "<definition>"}} for virtual ones.

        Shadow tables are ordinary tables any SQLite can describe; a virtual table's columns need its module,
        so its definition stands for them. The fingerprint is the same whichever way the tables are read.
        """
        schema = {}
        for name, sql in self.sql.items():
            if name in self.virtual:
                schema[name] = {"": " ".join(sql.split())}
            else:
                schema[name] = dict((row[1], (row[2] or "").upper())
                                    for row in self.conn.execute("PRAGMA table_info(%s)" % quote(name)))
        return schema

    def fts5_available(self):
        if self._fts5 is None:
            try:
                self.conn.execute("SELECT fts5(?1)", (None,)).fetchall()
                self._fts5 = True
            except sqlite3.Error as exc:
                self._fts5 = "no such function: fts5" not in str(exc)
        return self._fts5

    def relation(self, name):
        """The Relation of a logical table, or None for a virtual table that holds no rows of its own."""
        if name not in self.virtual:
            info = self.conn.execute("PRAGMA table_info(%s)" % quote(name)).fetchall()
            columns = [row[1] for row in info]
            try:
                self.conn.execute("SELECT rowid FROM %s LIMIT 0" % quote(name))
                key = "rowid"
            except sqlite3.OperationalError:
                key = None  # WITHOUT ROWID
            select = "SELECT %s AS %s, * FROM %s" % ("rowid" if key else "NULL", KEY, quote(name))
            pks = [row for row in info if row[5]]
            key_name = pks[0][1] if len(pks) == 1 and (pks[0][2] or "").upper() == "INTEGER" else "rowid"
            return Relation(name, columns, select, key, "table", key_name=key_name)
        module, args = self.virtual[name]
        if module == "vec0":
            if name not in self._vec0:
                self._vec0[name] = self._vec0_relation(name, Vec0Columns(name, args))
            return self._vec0[name]
        if module == "fts5":
            spec = Fts5Columns(name, args)
            if not spec.own_content:
                return None  # an index of another table (or contentless): its rows are that table's
            if self.fts5_available():
                return Relation(name, spec.columns(), spec.module_select(), "rowid", "extension", module)
            return Relation(name, spec.columns(), spec.shadow_select(), "rowid", "shadow tables", module)
        raise BrainError("virtual table %s uses the module %s, which this collection cannot read" % (name, module))

    def _vec0_relation(self, name, spec):
        """vec0 rows are read from the shadow tables wherever their layout is known, with or without the extension.

        The extension reads a row's vector by loading its whole chunk (measured: 6.8 s for 6,500 rows of 1536 floats,
        against 0.07 s from the shadow tables), so it reads only what the shadow layout does not cover (metadata
        and partition-key columns). Where it is loaded, it checks the shadow reading: the same count, and the same
        first and last rows, else the table's layout is unknown and nothing is read.
        """
        key_name = spec.key[0] if spec.key and spec.key[1] == "integer" else "rowid"
        loaded = self.access.get("vec0") == "extension"
        if spec.unsupported and loaded:
            return Relation(name, spec.columns(), spec.module_select(), "rowid", "extension", "vec0", key_name)
        shadow = Relation(name, spec.columns(), spec.shadow_select(), "rowid", "shadow tables", "vec0", key_name,
                          spec.vector_filler())
        if not loaded:
            return shadow
        via = Relation(name, spec.columns(), spec.module_select(), "rowid", "extension", "vec0", key_name)
        counts = [self.conn.execute("SELECT count(*), min(%s), max(%s) FROM (%s)" % (KEY, KEY, r.select)).fetchone()
                  for r in (shadow, via)]
        ends = [[r.row(self.conn, k) for k in counts[0][1:]] for r in (shadow, via)]
        if counts[0] != counts[1] or ends[0] != ends[1]:
            raise BrainError("vec0 table %s reads differently from its shadow tables than through sqlite-vec %s (rows, "
                             "lowest and highest key %s against %s): its layout is unknown to this collection"
                             % (name, self.access.get("sqlite_vec"), list(counts[0]), list(counts[1])))
        shadow.read_via = "shadow tables, checked with the extension"
        return shadow

    def reads(self):
        """How each virtual table is read: {table: {"module", "read_via"}} (a report for the module's result)."""
        out = {}
        for name, (module, dummy) in sorted(self.virtual.items()):
            try:
                relation = self.relation(name)
            except BrainError:
                relation = None
            out[name] = {"module": module, "read_via": relation.read_via if relation else "not read (no own rows)"}
        return out
