# -*- coding: utf-8 -*-
# Copyright: (c) 2026, engine_ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Small durable-file helpers shared by the state, checkpoint, store and brain code."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import os
import tempfile


def ensure_dir(path, mode=0o700):
    """Create a private directory if missing, and every missing parent with the same mode (os.makedirs gives
    parents the umask's default, which would leave a new report tree world-readable); parallel callers racing to
    create it are fine."""
    path = os.path.abspath(path)
    missing = []
    while not os.path.isdir(path):
        missing.append(path)
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    for directory in reversed(missing):
        try:
            os.mkdir(directory, mode)
        except OSError as exc:
            if exc.errno != errno.EEXIST or not os.path.isdir(directory):
                raise


def fsync_path(path):
    """Flush a file or a directory (after renames in it) to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path, text):
    """Replace path with text (0600, in a 0700 directory created if missing): readers see old or new, never half."""
    directory = os.path.dirname(os.path.abspath(path))
    ensure_dir(directory)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(path) + ".")
    try:
        with os.fdopen(fd, "w") as handle:  # mkstemp creates the file 0600
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.rename(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    fsync_path(directory)
