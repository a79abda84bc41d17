# -*- coding: utf-8 -*-
# Copyright: (c) 2026, engine_ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where the controller keeps what must outlive a run, and whether it does.

The ledger (the guard against redeploying a rolled-back version reads it), the drill history (drill-to-drill
comparison) and the reports live on the controller. In an AWX job the controller is an execution environment
container whose home directory, /tmp and own filesystem are thrown away when the job ends; a path there loses
that state silently. `check` says, for each path, whether it can be written and whether it will last.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible_collections.engine_ops.lifecycle.plugins.module_utils._errors import HostError
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._state.mounts import mount_of as host_mount_of

TMP_DIRS = ("/tmp", "/var/tmp")
RUNNER_DIR = "/runner"  # ansible-runner's private data dir in an AWX execution environment
OVERLAY_TYPES = ("overlay", "aufs", "fuse-overlayfs", "fuse.fuse-overlayfs")


def _under(path, directory):
    directory = os.path.realpath(directory)
    return path == directory or path.startswith(directory.rstrip("/") + "/")


def existing_ancestor(path):
    """The path itself or its nearest ancestor that exists."""
    current = os.path.abspath(path)
    while not os.path.lexists(current):
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    return current


def mount_of(path, mountinfo="/proc/self/mountinfo"):
    """(mount point, filesystem type) of the filesystem that holds `path`; (None, None) when unknown."""
    try:
        entry = host_mount_of(path, mountinfo)
    except (HostError, IOError, OSError):
        return None, None
    return entry["mount_point"], entry["fstype"]


def writable_problem(path, kind):
    """Why `path` (a file or a directory) can't be written, or None. Nothing is created."""
    ancestor = existing_ancestor(path)
    if ancestor == os.path.abspath(path):
        if kind == "directory" and not os.path.isdir(path):
            return "%s exists and is not a directory" % path
        if kind == "file" and os.path.isdir(path):
            return "%s is a directory" % path
        target = path if kind == "directory" else os.path.dirname(os.path.abspath(path))
        if not os.access(path, os.W_OK) or not os.access(target, os.W_OK | os.X_OK):
            return "%s is not writable by this user" % path
        return None
    if not os.path.isdir(ancestor):
        return "%s is not a directory, so %s can't be made" % (ancestor, path)
    if not os.access(ancestor, os.W_OK | os.X_OK):
        return "%s is not writable by this user, so %s can't be made" % (ancestor, path)
    return None


def throwaway_reason(path, in_job, environ=None, mountinfo="/proc/self/mountinfo"):
    """Why `path` would be gone after this run, or None. Outside a job only /tmp-like places count."""
    environ = os.environ if environ is None else environ
    real = os.path.realpath(os.path.abspath(path))
    home = environ.get("HOME")
    if in_job and home and _under(real, home):
        return "it is under the job's home directory %s, which AWX throws away after every job" % home
    for directory in TMP_DIRS:
        if _under(real, directory):
            emptied_by = "the job's container throws away" if in_job else "a reboot or tmp cleaner empties"
            return "it is under %s, which %s" % (directory, emptied_by)
    if not in_job:
        return None
    if _under(real, RUNNER_DIR):
        return "it is under /runner, the job's private data directory, which AWX throws away after every job"
    point, fstype = mount_of(real, mountinfo)
    if point == "/" and fstype in OVERLAY_TYPES:  # an execution environment's root: podman, docker, containerd
        return ("it is on the execution environment container's own filesystem (%s on /), which is thrown away "
                "with the container; mount a volume there" % fstype)
    return None


def check(paths, in_job, environ=None, mountinfo="/proc/self/mountinfo"):
    """{"paths": {name: {path, kind, lasting, reason}}, "problems": [...], "unwritable": [...], "lasting": bool}.

    `paths`: {name: (path, "file" | "directory")}."""
    report, problems, unwritable = {}, [], []
    for name, (path, kind) in sorted(paths.items()):
        if not path:
            continue
        reason = throwaway_reason(path, in_job, environ, mountinfo)
        broken = writable_problem(path, kind)
        report[name] = {"path": path, "kind": kind, "lasting": reason is None, "reason": reason, "writable": not broken}
        if broken:
            unwritable.append("the %s (%s) can't be written: %s" % (name.replace("_", " "), path, broken))
        if reason:
            problems.append("the %s (%s) will not outlive this run: %s" % (name.replace("_", " "), path, reason))
    return {"paths": report, "problems": problems, "unwritable": unwritable, "lasting": not problems}
