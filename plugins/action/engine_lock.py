# -*- coding: utf-8 -*-
# Copyright: (c) 2026, engine_ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of engine_lock: says who is asking, and whether a refusing holder is still alive.

Only the controller can tell whether the run holding a lock is still alive: it is the ansible-playbook
process on this controller, identified by its pid and its start time (so a reused pid is not mistaken
for it). The module on the Engine's host cannot see that process.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import getpass
import os
import socket

from ansible.plugins.action import ActionBase


def _start_time(pid):
    """The process's start time in clock ticks since boot (field 22 of /proc/<pid>/stat), or None."""
    try:
        with open("/proc/%d/stat" % int(pid)) as handle:
            return handle.read().rsplit(")", 1)[1].split()[19]
    except (IOError, OSError, ValueError, IndexError):
        return None


def controller_owner(task_vars):
    """This run's identity: the ansible-playbook process (the workers' parent) on this controller."""
    pid = os.getppid()
    host = socket.gethostname()
    started = _start_time(pid)
    owner = {"run_id": "%s:%d:%s" % (host, pid, started), "controller": host, "pid": pid, "pid_start": started}
    user = task_vars.get("awx_user_name") or task_vars.get("tower_user_name")
    try:
        owner["user"] = user or getpass.getuser()
    except (KeyError, OSError):
        owner["user"] = user or "uid %d" % os.getuid()
    job = task_vars.get("awx_job_id") or task_vars.get("tower_job_id")
    if job:
        owner["awx_job_id"] = str(job)
    return owner


def holder_is_dead(holder, host):
    """True only when we can prove it: same controller host, and that process is gone or is another one."""
    if not holder or holder.get("controller") != host or not holder.get("pid"):
        return False
    return _start_time(holder["pid"]) != holder.get("pid_start")


class ActionModule(ActionBase):
    _supports_check_mode = True

    def run(self, tmp=None, task_vars=None):
        super(ActionModule, self).run(tmp, task_vars)
        task_vars = task_vars or {}
        args = dict(self._task.args)
        owner = controller_owner(task_vars)
        owner.update(args.get("owner") or {})
        args["owner"] = owner
        result = self._execute_module(module_args=args, task_vars=task_vars)
        holder = result.get("holder")
        if result.get("failed") and args.get("state", "present") == "present" and holder_is_dead(holder, owner["controller"]):
            args["break_run_id"] = holder["run_id"]
            result = self._execute_module(module_args=args, task_vars=task_vars)
        return result
