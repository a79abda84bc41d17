# -*- coding: utf-8 -*-
# Copyright: (c) 2026, engine_ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugins that do a module's work inside the controller's worker when the task runs on the controller.

The roles write the ledger and their reports on the controller (delegate_to: localhost) once per Engine. A
module there costs a Python process that imports Ansible's module runtime (about 0.25 s of CPU); over a fleet that
was a third of all module processes of a rollback. When the connection is the controller's own (local, no
become), the module would run in this very place as this very user, so the worker runs the same code (the
module's module_utils, the same argument spec) directly. Anywhere else the module runs as usual.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.plugins.action import ActionBase


def on_this_controller(action):
    """True when a module of this task would run on this controller as this user."""
    connection = action._connection  # pylint: disable=protected-access
    name = getattr(connection, "_load_name", None) or getattr(connection, "transport", "")
    return name in ("local", "ansible.builtin.local") and not action._play_context.become  # pylint: disable=protected-access


def failure(name, exc):
    """The result of a refused or failed run, worded the same by the module and the in-process action."""
    return {"failed": True, "changed": False, "msg": "%s: %s; nothing was changed" % (name, exc)}


class InProcessAction(ActionBase):
    """Subclasses set SPEC (the module's argument spec), WORK (its module_utils function, called as
    WORK(params, check_mode, diff) -> result) and ERROR (the exception WORK raises for a refusal)."""

    _supports_check_mode = True
    SPEC, WORK, ERROR = {}, None, Exception

    def run(self, tmp=None, task_vars=None):
        result = super(InProcessAction, self).run(tmp, task_vars)
        if not on_this_controller(self):
            result.update(self._execute_module(module_args=self._task.args, task_vars=task_vars))
            return result
        dummy, params = self.validate_argument_spec(argument_spec=self.SPEC)
        try:
            result.update(type(self).WORK(params, self._task.check_mode, self._task.diff))
        except self.ERROR as exc:
            result.update(failure(self._task.action.rsplit(".", 1)[-1], exc))
        return result
