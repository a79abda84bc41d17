# -*- coding: utf-8 -*-
# Copyright: (c) 2026, engine_ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: fleet_summary
type: aggregate
short_description: Prints one summary table per operation across the fleet and writes it as JSON
version_added: 0.1.0
description:
  - At the end of a run of the collection's playbooks, prints a table with one row per Engine (from, to, data
    rollback or not, downtime, rows exported, result) for every operation the roles reported with C(set_stats)
    (C(engine_ops_rollback), C(engine_ops_upgrade), C(engine_ops_snapshot), C(engine_ops_health)).
  - Engines that failed before reporting, and Engines the run never reached (a canary batch failed, or
    C(max_fail_percentage) stopped the run), get a row too.
  - Writes the same rows as JSON (0600) to C(<engine_report_dir>/<operation>-<UTC time>.json).
  - The collection's playbooks load it by themselves (from C(playbooks/callback_plugins)); elsewhere enable it with
    C(callbacks_enabled = engine_ops.lifecycle.fleet_summary).
"""

import errno
import json
import os
import time

from ansible.plugins.callback import CallbackBase

from ansible_collections.engine_ops.lifecycle.plugins.module_utils._state.files import ensure_dir

OPERATIONS = (
    ("rollback", [("host", "host"), ("from", "from"), ("to", "to"), ("data", "data_rollback"),
                  ("downtime s", "downtime_seconds"), ("rows exported", "rows_exported"),
                  ("external calls", "external_calls"), ("result", "result")]),
    ("upgrade", [("host", "host"), ("from", "from"), ("to", "to"), ("snapshot", "snapshot"),
                 ("downtime s", "downtime_seconds"), ("rolled back", "rolled_back"), ("result", "result")]),
    ("health", [("host", "host"), ("version", "version"), ("health", "health"), ("reason", "reason"),
                ("result", "result")]),
    ("snapshot", [("host", "host"), ("snapshot", "snapshot"), ("size MiB", "size_mib"), ("seconds", "seconds"),
                  ("removed", "removed"), ("result", "result")]),
)


def cell(value):
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, dict)):
        return str(len(value)) if isinstance(value, list) else str(sum(value.values()) if value else 0)
    return str(value)


def render(rows, columns):
    """A plain-text table: a header, a rule, one line per host sorted by name."""
    lines = [[title for title, dummy in columns]]
    for host in sorted(rows):
        lines.append([cell(rows[host].get(key)) for dummy, key in columns])
    widths = [max(len(line[i]) for line in lines) for i in range(len(columns))]
    text = ["  ".join(value.ljust(width) for value, width in zip(line, widths)).rstrip() for line in lines]
    text.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(text)


def complete(rows, targeted, processed, failures, dark):
    """Add rows for Engines that failed before reporting, and for Engines the run never reached."""
    rows = dict((host, dict(row)) for host, row in rows.items())
    for host in targeted:
        if host in rows:
            continue
        if dark.get(host):
            rows[host] = {"host": host, "result": "unreachable"}
        elif failures.get(host):
            rows[host] = {"host": host, "result": "failed", "message": "failed before it reported a result"}
        elif host not in processed:
            rows[host] = {"host": host, "result": "not_run", "message": "the run stopped before this Engine's batch"}
    return rows


def write_report(directory, operation, rows, now=time.gmtime):
    """<operation>-<UTC time>.json, never over another run's (slices of one AWX job finish in the same second)."""
    ensure_dir(directory)
    base = os.path.join(directory, "%s-%s" % (operation, time.strftime("%Y%m%dT%H%M%SZ", now())))
    path, number = base + ".json", 1
    while True:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            break
        except OSError as exc:
            if exc.errno != errno.EEXIST:
                raise
            number += 1
            path = "%s-%d.json" % (base, number)
    with os.fdopen(fd, "w") as handle:
        json.dump({"operation": operation, "engines": [rows[host] for host in sorted(rows)]}, handle, indent=2,
                  sort_keys=True)
    return path


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "engine_ops.lifecycle.fleet_summary"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super(CallbackModule, self).__init__(*args, **kwargs)
        self._targeted = []

    def v2_playbook_on_play_start(self, play):
        try:
            inventory = play.get_variable_manager()._inventory  # pylint: disable=protected-access
            hosts = inventory.get_hosts(play.hosts, ignore_restrictions=True)
        except (AttributeError, TypeError):
            return
        for host in hosts:
            if host.name not in self._targeted:
                self._targeted.append(host.name)

    def v2_playbook_on_stats(self, stats):
        custom = (getattr(stats, "custom", None) or {}).get("_run", {})
        for operation, columns in OPERATIONS:
            rows = custom.get("engine_ops_" + operation)
            if not rows:
                continue
            rows = complete(rows, self._targeted, stats.processed, stats.failures, stats.dark)
            self._display.display("\nengine_ops %s summary\n%s" % (operation, render(rows, columns)))
            directory = (custom.get("engine_ops_settings") or {}).get("report_dir")
            if directory:
                try:
                    path = write_report(os.path.expanduser(directory), operation, rows)
                    self._display.display("summary written to %s" % path)
                except (IOError, OSError) as exc:
                    self._display.warning("could not write the %s summary to %s: %s" % (operation, directory, exc))
