"""Benchmark callback: every task's start and end per host, and the seconds modules report for their own work.

Enabled by bench/fleet.py (ANSIBLE_CALLBACK_PLUGINS + ANSIBLE_CALLBACKS_ENABLED=bench_timeline); writes JSON to
$ENGINE_OPS_BENCH_TIMELINE at the end of the run. Not part of the collection.
"""

import json
import os
import time

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: bench_timeline
type: aggregate
short_description: task times per host for the fleet benchmark
description: [Task times per host and the work seconds modules report, written as JSON for bench/fleet.py.]
"""


def work_seconds(action, result):
    """{category: seconds} of the work a module says it did; the rest of a task's time is overhead."""
    work = {}

    def add(category, seconds):
        if isinstance(seconds, (int, float)) and seconds > 0:
            work[category] = round(work.get(category, 0.0) + seconds, 4)

    short = action.rsplit(".", 1)[-1]
    if short == "engine_image":
        for step in result.get("actions") or []:
            name = step.get("action", "")
            category = "drain" if "drain" in name else "health" if "health" in name else "docker"
            add(category, step.get("seconds"))
    elif short == "engine_drain":
        add("drain", (result.get("drain") or {}).get("duration_seconds"))
        add("health", ((result.get("health") or {}).get("elapsed_ms") or 0) / 1000.0)
    elif short == "brain_restore":
        for name, seconds in (result.get("timings") or {}).items():
            add("drain" if name == "stop_engine" else "restore", seconds)  # the swap drains the Engine first
    return work


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "bench_timeline"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super(CallbackModule, self).__init__(*args, **kwargs)
        self.began = time.time()
        self.running = {}
        self.tasks = []

    def v2_runner_on_start(self, host, task):
        self.running[(host.get_name(), task._uuid)] = time.time()  # pylint: disable=protected-access

    def _end(self, result, status):
        host, task = result._host.get_name(), result._task  # pylint: disable=protected-access
        began = self.running.pop((host, task._uuid), None)  # pylint: disable=protected-access
        if began is None:
            return
        body = result._result  # pylint: disable=protected-access
        self.tasks.append({"host": host, "task": task.get_name(), "action": task.action, "status": status,
                           "start": began, "end": time.time(), "work": work_seconds(task.action, body)})

    def v2_runner_on_ok(self, result):
        self._end(result, "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._end(result, "failed")

    def v2_runner_on_skipped(self, result):
        self._end(result, "skipped")

    def v2_playbook_on_stats(self, stats):
        out = os.environ.get("ENGINE_OPS_BENCH_TIMELINE")
        if out:
            with open(out, "w", encoding="utf-8") as handle:
                json.dump({"began": self.began, "ended": time.time(), "tasks": self.tasks}, handle)
