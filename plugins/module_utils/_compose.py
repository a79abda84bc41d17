# -*- coding: utf-8 -*-
# Copyright: (c) 2026, engine_ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Change one service's `image:` in a compose file, keeping every other byte (comments, order, quotes)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re


class ComposeError(ValueError):
    pass


def _indent(line):
    return len(line) - len(line.lstrip(" "))


def _content(line):
    stripped = line.strip()
    return stripped and not stripped.startswith("#")


def set_service_image(text, service, image):
    """Return (new_text, old_image) with `services.<service>.image` set to `image`."""
    lines = text.splitlines(True)
    top = [i for i, line in enumerate(lines) if re.match(r"^services:\s*(#.*)?$", line.rstrip("\r\n"))]
    if not top:
        raise ComposeError("the compose file has no top-level 'services:' key")
    start = top[0] + 1
    service_re = re.compile(r"^(\s+)(['\"]?)%s\2:\s*(#.*)?$" % re.escape(service))
    svc_line, svc_indent = None, None
    for i in range(start, len(lines)):
        line = lines[i].rstrip("\r\n")
        if _content(line) and _indent(line) == 0:
            break
        match = service_re.match(line)
        if match:
            svc_line, svc_indent = i, len(match.group(1))
            break
    if svc_line is None:
        raise ComposeError("service %r is not in the compose file" % service)
    key_indent = None
    image_re = re.compile(r"^(\s+)image:(\s*)(['\"]?)([^'\"#\s]+)\3(\s*#.*)?$")
    for i in range(svc_line + 1, len(lines)):
        line = lines[i].rstrip("\r\n")
        if not _content(line):
            continue
        if _indent(line) <= svc_indent:
            break
        key_indent = key_indent if key_indent is not None else _indent(line)
        if _indent(line) != key_indent:
            continue
        match = image_re.match(line)
        if match:
            ending = lines[i][len(line):]
            old = match.group(4)
            quote = match.group(3)
            spacing = match.group(2) or " "
            lines[i] = "%simage:%s%s%s%s%s%s" % (match.group(1), spacing, quote, image, quote, match.group(5) or "",
                                                 ending)
            return "".join(lines), old
    raise ComposeError("service %r has no 'image:' key (built from source?); add one to manage its image" % service)
