# -*- coding: utf-8 -*-
# Copyright: (c) 2026, engine_ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Classify the Engine's /health answers, probe until healthy, and sample for baselines.

Pure logic: the HTTP call, the clock, sleep and randomness are injected.
`get(url, timeout)` returns (http_status, body_text) or raises an exception for no answer.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import random
import time

CLASSIFICATIONS = ("ok", "unreachable", "starting", "draining", "subsystem_failure", "migration_required",
                   "external_only", "unhealthy")
EXTERNAL_SUBSYSTEMS = ("llm_provider",)
# Waiting does not cure these: a probe that meets one stops at once unless told to keep going.
TERMINAL = ("migration_required",)


def classify(http_status, body_text, error=None):
    """Turn one /health answer into a classification; healthy means HTTP 2xx and status "ok"."""
    result = {"classification": "unhealthy", "healthy": False, "http_status": http_status, "status": None,
              "version": None, "subsystems": {}, "failing": [], "body": None, "reason": ""}
    if error is not None or http_status is None:
        result.update(classification="unreachable", http_status=None, reason=str(error or "no answer"))
        return result
    try:
        body = json.loads(body_text) if body_text else None
    except ValueError:
        body = None
    if not isinstance(body, dict):
        result["reason"] = "HTTP %s with a body that is not a JSON object" % http_status
        return result
    subsystems = body.get("subsystems") if isinstance(body.get("subsystems"), dict) else {}
    failing = sorted(name for name, state in subsystems.items() if state != "ok")
    error_doc = body.get("error") if isinstance(body.get("error"), dict) else {}
    result.update(body=body, status=body.get("status"), version=body.get("version"), subsystems=subsystems,
                  failing=failing)
    if error_doc.get("code") == "MIGRATION_REQUIRED":
        result.update(classification="migration_required",
                      reason=error_doc.get("message") or "the brain needs a newer Engine")
    elif 200 <= http_status < 300 and body.get("status") == "ok":
        result.update(classification="ok", healthy=True, reason="ok")
    elif body.get("status") in ("starting", "draining"):
        result.update(classification=body["status"], reason="the Engine is %s" % body["status"])
    elif failing and all(name in EXTERNAL_SUBSYSTEMS for name in failing):
        result.update(classification="external_only",
                      reason="only %s failing: the cause is outside the Engine" % ", ".join(failing))
    elif failing:
        result.update(classification="subsystem_failure", reason="failing subsystems: %s" % ", ".join(failing))
    else:
        result["reason"] = "HTTP %s, status %r" % (http_status, body.get("status"))
    return result


def probe_once(get, url, timeout, now=time.monotonic):
    began = now()
    try:
        status, text = get(url, timeout)
        result = classify(status, text)
    except Exception as exc:  # any failure to get an answer is "unreachable"; pylint: disable=broad-except
        result = classify(None, None, error=exc)
    result["latency_ms"] = round((now() - began) * 1000, 1)
    return result


def probe(get, url, timeout=2.0, deadline=60.0, consecutive=1, backoff=0.1, backoff_max=2.0, jitter=0.1,
          stop_on=TERMINAL, now=time.monotonic, sleep=time.sleep, rng=random.random):
    """Poll until `consecutive` healthy answers in a row, a terminal classification, or the deadline.

    Retries start fast (`backoff`) and double up to `backoff_max`, each with +/- `jitter` share of
    randomness, and never sleep past the deadline.
    """
    began = now()
    attempts, streak, delay = 0, 0, backoff
    seen = {}
    while True:
        attempts += 1
        result = probe_once(get, url, timeout, now)
        seen[result["classification"]] = seen.get(result["classification"], 0) + 1
        if result["healthy"]:
            streak += 1
            delay = backoff
        else:
            streak = 0
        elapsed = now() - began
        done = streak >= consecutive or result["classification"] in stop_on
        if done or elapsed >= deadline:
            result.update(attempts=attempts, consecutive_ok=streak, elapsed_ms=round(elapsed * 1000, 1),
                          classifications_seen=seen, healthy=streak >= consecutive)
            if not done:
                result["reason"] = "deadline of %ss passed: %s" % (deadline, result["reason"])
            return result
        pause = delay * (1 + jitter * (2 * rng() - 1)) if not result["healthy"] else min(backoff, delay)
        sleep(max(0.0, min(pause, deadline - elapsed)))
        if not result["healthy"]:
            delay = min(delay * 2, backoff_max)


def percentile(values, share):
    """Nearest-rank percentile of a non-empty list (share in 0..100)."""
    ordered = sorted(values)
    rank = max(1, int(-(-share * len(ordered) // 100)))
    return ordered[min(rank, len(ordered)) - 1]


def sample(get, url, count, interval=1.0, timeout=2.0, now=time.monotonic, sleep=time.sleep):
    """Take `count` samples `interval` apart; return them with error rate and latency percentiles."""
    samples = []
    for index in range(count):
        if index:
            sleep(interval)
        result = probe_once(get, url, timeout, now)
        samples.append({"classification": result["classification"], "http_status": result["http_status"],
                        "latency_ms": result["latency_ms"]})
    latencies = [s["latency_ms"] for s in samples]
    errors = sum(1 for s in samples if s["classification"] != "ok")
    counts = {}
    for s in samples:
        counts[s["classification"]] = counts.get(s["classification"], 0) + 1
    return {"samples": samples, "count": count, "errors": errors, "error_rate": round(errors / float(count), 4),
            "classifications": counts,
            "latency_ms": {"p50": percentile(latencies, 50), "p95": percentile(latencies, 95),
                           "p99": percentile(latencies, 99), "max": max(latencies)}}
