# -*- coding: utf-8 -*-
# Copyright: (c) 2026, engine_ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: drill_report
type: aggregate
short_description: Times every phase of a rollback drill on every host and writes the drill report
version_added: 0.1.0
description:
  - Records phase boundaries as they happen. A phase starts on a host with the task named C(Drill phase - <name>) and
    lasts until the next one starts there; the last phase ends with the host's last task. Each task's time is kept too,
    so the report can say which steps slowed a phase down.
  - At the end of the run it writes the drill report, from these timings and what the C(drill) role reported with
    C(set_stats) (C(engine_ops_drill), C(engine_ops_drill_settings)) - JSON, Markdown, JUnit XML and an SVG timeline,
    as C(<report_dir>/drill-<id>.*) - and appends the drill to the history on the controller, against which the
    next drill compares its phases.
  - Does nothing in runs without drill phases. The drill playbook loads it by itself (from C(playbooks/callback_plugins)).
"""

import json
import os
import time

from ansible.plugins.callback import CallbackBase

from ansible_collections.engine_ops.lifecycle.plugins.plugin_utils._drill_report import (
    Timeline, build_report, read_history, write_reports)

_LOADED_AT = time.time()  # as close to the start of ansible-playbook as a plugin gets


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "engine_ops.lifecycle.drill_report"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super(CallbackModule, self).__init__(*args, **kwargs)
        self.timeline = Timeline(start=_LOADED_AT)

    def v2_runner_on_start(self, host, task):
        self.timeline.task_start(host.get_name(), task.get_name(), time.time())

    def _end(self, result, failed=False):
        self.timeline.task_end(result._host.get_name(), result._task.get_name(), time.time(),  # pylint: disable=protected-access
                               failed=failed)

    def v2_runner_on_ok(self, result):
        self._end(result)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._end(result, failed=not ignore_errors)

    def v2_runner_on_skipped(self, result):
        self._end(result)

    def v2_runner_on_unreachable(self, result):
        self._end(result, failed=True)

    def v2_playbook_on_stats(self, stats):
        if not self.timeline.hosts:
            return
        ended = time.time()
        custom = (getattr(stats, "custom", None) or {}).get("_run", {})
        settings = custom.get("engine_ops_drill_settings") or {}
        results = dict(custom.get("engine_ops_drill") or {})
        for host in self.timeline.hosts:
            if host not in results:
                reason = "unreachable" if stats.dark.get(host) else "it failed before it reported a result"
                results[host] = {"result": "failed", "reason": reason}
        history_path = os.path.expanduser(settings.get("history_path") or "~/.engine_ops/drills/history.jsonl")
        report = build_report(self.timeline, results, settings, read_history(history_path), ended)
        directory = os.path.expanduser(settings.get("report_dir") or "~/.engine_ops/reports")
        try:
            paths = write_reports(report, directory, history_path)
        except (IOError, OSError) as exc:
            self._display.warning("could not write the drill report to %s: %s" % (directory, exc))
            return
        self._display.display("\nengine_ops rollback drill %s: %s in %.1f s\n%s\nreport: %s" % (
            report["id"], report["result"].upper(), report["wall_seconds"], "\n".join(
                "  - " + line for line in report["findings"]), json.dumps(paths, sort_keys=True)))
