# -*- coding: utf-8 -*-
# Copyright: (c) 2026, engine_ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A per-Engine lock file on the Engine's host, with a lease and a named holder.

The file is never removed: an empty file is a free lock. Removing it would let a waiter that opened the
old inode believe it holds a lock that a third run then takes on a new file.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import fcntl
import json
import os
import time

from ansible_collections.engine_ops.lifecycle.plugins.module_utils._state.files import ensure_dir
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._errors import EngineOpsError


class LockError(EngineOpsError):
    pass


class LockHeld(LockError):
    def __init__(self, holder, path):
        self.holder, self.path = holder, path
        super(LockHeld, self).__init__("%s is locked by %s (%s); that run must finish first, or wait for its lease "
                                       "to expire at %s" % (holder.get("engine", "the Engine"), describe(holder), path,
                                                            _iso(holder.get("expires", 0))))


def _iso(epoch):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def describe(holder):
    """One line naming who holds the lock: 'rollback to v2.3.1 by alice on ctl-1 (pid 4242), since ...'."""
    who = holder.get("user") or "unknown user"
    if holder.get("awx_job_id"):
        who += " (AWX job %s)" % holder["awx_job_id"]
    return "%s%s by %s on %s (pid %s), since %s" % (
        holder.get("operation", "a run"), (" to %s" % holder["target"]) if holder.get("target") else "", who,
        holder.get("controller", "?"), holder.get("pid", "?"), _iso(holder.get("since", 0)))


def lock_path(state_dir, engine):
    return os.path.join(state_dir, "%s.lock" % engine)


class _Locked:
    """The lock file opened and flock()ed for one short read-modify-write."""

    def __init__(self, path, create):
        self.path, self.create, self.fd = path, create, None

    def __enter__(self):
        flags = os.O_RDWR | (os.O_CREAT if self.create else 0)
        try:
            self.fd = os.open(self.path, flags, 0o600)
        except OSError as exc:
            if exc.errno == errno.ENOENT and not self.create:
                return self
            raise
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def read(self):
        if self.fd is None:
            return None
        os.lseek(self.fd, 0, os.SEEK_SET)
        data = b""
        while True:
            chunk = os.read(self.fd, 65536)
            if not chunk:
                break
            data += chunk
        if not data.strip():
            return None
        try:
            return json.loads(data.decode("utf-8"))
        except ValueError:
            raise LockError("the lock file %s is not JSON; remove it by hand after checking no run is active"
                            % self.path)

    def write(self, holder):
        data = json.dumps(holder, sort_keys=True).encode("utf-8") if holder else b""
        os.ftruncate(self.fd, 0)
        os.lseek(self.fd, 0, os.SEEK_SET)
        os.write(self.fd, data)
        os.fsync(self.fd)

    def __exit__(self, *exc):
        if self.fd is not None:
            os.close(self.fd)  # closing releases the flock


def inspect(path):
    with _Locked(path, create=False) as locked:
        return locked.read()


def acquire(path, owner, lease, break_run_id=None, force=False, check_mode=False, now=time.time):
    """Take the lock for owner['run_id'] (re-entrant for the same run).

    Returns (holder, taken_over, changed); taken_over is the holder that was replaced (expired lease, a run
    the caller proved dead via break_run_id, or force). Raises LockHeld when another live run holds it.
    """
    if not check_mode:
        ensure_dir(os.path.dirname(path))
    with _Locked(path, create=not check_mode) as locked:
        current = locked.read()
        taken_over = None
        stamp = now()
        if current and current.get("run_id") != owner["run_id"]:
            expired = current.get("expires", 0) <= stamp
            proven_dead = break_run_id is not None and current.get("run_id") == break_run_id
            if not (expired or proven_dead or force):
                raise LockHeld(current, path)
            taken_over = current
        holder = dict(owner)
        holder["since"] = current["since"] if current and current.get("run_id") == owner["run_id"] else stamp
        holder["expires"] = stamp + lease
        if not check_mode:
            locked.write(holder)
        return holder, taken_over, True


def release(path, run_id, check_mode=False):
    """Free the lock if this run holds it. Returns (changed, holder_left_in_place)."""
    with _Locked(path, create=False) as locked:
        current = locked.read()
        if not current:
            return False, None
        if current.get("run_id") != run_id:
            return False, current
        if not check_mode:
            locked.write(None)
        return True, None
