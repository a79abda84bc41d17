# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fault injection for tests/reliability: SIGKILL the controller at a task boundary.

ENGINE_OPS_KILL_AT="start:<words>" kills ansible-playbook and everything it started (its process group)
when a task whose name contains <words> starts, i.e. right after the task before it finished;
"ok:<words>" kills right after such a task succeeded. ENGINE_OPS_KILL_MARK names a file written first,
so the test knows the kill happened where it meant it to.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import signal

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: kill_at
type: aggregate
short_description: SIGKILL the controller at a named task (tests only)
description: Test fault injection; not shipped.
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "kill_at"
    CALLBACK_NEEDS_ENABLED = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        when, dummy, words = os.environ.get("ENGINE_OPS_KILL_AT", "").partition(":")
        self.when, self.words = when, words

    def _kill(self, name):
        mark = os.environ.get("ENGINE_OPS_KILL_MARK")
        if mark:
            with open(mark, "w") as handle:
                handle.write(name)
        os.killpg(os.getpgid(0), signal.SIGKILL)

    def v2_playbook_on_task_start(self, task, is_conditional):
        if self.when == "start" and self.words and self.words in task.get_name():
            self._kill(task.get_name())

    def v2_runner_on_ok(self, result):
        if self.when == "ok" and self.words and self.words in result._task.get_name():
            self._kill(result._task.get_name())
