# -*- coding: utf-8 -*-
# Copyright: (c) 2026, engine_ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Loads engine_ops.lifecycle.fleet_summary for the collection's playbooks without any configuration.

Ansible loads callback plugins found beside a playbook; collection callbacks otherwise need callbacks_enabled.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.engine_ops.lifecycle.plugins.callback.fleet_summary import CallbackModule as FleetSummary


class CallbackModule(FleetSummary):
    CALLBACK_NAME = "engine_ops_fleet_summary"
    CALLBACK_NEEDS_ENABLED = False
