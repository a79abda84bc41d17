# -*- coding: utf-8 -*-
# Copyright: (c) 2026, engine_ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""private_file on the controller: done in the worker, without a module process (see _in_process)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.engine_ops.lifecycle.plugins.module_utils._state.private_file import (
    PRIVATE_FILE_SPEC, PrivateFileError, apply)
from ansible_collections.engine_ops.lifecycle.plugins.plugin_utils._in_process import InProcessAction


class ActionModule(InProcessAction):
    SPEC, WORK, ERROR = PRIVATE_FILE_SPEC, apply, PrivateFileError
