# -*- coding: utf-8 -*-
# Copyright: (c) 2026, engine_ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The host side of a volume snapshot or swap: which filesystem holds the brain, freeze, unmount, mount.

A frozen filesystem blocks every writer on the host, so a freeze always comes with a watchdog: a separate
process (it survives this one being killed) that thaws the filesystem when the freeze outlives its budget.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import signal
import sqlite3
import subprocess
import time

from ansible_collections.engine_ops.lifecycle.plugins.module_utils._errors import HostError
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._state.files import fsync_path


def same_device(a, b):
    """Whether two device paths (symlinks allowed) name the same block device."""
    try:
        return os.path.realpath(a) == os.path.realpath(b) or os.stat(a).st_rdev == os.stat(b).st_rdev
    except OSError:
        return False


def wait_for_device(candidates, deadline, poll=0.1, now=time.monotonic, sleep=time.sleep):
    """The first candidate path that exists as a block device before `deadline` (a monotonic time)."""
    while True:
        for path in candidates:
            if os.path.exists(path):
                return path
        if now() >= deadline:
            raise HostError("the attached volume did not appear on the host as any of %s" % ", ".join(candidates))
        sleep(poll)


def _run(argv, what):
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
    if proc.returncode != 0:
        raise HostError("%s failed: %s" % (what, (proc.stderr or proc.stdout).decode("utf-8", "replace").strip()))


def sync_filesystem(mount_point):
    fsync_path(mount_point)
    subprocess.run(["sync", "-f", mount_point], check=False)


def checkpoint_wal(path, timeout=10.0):
    """Fold an SQLite WAL into the database file (TRUNCATE); returns (busy, wal_frames, checkpointed).

    Writers carry on meanwhile; busy=1 means a reader kept part of the WAL, which a restore replays anyway.
    """
    if not os.path.exists(path + "-wal"):
        return (0, 0, 0)
    conn = sqlite3.connect(path, timeout=timeout)
    try:
        return tuple(conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone())
    except sqlite3.Error as exc:
        raise HostError("WAL checkpoint of %s failed: %s" % (path, exc))
    finally:
        conn.close()


class Freeze:
    """fsfreeze with a watchdog process that thaws after `budget` seconds whatever happens to this one."""

    def __init__(self, mount_point, budget):
        self.mount_point = mount_point
        self.budget = max(1, int(budget))
        self.watchdog = None
        self.began = None
        self.seconds = None

    def __enter__(self):
        sync_filesystem(self.mount_point)
        # The watchdog starts before the freeze: there is no moment when the filesystem is frozen without one.
        self.watchdog = subprocess.Popen(
            ["sh", "-c", 'sleep "$1"; fsfreeze --unfreeze "$2" 2>/dev/null', "engine_ops-thaw",
             str(self.budget), self.mount_point], start_new_session=True,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            _run(["fsfreeze", "--freeze", self.mount_point], "freezing %s" % self.mount_point)
        except HostError:
            self._stop_watchdog()
            raise
        self.began = time.monotonic()
        return self

    def outlived_budget(self):
        """True when the watchdog already thawed (the freeze did not hold for the whole critical section)."""
        return self.watchdog is not None and self.watchdog.poll() is not None

    def _stop_watchdog(self):
        if self.watchdog is not None and self.watchdog.poll() is None:
            try:
                os.killpg(self.watchdog.pid, signal.SIGKILL)
            except OSError:
                pass
            self.watchdog.wait()

    def __exit__(self, *exc):
        expired = self.outlived_budget()
        self._stop_watchdog()
        if not expired:
            subprocess.run(["fsfreeze", "--unfreeze", self.mount_point], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, check=False)
        self.seconds = round(time.monotonic() - self.began, 3) if self.began else None
        self.expired = expired
        return False


def unmount(mount_point):
    _run(["umount", mount_point], "unmounting %s" % mount_point)


def mount(device, mount_point, fstype, options):
    """Mount with the type and the per-mount options the old mount had (rw, noatime, ...)."""
    argv = ["mount", "-t", fstype]
    keep = [o for o in (options or "").split(",") if o and o not in ("relatime",)]
    if keep:
        argv += ["-o", ",".join(keep)]
    _run(argv + [device, mount_point], "mounting %s at %s" % (device, mount_point))
