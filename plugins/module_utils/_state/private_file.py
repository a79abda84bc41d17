# -*- coding: utf-8 -*-
# Copyright: (c) 2026, engine_ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A private report file or directory (0600 / 0700 by default), for the private_file module and its action plugin."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import stat

from ansible_collections.engine_ops.lifecycle.plugins.module_utils._state.files import ensure_dir, write_atomic
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._errors import EngineOpsError

PRIVATE_FILE_SPEC = dict(
    path=dict(type="path", required=True),
    state=dict(type="str", choices=["file", "directory"], default="file"),
    content=dict(type="str"),
    mode=dict(type="str"),
)


class PrivateFileError(EngineOpsError):
    pass


def _mode(params):
    wanted = params.get("mode")
    if not wanted:
        return 0o700 if params["state"] == "directory" else 0o600
    try:
        value = int(str(wanted), 8)
    except ValueError:
        raise PrivateFileError("mode %r is not an octal mode such as 0600" % (wanted,))
    if value & 0o007:
        raise PrivateFileError("mode %s gives other users access; report files stay private (0600/0640/0700/0750)"
                               % wanted)
    return value


def _describe(path):
    try:
        info = os.lstat(path)
    except OSError:
        return {"path": path, "state": "absent"}
    kind = "link" if stat.S_ISLNK(info.st_mode) else "directory" if stat.S_ISDIR(info.st_mode) else "file"
    return {"path": path, "state": kind, "mode": "%04o" % stat.S_IMODE(info.st_mode), "size": info.st_size}


def apply(params, check_mode, diff=False):
    """Make the private file or directory be as asked; returns the result (changed, path, mode; diff when asked)."""
    path, state, content = params["path"], params["state"], params.get("content")
    mode = _mode(params)
    octal = "%04o" % mode
    if state == "directory" and content is not None:
        raise PrivateFileError("content is only for state=file")
    before = _describe(path)
    if before["state"] == "link":
        raise PrivateFileError("%s is a symbolic link; it is not followed" % path)
    if before["state"] not in ("absent", state):
        raise PrivateFileError("%s exists and is a %s, not a %s" % (path, before["state"], state))
    if content is None and state == "file" and before["state"] == "absent":
        raise PrivateFileError("%s does not exist (give content to write it)" % path)
    rewrite = content is not None and (before["state"] == "absent" or _read(path) != content)
    changed = before["state"] == "absent" or rewrite or before.get("mode") != octal
    result = {"changed": changed, "path": path, "mode": octal}
    if diff:
        after = dict(before, state=state, mode=octal)
        if content is not None:
            after["size"] = len(content.encode("utf-8"))
        result["diff"] = {"before": before, "after": after}
    if check_mode or not changed:
        return result
    try:
        if state == "directory":
            ensure_dir(path, mode)
        elif rewrite:
            write_atomic(path, content)  # 0600, parent directories 0700 when created
        os.chmod(path, mode)
    except (IOError, OSError) as exc:
        raise PrivateFileError("write %s: %s" % (path, exc))
    return result


def _read(path):
    try:
        with open(path, "rb") as handle:
            return handle.read().decode("utf-8")
    except (IOError, OSError, UnicodeDecodeError):
        return None
