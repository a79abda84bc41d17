#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, engine_ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: engine_baseline
short_description: Record how a healthy Engine behaves, to judge the next release against
version_added: 0.1.0
description:
  - Reads the Engine's JSON log lines from Docker over the last O(window_seconds) (request rate, error rate by
    code, p50/p95/p99 latency), takes O(health_samples) C(/health) samples, and reads the eval results when given.
  - Writes them as JSON (0600) with the snapshot O(snapshot) (C(<store>/<engine>/<snapshot>/baseline.json)), or
    on its own (C(<store>/<engine>/baselines/<time>.json)), or to O(dest).
    M(engine_ops.lifecycle.rollback_decision) finds it there.
  - In check mode the baseline is measured and returned, not written.
author:
  - engine_ops maintainers (@engine-ops)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - engine_ops.lifecycle._engine.attributes
  - engine_ops.lifecycle._engine.docker
  - engine_ops.lifecycle._engine.engine
attributes:
  diff_mode:
    support: none
options:
  health_url:
    description: The Engine's health URL; without it, no health samples are taken.
    type: str
  health_samples:
    description: How many /health samples to take.
    type: int
    default: 5
  health_interval:
    description: Seconds between health samples.
    type: float
    default: 1
  window_seconds:
    description: How far back to read the logs (never before the container started).
    type: int
    default: 3600
  eval_results:
    description: Eval results of this release (JUnit XML or JSON), kept case by case.
    type: path
  eval_results_content:
    description: The same, as text (for results written on the controller).
    type: str
  store:
    description: Snapshot store to write the baseline into.
    type: path
  snapshot:
    description: With O(store), keep the baseline with this snapshot (the pre-upgrade snapshot).
    type: str
  dest:
    description: Write the baseline here instead of into the store.
    type: path
"""

EXAMPLES = r"""
- name: Record the baseline with the pre-upgrade snapshot
  engine_ops.lifecycle.engine_baseline:
    container: engine
    health_url: http://127.0.0.1:8000/health
    store: /var/lib/engine_ops/snapshots
    snapshot: "{{ pre_upgrade.snapshot.id }}"
"""

RETURN = r"""
baseline:
  description: What was measured.
  returned: always
  type: dict
  sample: {"stats": {"requests": 420, "error_rate": 0.004, "errors_by_code": {"TOOL_EXECUTION_FAILED": 2},
           "p50_ms": 8012, "p95_ms": 31000, "p99_ms": 58000, "requests_per_minute": 7.0},
           "health": {"samples": 5, "classifications": {"ok": 5}}, "evals": null}
path:
  description: Where it was written (where it would be, in check mode).
  returned: always
  type: str
"""

import json
import time

from ansible_collections.engine_ops.lifecycle.plugins.module_utils._module import EngineOpsModule, http_get, run
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._errors import EngineDockerError
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._judge.evidence import (
    EvidenceError, container_times, eval_cases, health_summary, requests_from_logs, stats, watch_health)
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._state.files import write_atomic
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._judge.health import percentile, probe_once
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain.store import StoreError, baseline_path


def main():
    module = EngineOpsModule(
        argument_spec=dict(
            health_url=dict(type="str"),
            health_samples=dict(type="int", default=5),
            health_interval=dict(type="float", default=1),
            window_seconds=dict(type="int", default=3600),
            eval_results=dict(type="path"),
            eval_results_content=dict(type="str"),
            store=dict(type="path"),
            snapshot=dict(type="str"),
            dest=dict(type="path"),
        ),
        required_one_of=[("store", "dest")],
        mutually_exclusive=[("snapshot", "dest"), ("eval_results", "eval_results_content")],
        supports_check_mode=True,
    )
    p = module.params
    container = module.find_engine()
    name = container["Name"].lstrip("/")
    try:
        path = p["dest"] or baseline_path(p["store"], name, p["snapshot"])
    except StoreError as exc:
        module.fail_action("check options", exc)
    until = time.time()
    started = container_times(container)[0] or 0
    since = max(started, until - p["window_seconds"])
    try:
        records = module.docker.log_records(container["Id"], since=int(since))
    except EngineDockerError as exc:
        module.fail_action("read the Engine's logs", exc)
    requests = [r for r in requests_from_logs(records)[0] if r["at"] >= since]
    measured = stats(requests)
    measured["requests_per_minute"] = round(len(requests) * 60.0 / max(1.0, until - since), 3)
    baseline = {"engine": name, "image": container["Config"]["Image"], "since": round(since, 3),
                "until": round(until, 3), "stats": measured, "health": None, "evals": None,
                "captured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(until))}
    if p["health_url"] and p["health_samples"] > 0:
        samples = watch_health(lambda url: probe_once(http_get, url, 2.0), p["health_url"], 0, p["health_interval"],
                               count=p["health_samples"])
        latencies = [s["latency_ms"] for s in samples]
        baseline["health"] = dict(health_summary(samples), latency_ms={"p50": percentile(latencies, 50),
                                                                       "p99": percentile(latencies, 99)})
    if p["eval_results"] or p["eval_results_content"]:
        try:
            if p["eval_results_content"]:
                baseline["evals"] = eval_cases(p["eval_results_content"])
            else:
                with open(p["eval_results"]) as handle:
                    baseline["evals"] = eval_cases(handle.read())
        except (IOError, OSError, EvidenceError) as exc:
            module.fail_action("read the eval results", exc)
    if not module.check_mode:
        try:
            write_atomic(path, json.dumps(baseline, indent=2, sort_keys=True))
        except (IOError, OSError) as exc:
            module.fail_action("write the baseline %s" % path, exc)
    module.exit_json(changed=True, baseline=baseline, path=path)


if __name__ == "__main__":
    run(main)
