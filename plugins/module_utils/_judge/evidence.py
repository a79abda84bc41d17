# -*- coding: utf-8 -*-
# Copyright: (c) 2026, engine_ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Evidence about a release, from what the Engine already produces: its JSON log lines, /health, evals.

Only contract fields are read from log lines: `timestamp`, `level`, `request_id`, `extra.duration_ms` (a
request's completion) and `extra.error_code` (on ERROR lines). Optional fields are used when present and
ignored when not: `extra.path` (to leave out /health probes) and `extra.conversation_id` (to tell errors
of one conversation from a general failure).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import calendar
import json
import re
import time
import xml.etree.ElementTree as ET

from ansible_collections.engine_ops.lifecycle.plugins.module_utils._judge.health import percentile
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._errors import EngineOpsError

IGNORED_PATHS = ("/health",)
ERROR_LEVELS = ("ERROR", "CRITICAL")
_TS = re.compile(r"^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(\.\d+)?(Z|[+-]00:?00)?$")


class EvidenceError(EngineOpsError):
    pass


def parse_timestamp(text):
    """Seconds since the epoch of an ISO-8601 UTC timestamp, or None."""
    match = _TS.match(str(text or ""))
    if not match:
        return None
    whole = calendar.timegm(time.strptime("%s %s" % (match.group(1), match.group(2)), "%Y-%m-%d %H:%M:%S"))
    return whole + float(match.group(3) or 0)


def requests_from_logs(records, ignored_paths=IGNORED_PATHS):
    """(requests, engine_errors): one entry per completed request, and error codes logged outside requests.

    A request is a request_id with a line carrying extra.duration_ms; its latency is the largest such
    value, its time the latest such line, its error code the first one an ERROR line gave it.
    """
    by_id, engine_errors, order = {}, {}, []
    for record in records:
        extra = record.get("extra") if isinstance(record.get("extra"), dict) else {}
        at = parse_timestamp(record.get("timestamp"))
        code = extra.get("error_code") if record.get("level") in ERROR_LEVELS else None
        rid = record.get("request_id")
        if not rid:
            if code:
                engine_errors[code] = engine_errors.get(code, 0) + 1
            continue
        if rid not in by_id:
            by_id[rid] = {"request_id": rid}
            order.append(rid)
        entry = by_id[rid]
        if extra.get("path") in ignored_paths:
            entry["ignored"] = True
        if code and "error_code" not in entry:
            entry["error_code"] = code
        if extra.get("conversation_id"):
            entry["conversation"] = extra["conversation_id"]
        if "duration_ms" in extra and at is not None:
            try:
                duration = float(extra["duration_ms"])
            except (TypeError, ValueError):
                continue
            entry["duration_ms"] = max(duration, entry.get("duration_ms", 0.0))
            entry["at"] = max(at, entry.get("at", 0.0))
    requests = [by_id[rid] for rid in order if "duration_ms" in by_id[rid] and not by_id[rid].get("ignored")]
    return requests, engine_errors


def stats(requests, excluded_codes=()):
    """Counts, error rate by code and latency percentiles of a list of requests."""
    errors = {}
    for request in requests:
        code = request.get("error_code")
        if code and code not in excluded_codes:
            errors[code] = errors.get(code, 0) + 1
    latencies = [r["duration_ms"] for r in requests]
    total = len(requests)
    result = {"requests": total, "errors": sum(errors.values()), "errors_by_code": errors,
              "error_rate": round(sum(errors.values()) / float(total), 4) if total else None}
    for share in (50, 95, 99):
        result["p%d_ms" % share] = percentile(latencies, share) if latencies else None
    return result


def windows(requests, start, end, window_seconds, excluded_codes=()):
    """Statistics per consecutive window of window_seconds from start to end (the last may be shorter)."""
    result = []
    left = start
    while left < end:
        right = min(left + window_seconds, end)
        inside = [r for r in requests if left <= r["at"] < right or (right == end and r["at"] == end)]
        entry = stats(inside, excluded_codes)
        entry.update(start=round(left, 3), end=round(right, 3))
        result.append(entry)
        left = right
    return result


def concentration(requests, excluded_codes=()):
    """The largest share of the errors that one request or one conversation accounts for."""
    failed = [r for r in requests if r.get("error_code") and r["error_code"] not in excluded_codes]
    if not failed:
        return {"errors": 0, "share": 0.0, "key": None}
    best = (0, None)
    for field in ("request_id", "conversation"):
        counts = {}
        for request in failed:
            value = request.get(field)
            if value:
                counts[value] = counts.get(value, 0) + 1
        for value, count in counts.items():
            if count > best[0]:
                best = (count, "%s %s" % (field.replace("_id", ""), value))
    return {"errors": len(failed), "share": round(best[0] / float(len(failed)), 3), "key": best[1]}


def health_summary(samples):
    """Samples are {"at", "classification", "failing"} in time order; returns the non-ok streak at the end."""
    summary = {"samples": len(samples), "classifications": {}}
    for sample_ in samples:
        summary["classifications"][sample_["classification"]] = summary["classifications"].get(
            sample_["classification"], 0) + 1
    streak = []
    for sample_ in samples:
        if sample_["classification"] == "ok":
            streak = []
        else:
            streak.append(sample_)
    summary["non_ok_at_end"] = bool(streak)
    if samples:
        summary["last_classification"] = samples[-1]["classification"]
    if streak:
        summary["non_ok_since"] = streak[0]["at"]
        summary["non_ok_seconds"] = round(samples[-1]["at"] - streak[0]["at"], 3)
        summary["non_ok_classification"] = streak[-1]["classification"]
        summary["failing"] = list(streak[-1].get("failing") or [])
    return summary


_PASSED, _FAILED, _SKIPPED = "passed", "failed", "skipped"


def _status(value):
    if isinstance(value, bool):
        return _PASSED if value else _FAILED
    text = str(value).lower()
    if text in ("passed", "pass", "ok", "success", "green", "true"):
        return _PASSED
    if text in ("skipped", "skip"):
        return _SKIPPED
    return _FAILED


def eval_cases(text):
    """{case name: passed|failed|skipped} from a JUnit XML document or a JSON eval result."""
    text = (text or "").strip()
    if not text:
        raise EvidenceError("the eval result is empty")
    if text.startswith("<"):
        try:
            root = ET.fromstring(text)
        except ET.ParseError as exc:
            raise EvidenceError("the eval result is not valid JUnit XML: %s" % exc)
        cases = {}
        for case in root.iter("testcase"):
            name = "%s.%s" % (case.get("classname"), case.get("name")) if case.get("classname") else case.get("name")
            if case.find("failure") is not None or case.find("error") is not None:
                cases[name] = _FAILED
            elif case.find("skipped") is not None:
                cases[name] = _SKIPPED
            else:
                cases[name] = _PASSED
        return cases
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise EvidenceError("the eval result is neither JUnit XML nor JSON: %s" % exc)
    if isinstance(data, dict) and isinstance(data.get("cases"), list):
        data = data["cases"]
    if isinstance(data, list):
        cases = {}
        for case in data:
            if not isinstance(case, dict) or "name" not in case:
                raise EvidenceError("each eval case needs a name: %r" % (case,))
            cases[str(case["name"])] = _status(case.get("status", case.get("passed", case.get("outcome"))))
        return cases
    if isinstance(data, dict):
        return dict((str(name), _status(value)) for name, value in data.items())
    raise EvidenceError("the eval result JSON is neither a list of cases nor a mapping")


def container_times(container):
    """(started_at, finished_at or None when running) of a container, in epoch seconds."""
    state = container.get("State") or {}
    started = parse_timestamp((state.get("StartedAt") or "")[:26].rstrip("Z") + "Z") if state.get("StartedAt") else None
    finished = None
    if not state.get("Running") and state.get("FinishedAt") and not state["FinishedAt"].startswith("0001"):
        finished = parse_timestamp(state["FinishedAt"][:26].rstrip("Z") + "Z")
    return started, finished


def watch_health(probe_once_, url, seconds, interval, count=None, clock=time.time, sleep=time.sleep):
    """Health samples {"at", "classification", "failing"} every `interval`: `count` of them, or for `seconds`."""
    samples = []
    end = clock() + seconds
    while True:
        result = probe_once_(url)
        samples.append({"at": round(clock(), 3), "classification": result["classification"],
                        "failing": result.get("failing") or [], "latency_ms": result.get("latency_ms")})
        if (len(samples) >= count) if count else (clock() + interval > end):
            return samples
        sleep(interval)


def prometheus_windows(get, base_url, queries, start, end, step):
    """Windows from a Prometheus-compatible query_range API: error rate, p99 (ms) and requests per step."""
    try:
        from urllib.parse import urlencode
    except ImportError:  # Python 2
        from urllib import urlencode  # pylint: disable=no-name-in-module
    series = {}
    for key, query in queries.items():
        if not query:
            continue
        url = "%s/api/v1/query_range?%s" % (base_url.rstrip("/"), urlencode(
            {"query": query, "start": "%.3f" % start, "end": "%.3f" % end, "step": "%ds" % max(1, int(step))}))
        status, body = get(url, 10)
        try:
            document = json.loads(body)
        except (TypeError, ValueError):
            raise EvidenceError("Prometheus at %s answered HTTP %s without JSON" % (base_url, status))
        if status != 200 or document.get("status") != "success":
            raise EvidenceError("Prometheus query %r failed: HTTP %s %s" % (query, status, document.get("error", "")))
        result = (document.get("data") or {}).get("result") or []
        series[key] = dict((float(t), float(v)) for t, v in (result[0]["values"] if result else []))
    stamps = sorted(set(t for values in series.values() for t in values))
    found = []
    for stamp in stamps:
        requests = series.get("requests", {}).get(stamp)
        found.append({"start": stamp - step, "end": stamp,
                      "requests": int(requests) if requests is not None else None,
                      "error_rate": series.get("error_rate", {}).get(stamp),
                      "p99_ms": series.get("p99_ms", {}).get(stamp), "errors_by_code": {}})
    return found
