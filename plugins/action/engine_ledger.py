# -*- coding: utf-8 -*-
# Copyright: (c) 2026, engine_ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""engine_ledger on the controller: appended in the worker, without a module process (see _in_process)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.engine_ops.lifecycle.plugins.module_utils._state.ledger import LEDGER_SPEC, LedgerError, record
from ansible_collections.engine_ops.lifecycle.plugins.plugin_utils._in_process import InProcessAction


class ActionModule(InProcessAction):
    SPEC, WORK, ERROR = LEDGER_SPEC, record, LedgerError
