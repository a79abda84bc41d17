# -*- coding: utf-8 -*-
# Copyright: (c) 2026, engine_ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection's one error base, and exceptions modules catch without importing the libraries that raise them.

Every error the collection raises is an EngineOpsError: it carries whether anything was changed (`changed`) and
what is known so far (`result`), so a module turns any of them into one fail_json the same way
(EngineOpsModule.fail_action).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class EngineOpsError(Exception):
    """An operation failed or was refused; the message names it and the cause."""

    def __init__(self, message, changed=False, result=None):
        super(EngineOpsError, self).__init__(message)
        self.changed = changed
        self.result = result or {}


class EngineDockerError(EngineOpsError):
    """A Docker operation failed; the message says which and why."""


class HostError(EngineOpsError):
    """A host-side step failed (a mount, a freeze, a WAL checkpoint); the message names it."""
