# -*- coding: utf-8 -*-
# Copyright: (c) 2026, engine_ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Drain an Engine: signal, wait for in-flight turns within the window, then kill.

In-flight turns are read from the Engine's own JSON log lines, using only what the contract
promises: every line carries `request_id`, and a request's completion line carries
`extra.duration_ms`. A request with lines but no completion line is in flight.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import calendar
import time

HEALTH_PATHS = ("/health",)


def in_flight(records):
    """Request ids that have started (any line) and not completed (no line with duration_ms)."""
    started, completed = [], set()
    for record in records:
        rid = record.get("request_id")
        if not rid:
            continue
        extra = record.get("extra") if isinstance(record.get("extra"), dict) else {}
        if extra.get("path") in HEALTH_PATHS:
            continue
        if "duration_ms" in extra:
            completed.add(rid)
        elif rid not in started:
            started.append(rid)
    return [rid for rid in started if rid not in completed]


def completed(records, request_ids):
    wanted = set(request_ids)
    return sorted({r.get("request_id") for r in records
                   if r.get("request_id") in wanted and "duration_ms" in (r.get("extra") or {})})


def drain(docker, container, signal="SIGTERM", timeout=30, kill_timeout=10, now=time.monotonic):
    """Stop a running Engine gracefully; return what happened.

    `container` is the inspect document. The SIGKILL after `timeout` is what `docker stop`
    does too; the difference is that this reports which turns the kill cut.
    """
    cid = container["Id"]
    since = started_at(container)
    before = in_flight(docker.log_records(cid, since=since))
    began = now()
    docker.kill(cid, signal)
    exit_code = docker.wait(cid, timeout)
    killed = exit_code is None
    if killed:
        docker.kill(cid, "SIGKILL")
        exit_code = docker.wait(cid, kill_timeout)
    duration = now() - began
    after = docker.log_records(cid, since=since)
    done = completed(after, before)
    cut = [rid for rid in before if rid not in done]
    return {
        "clean": not killed and exit_code == 0,
        "killed": killed,
        "signal": signal,
        "drain_timeout": timeout,
        "duration_seconds": round(duration, 3),
        "exit_code": exit_code,
        "in_flight_at_start": len(before),
        "in_flight_request_ids": before,
        "completed_during_drain": len(done),
        "cut_turns": len(cut),
        "cut_request_ids": cut,
    }


def started_at(container):
    """Unix seconds the container last started (logs before that belong to an earlier run)."""
    text = ((container.get("State") or {}).get("StartedAt") or "")[:19]
    if not text or text.startswith("0001"):
        return None
    return calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%S"))
