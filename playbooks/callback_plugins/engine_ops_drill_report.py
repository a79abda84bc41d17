# -*- coding: utf-8 -*-
# Copyright: (c) 2026, engine_ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Loads engine_ops.lifecycle.drill_report for the collection's playbooks without any configuration.

It acts only in runs with drill phases (playbooks/drill.yml); elsewhere it records nothing and writes nothing.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.engine_ops.lifecycle.plugins.callback.drill_report import CallbackModule as DrillReport


class CallbackModule(DrillReport):
    CALLBACK_NAME = "engine_ops_drill_report"
    CALLBACK_NEEDS_ENABLED = False
