# -*- coding: utf-8 -*-
# Copyright: (c) 2026, engine_ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which mounted filesystem holds a path (/proc/self/mountinfo), for volume snapshots and for where state lives."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible_collections.engine_ops.lifecycle.plugins.module_utils._errors import HostError


def _unescape(field):
    """mountinfo escapes space, tab, newline and backslash as octal."""
    out, i = [], 0
    while i < len(field):
        code = field[i + 1:i + 4]
        if field[i] == "\\" and len(code) == 3 and code.isdigit():
            out.append(chr(int(code, 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def mounts(mountinfo="/proc/self/mountinfo"):
    """[{mount_point, root, fstype, source, options}] from mountinfo, in mount order."""
    found = []
    with open(mountinfo) as handle:
        for line in handle:
            left, dummy, right = line.rstrip("\n").partition(" - ")
            fields, tail = left.split(" "), right.split(" ")
            if len(fields) < 6 or len(tail) < 2:
                continue
            found.append({"mount_point": _unescape(fields[4]), "root": _unescape(fields[3]), "options": fields[5],
                          "fstype": tail[0], "source": _unescape(tail[1]),
                          "super_options": tail[2] if len(tail) > 2 else ""})
    return found


def mount_of(path, mountinfo="/proc/self/mountinfo"):
    """The mount holding `path` (the last mounted of the longest matching mount points)."""
    real = os.path.realpath(path)
    best = None
    for entry in mounts(mountinfo):
        point = entry["mount_point"]
        if real == point or real.startswith(point.rstrip("/") + "/") or point == "/":
            if best is None or len(point) >= len(best["mount_point"]):
                best = entry
    if best is None:
        raise HostError("no mounted filesystem holds %s" % path)
    return best


def mounted_at(mount_point, mountinfo="/proc/self/mountinfo"):
    """The entry mounted exactly at `mount_point`, or None."""
    real = os.path.realpath(mount_point)
    hits = [e for e in mounts(mountinfo) if e["mount_point"] == real]
    return hits[-1] if hits else None
