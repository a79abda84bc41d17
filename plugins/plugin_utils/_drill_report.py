# -*- coding: utf-8 -*-
# Copyright: (c) 2026, engine_ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rollback drill's timeline and report: phase times per host, findings, history, and four renderings.

Pure functions over data the drill_report callback collects; no Ansible imports, so they are unit-tested directly.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import time
from xml.sax.saxutils import escape, quoteattr

from ansible_collections.engine_ops.lifecycle.plugins.module_utils._state.files import ensure_dir, write_atomic

PHASE_PREFIX = "Drill phase - "
RECOVERY_PHASES = ("detect", "rollback")  # from the moment the failure is looked for until the Engine serves again
COLOURS = {"provision": "#8da0cb", "seed": "#a6d854", "snapshot": "#66c2a5", "upgrade": "#fc8d62",
           "detect": "#ffd92f", "rollback": "#e78ac3", "verify": "#b3b3b3", "report": "#e5c494"}
REGRESSION_RATIO, REGRESSION_SECONDS = 1.25, 2.0


class Timeline:
    """Phase boundaries and task times per host, as the run goes."""

    def __init__(self, start):
        self.start = start
        self.hosts = {}  # host -> [{"name", "start", "end", "tasks": {task: seconds}}]
        self._running = {}  # (host, task) -> start

    @staticmethod
    def _bare(task):
        """A task's name without the "role : " prefix Ansible gives tasks of roles."""
        return (task or "").split(" : ", 1)[-1]

    def task_start(self, host, task, now):
        name = self._bare(task)
        if name.startswith(PHASE_PREFIX):
            self.hosts.setdefault(host, []).append({"name": name[len(PHASE_PREFIX):].strip(), "start": now, "end": now,
                                                    "tasks": {}, "failed": False})
            return
        self._running[(host, name)] = now

    def task_end(self, host, task, now, failed=False):
        task = self._bare(task)
        phases = self.hosts.get(host)
        if not phases:
            return
        phase = phases[-1]
        phase["end"] = max(phase["end"], now)
        began = self._running.pop((host, task), None)
        if began is not None and not task.startswith(PHASE_PREFIX):
            phase["tasks"][task] = round(phase["tasks"].get(task, 0) + now - began, 3)
        phase["failed"] = phase["failed"] or failed

    def phases(self, host):
        """[{name, seconds, offset, tasks, failed}]: a phase lasts until the next begins on that host."""
        found = self.hosts.get(host) or []
        out = []
        for index, phase in enumerate(found):
            end = found[index + 1]["start"] if index + 1 < len(found) else phase["end"]
            out.append({"name": phase["name"], "offset": round(phase["start"] - self.start, 3),
                        "seconds": round(max(0.0, end - phase["start"]), 3), "tasks": phase["tasks"],
                        "failed": phase["failed"]})
        return out


def read_history(path, limit=20):
    try:
        with open(path) as handle:
            lines = [json.loads(line) for line in handle if line.strip().startswith("{")]
    except (IOError, OSError, ValueError):
        return []
    return lines[-limit:]


def _pct(part, whole):
    return int(round(100.0 * part / whole)) if whole else 0


def build_report(timeline, results, settings, history, ended):
    """The drill report as data: per host phases and results, slowest steps, budget, and changes since last time."""
    wall = round(ended - timeline.start, 3)
    hosts = {}
    for host in sorted(set(timeline.hosts) | set(results)):
        phases = timeline.phases(host)
        outcome = dict(results.get(host) or {"result": "failed", "reason": "no result reported"})
        recovery = round(sum(p["seconds"] for p in phases if p["name"] in RECOVERY_PHASES), 3)
        hosts[host] = dict(outcome, phases=phases, total_seconds=round(sum(p["seconds"] for p in phases), 3),
                           recovery_seconds=recovery)
    budget = float(settings.get("rto_budget") or 0)
    phase_max = {}
    for info in hosts.values():
        for phase in info["phases"]:
            phase_max[phase["name"]] = max(phase_max.get(phase["name"], 0.0), phase["seconds"])
    steps = sorted(((seconds, host, phase["name"], task) for host, info in hosts.items() for phase in info["phases"]
                    for task, seconds in phase["tasks"].items()), reverse=True)[:8]
    previous = [h for h in history if h.get("phase_max")]
    last = previous[-1] if previous else None
    changes = []
    for name, seconds in phase_max.items():
        before = (last or {}).get("phase_max", {}).get(name)
        if before is None:
            continue
        changes.append({"phase": name, "seconds": seconds, "previous": before,
                        "regressed": seconds > before * REGRESSION_RATIO and seconds - before > REGRESSION_SECONDS,
                        "change_pct": _pct(seconds - before, before)})
    failed = sorted(h for h, info in hosts.items() if info.get("result") != "passed")
    recovery_max = max([info["recovery_seconds"] for info in hosts.values()] or [0.0])
    over_budget = sorted(h for h, info in hosts.items() if budget and info["recovery_seconds"] > budget)
    report = {
        "id": settings.get("id") or time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(timeline.start)),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timeline.start)),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ended)),
        "production_version": settings.get("production_version"), "broken_version": settings.get("broken_version"),
        "wall_seconds": wall, "result": "failed" if failed or over_budget or not hosts else "passed",
        "failed_hosts": failed, "hosts": hosts, "phase_max": phase_max, "slowest_steps": [
            {"seconds": s, "host": h, "phase": p, "task": t} for s, h, p, t in steps],
        "rto_budget_seconds": budget or None, "recovery_seconds_max": recovery_max, "over_budget": over_budget,
        "previous_drill": (last or {}).get("id"), "changes": sorted(changes, key=lambda c: c["phase"]),
    }
    report["findings"] = findings(report)
    return report


def findings(report):
    """What a human should read first, in plain sentences."""
    lines = []
    if not report["hosts"]:
        return ["the drill reached no Engine"]
    for host in report["failed_hosts"]:
        info = report["hosts"][host]
        lines.append("FAILED on %s: %s" % (host, info.get("reason") or "no reason reported"))
    wall = report["wall_seconds"]
    ranked = sorted(((p["seconds"], h, p["name"]) for h, info in report["hosts"].items() for p in info["phases"]),
                    reverse=True)
    if ranked:
        seconds, host, name = ranked[0]
        lines.append("slowest phase: %s on %s, %.1f s (%d%% of the %.1f s drill)"
                     % (name, host, seconds, _pct(seconds, wall), wall))
    if report["slowest_steps"]:
        step = report["slowest_steps"][0]
        lines.append("slowest step: '%s' (%s phase) on %s, %.1f s" % (step["task"], step["phase"], step["host"],
                                                                      step["seconds"]))
    budget = report["rto_budget_seconds"]
    if budget:
        if report["over_budget"]:
            lines.append("recovery (detect + rollback) took %.1f s, over the %.0f s budget on %s"
                         % (report["recovery_seconds_max"], budget, ", ".join(report["over_budget"])))
        else:
            lines.append("recovery (detect + rollback) took at most %.1f s, %d%% of the %.0f s budget"
                         % (report["recovery_seconds_max"], _pct(report["recovery_seconds_max"], budget), budget))
    regressed = [c for c in report["changes"] if c["regressed"]]
    for change in regressed:
        lines.append("regressed since drill %s: %s %.1f s -> %.1f s (+%d%%)" % (
            report["previous_drill"], change["phase"], change["previous"], change["seconds"], change["change_pct"]))
    if report["previous_drill"] and not regressed:
        lines.append("no phase regressed since drill %s" % report["previous_drill"])
    if not report["previous_drill"]:
        lines.append("first drill in this history: nothing to compare with yet")
    return lines


def render_markdown(report):
    out = ["# Rollback drill %s: %s" % (report["id"], report["result"].upper()), "",
           "%s -> %s -> %s, %d Engine(s), %.1f s wall time (%s to %s)." % (
               report["production_version"], report["broken_version"], report["production_version"],
               len(report["hosts"]), report["wall_seconds"], report["started_at"], report["finished_at"]), "",
           "## What slowed it down", ""]
    out.extend("- " + line for line in report["findings"])
    names = []
    for info in report["hosts"].values():
        for phase in info["phases"]:
            if phase["name"] not in names:
                names.append(phase["name"])
    out += ["", "## Phases (seconds)", "", "| host | " + " | ".join(names) + " | total | recovery | result |",
            "|---" * (len(names) + 4) + "|"]
    for host, info in sorted(report["hosts"].items()):
        per = dict((p["name"], p["seconds"]) for p in info["phases"])
        cells = " | ".join("%.1f" % per[n] if n in per else "-" for n in names)
        row = (host, cells, info["total_seconds"], info["recovery_seconds"], info["result"])
        out.append("| %s | %s | %.1f | %.1f | %s |" % row)
    if report["changes"]:
        out += ["", "## Against drill %s" % report["previous_drill"], "", "| phase | then | now | change |",
                "|---|---|---|---|"]
        for change in report["changes"]:
            flag = " regressed" if change["regressed"] else ""
            row = (change["phase"], change["previous"], change["seconds"], change["change_pct"], flag)
            out.append("| %s | %.1f | %.1f | %+d%%%s |" % row)
    out += ["", "## Slowest steps", "", "| seconds | host | phase | task |", "|---|---|---|---|"]
    out.extend("| %.1f | %s | %s | %s |" % (s["seconds"], s["host"], s["phase"], s["task"].replace("|", "/"))
               for s in report["slowest_steps"])
    return "\n".join(out) + "\n"


def render_junit(report):
    cases, failures = [], 0
    for host, info in sorted(report["hosts"].items()):
        for phase in info["phases"]:
            body = ""
            if phase["failed"]:
                failures += 1
                body = "<failure message=%s/>" % quoteattr("a task failed in this phase")
            cases.append("<testcase classname=%s name=%s time=\"%.3f\">%s</testcase>" % (
                quoteattr("drill." + host), quoteattr(phase["name"]), phase["seconds"], body))
        body = ""
        if info.get("result") != "passed":
            failures += 1
            body = "<failure message=%s/>" % quoteattr(info.get("reason") or "failed")
        cases.append("<testcase classname=%s name=\"drill result\" time=\"%.3f\">%s</testcase>" % (
            quoteattr("drill." + host), info["total_seconds"], body))
    if report["rto_budget_seconds"]:
        body = ""
        if report["over_budget"]:
            failures += 1
            body = "<failure message=%s/>" % quoteattr("recovery %.1f s over the %.0f s budget" % (
                report["recovery_seconds_max"], report["rto_budget_seconds"]))
        cases.append("<testcase classname=\"drill\" name=\"recovery time budget\" time=\"%.3f\">%s</testcase>"
                     % (report["recovery_seconds_max"], body))
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<testsuites><testsuite name=%s tests="%d" failures="%d" '
            'time="%.3f">\n%s\n</testsuite></testsuites>\n' % (quoteattr("rollback drill " + report["id"]), len(cases),
                                                               failures, report["wall_seconds"], "\n".join(cases)))


def _tick(span):
    for step in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800):
        if span / step <= 12:
            return step
    return 3600


def render_svg(report):
    """A timeline: one row per host, one bar per phase, seconds on the axis, failed phases outlined in red."""
    hosts = sorted(report["hosts"])
    left, right, top, row = 230, 30, 56, 34
    width = 1000
    span = max(report["wall_seconds"], 1.0)
    scale = (width - left - right) / span
    height = top + row * len(hosts) + 80
    parts = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" '
             'font-family="DejaVu Sans, Arial, sans-serif" font-size="12">' % (width, height, width, height),
             '<rect width="100%" height="100%" fill="#ffffff"/>',
             '<text x="10" y="22" font-size="16" font-weight="bold">%s</text>' % escape(
                 "Rollback drill %s - %s - %.1f s" % (report["id"], report["result"].upper(), report["wall_seconds"]))]
    step = _tick(span)
    tick = 0
    while tick <= span:
        x = left + tick * scale
        parts.append('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#dddddd"/>' % (x, top - 8, x, top + row * len(hosts)))
        parts.append('<text x="%.1f" y="%d" text-anchor="middle" fill="#555555">%ds</text>' % (x, top - 12, tick))
        tick += step
    for index, host in enumerate(hosts):
        y = top + index * row
        info = report["hosts"][host]
        colour = "#000000" if info.get("result") == "passed" else "#c0392b"
        parts.append('<text x="10" y="%d" fill="%s">%s</text>' % (y + 20, colour, escape(host[:32])))
        for phase in info["phases"]:
            x, w = left + phase["offset"] * scale, max(1.0, phase["seconds"] * scale)
            stroke = ' stroke="#c0392b" stroke-width="2"' if phase["failed"] else ""
            parts.append('<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="%s"%s><title>%s</title></rect>' % (
                x, y + 5, w, row - 10, COLOURS.get(phase["name"], "#cccccc"), stroke,
                escape("%s %s: %.1f s" % (host, phase["name"], phase["seconds"]))))
            if w > 40:
                parts.append('<text x="%.1f" y="%d" font-size="10">%s</text>' % (x + 3, y + 21, escape(phase["name"])))
    legend_y = top + row * len(hosts) + 30
    x = left
    names = []
    for info in report["hosts"].values():
        names.extend(p["name"] for p in info["phases"] if p["name"] not in names)
    for name in names:
        parts.append('<rect x="%d" y="%d" width="12" height="12" fill="%s"/>' % (x, legend_y, COLOURS.get(name, "#cccccc")))
        parts.append('<text x="%d" y="%d">%s</text>' % (x + 16, legend_y + 11, escape(name)))
        x += 24 + 8 * len(name)
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def write_reports(report, directory, history_path):
    """Write drill-<id>.json/.md/.xml/.svg (0600) and append the drill to the history; return the paths."""
    ensure_dir(os.path.dirname(os.path.abspath(history_path)))
    base = os.path.join(directory, "drill-%s" % report["id"])
    paths = {"json": base + ".json", "markdown": base + ".md", "junit": base + ".xml", "svg": base + ".svg"}
    write_atomic(paths["json"], json.dumps(report, indent=2, sort_keys=True))  # 0600, in a 0700 directory
    write_atomic(paths["markdown"], render_markdown(report))
    write_atomic(paths["junit"], render_junit(report))
    write_atomic(paths["svg"], render_svg(report))
    entry = {"id": report["id"], "finished_at": report["finished_at"], "result": report["result"],
             "wall_seconds": report["wall_seconds"], "phase_max": report["phase_max"],
             "recovery_seconds_max": report["recovery_seconds_max"], "hosts": len(report["hosts"])}
    fd = os.open(history_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a") as handle:
        handle.write(json.dumps(entry, sort_keys=True) + "\n")
    return paths
