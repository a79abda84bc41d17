# -*- coding: utf-8 -*-
# Copyright: (c) 2026, engine_ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""pg_restore's plain SQL moved from schema `public` into another schema of the same database.

A role that owns its database but may not create databases stages a restore in a new schema of the
brain's own database. pg_dump qualifies every name with its schema (`public.episodes`,
`nextval('public.episodes_id_seq'::regclass)`, `setval('public.episodes_id_seq', ...)`), so the
script pg_restore prints is rewritten on its way to psql: the schema qualifier `public.` outside
string literals, comments and dollar-quoted bodies, and the `public.` prefix of a string literal that
names a relation (`'...'::regclass`, the first argument of `setval`). Row data (COPY ... FROM stdin
up to the `\\.` line) and every other literal pass through untouched.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

# What the script holds, token by token, outside the data of a COPY.
_TOKEN = re.compile(br"""(?P<string>[Ee]?')|(?P<ident>")|(?P<dollar>\$(?:[A-Za-z_][A-Za-z_0-9]*)?\$)"""
                    br"""|(?P<comment>--)|(?P<block>/\*)|(?P<public>(?<![A-Za-z0-9_$."])public\.)""")
_RELATION_LITERAL = re.compile(br'^public\.([A-Za-z_][A-Za-z0-9_$]*|"(?:[^"]|"")+")$')
_REGCLASS_AFTER = re.compile(br"\s*::\s*regclass")
_SETVAL_BEFORE = re.compile(br"setval\(\s*$")
_COPY = re.compile(br"^COPY .* FROM stdin;\r?\n?$")
# TOC entries that are about the schema itself or an extension: the staged schema is made by the caller.
_SKIPPED_TOC = re.compile(r"^\d+; \d+ \d+ (SCHEMA|EXTENSION|COMMENT - (SCHEMA|EXTENSION)|ACL - SCHEMA) ")


def quote_ident(name):
    return '"%s"' % name.replace('"', '""')


class SchemaRemap:
    """Feed it the script line by line (bytes, with their line ends); it returns each line rewritten."""

    def __init__(self, target):
        self.target = quote_ident(target).encode("utf-8") + b"."
        self.in_copy = False
        self.inside = None  # what closes a literal, quoted identifier, comment or body still open at line end
        self.escaped = False  # the open literal is an E'' string (backslash escapes)

    def line(self, text):
        if self.in_copy:
            if text.rstrip(b"\r\n") == b"\\.":
                self.in_copy = False
            return text
        if self.inside is None and text.startswith(b"\\"):
            return text  # a psql meta-command (\restrict, \connect)
        rewritten = self._rewrite(text)
        if self.inside is None and _COPY.match(rewritten):
            self.in_copy = True
        return rewritten

    def _rewrite(self, text):
        out, pos = [], 0
        if self.inside is not None:  # carried over from an earlier line: passed through as it is
            end = self._closing(text, 0)
            if end < 0:
                return text
            pos = end + len(self.inside)
            out.append(text[:pos])
            self.inside = None
        while pos < len(text):
            found = _TOKEN.search(text, pos)
            if not found:
                out.append(text[pos:])
                break
            out.append(text[pos:found.start()])
            kind, token = found.lastgroup, found.group()
            pos = found.end()
            if kind == "public":
                out.append(self.target)
                continue
            if kind == "comment":
                out.append(text[found.start():])
                break
            self.inside = {"string": b"'", "ident": b'"', "dollar": token, "block": b"*/"}[kind]
            self.escaped = kind == "string" and token[:1] in b"Ee"
            end = self._closing(text, pos)
            if end < 0:  # goes on past this line
                out.append(text[found.start():])
                break
            content = text[pos:end]
            if kind == "string" and _RELATION_LITERAL.match(content) and (
                    _REGCLASS_AFTER.match(text, end + 1) or _SETVAL_BEFORE.search(text, 0, found.start())):
                content = self.target + content[len(b"public."):]
            pos = end + len(self.inside)
            if kind == "ident" and content == b"public" and text[pos:pos + 1] == b".":
                out.append(self.target)  # "public".name
                pos += 1
                self.inside = None
                continue
            out.append(token + content + self.inside)
            self.inside = None
        return b"".join(out)

    def _closing(self, text, pos):
        """Offset of the token that ends what is open, or -1 when it goes on past this line."""
        if self.inside == b"'":
            while True:
                end = text.find(b"'", pos)
                if end < 0:
                    return -1
                if self.escaped and _backslashes_before(text, end) % 2:
                    pos = end + 1
                    continue
                if text[end + 1:end + 2] == b"'":
                    pos = end + 2
                    continue
                return end
        if self.inside == b'"':
            while True:
                end = text.find(b'"', pos)
                if end < 0 or text[end + 1:end + 2] != b'"':
                    return end
                pos = end + 2
        return text.find(self.inside, pos)


def _backslashes_before(text, end):
    count = 0
    while end - count - 1 >= 0 and text[end - count - 1:end - count] == b"\\":
        count += 1
    return count


def filtered_toc(listing):
    """pg_restore -l output without the entries for schemas and extensions; (kept lines, skipped entries)."""
    kept, skipped = [], []
    for line in listing.splitlines():
        if _SKIPPED_TOC.match(line):
            skipped.append(line.split(" ", 3)[3])
        else:
            kept.append(line)
    return kept, skipped


def toc_sections(lines):
    """The TOC entries split into (before data, [one TABLE DATA entry each], after data) for pg_restore -L."""
    entries = [line for line in lines if line and not line.startswith(";")]
    data = [line for line in entries if " TABLE DATA " in line]
    first = entries.index(data[0]) if data else len(entries)
    before = [line for line in entries[:first] if line not in data]
    after = [line for line in entries[first:] if line not in data]
    return before, data, after
