#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, engine_ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: rollback_decision
short_description: Decide from evidence whether an Engine release should be rolled back
version_added: 0.1.0
description:
  - Gathers the evidence the Engine already produces, then returns a verdict - V(rollback), V(hold) or
    V(inconclusive) - with every rule, the numbers behind it, and a one-line symptom for the incident channel
    ("error rate 31.0% vs 0.4% baseline for 6 min, not improving").
  - Evidence. The Engine's JSON log lines read from Docker since O(since) (requests, errors by code, latency
    percentiles, in windows of O(window_seconds)); or a Prometheus-compatible query API (O(prometheus)).
    C(/health) sampled for O(observe_seconds). Eval results (JUnit XML or JSON) compared case by case with the
    baseline run. Operator inputs O(customer_reports) and O(expected_changes).
  - Rules. C(/health) not ok beyond O(health_grace_seconds); error rate above O(error_rate_max) and above
    O(error_rate_multiple) times the baseline's, or p99 above O(latency_multiple) times the baseline's, for
    O(consecutive_windows) windows up to now and not improving; eval cases that passed in the baseline and fail
    now; confirmed customer reports.
  - Guards. A single outlier window does not count; metrics named in O(expected_changes) do not count; errors
    concentrated in one request or conversation are local; an C(llm_provider)-only failure is outside the Engine
    and is reported, not rolled back.
  - Never changes anything. RV(rollback) says what to do, including for V(inconclusive) (O(inconclusive_action)).
author:
  - engine_ops maintainers (@engine-ops)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - engine_ops.lifecycle._engine.attributes
  - engine_ops.lifecycle._engine.docker
  - engine_ops.lifecycle._engine.engine
attributes:
  check_mode:
    support: full
    details: A read-only module; it changes nothing in either mode.
  diff_mode:
    support: none
options:
  health_url:
    description: The Engine's health URL; without it, health is not sampled.
    type: str
  observe_seconds:
    description: Watch for this long (sampling /health) before judging; V(0) judges what is there now.
    type: float
    default: 0
  health_interval:
    description: Seconds between health samples while watching.
    type: float
    default: 5
  since:
    description:
      - Start of the evidence, an ISO-8601 UTC time. Defaults to when the Engine's container started (the release
        being judged).
    type: str
  window_seconds:
    description: Length of one window; rules need O(consecutive_windows) windows in a row.
    type: int
    default: 60
  baseline:
    description:
      - A baseline file written by M(engine_ops.lifecycle.engine_baseline). Without it, and with O(store), the
        rollback target's baseline is used, else the newest one in the store.
    type: path
  store:
    description: Snapshot store, to find the baseline when O(baseline) is not given.
    type: path
  eval_results:
    description: Eval results of the release being judged (JUnit XML or JSON), compared with the baseline's.
    type: path
  eval_results_content:
    description: The same, as text (for results written on the controller).
    type: str
  customer_reports:
    description: Customer reports; confirmed ones count.
    type: list
    elements: dict
    default: []
    suboptions:
      summary:
        description: What the customers report.
        type: str
      confirmed:
        description: Whether the breakage is confirmed.
        type: bool
        default: false
  expected_changes:
    description:
      - What the changelog announced; matching rules do not count. V(error_rate), V(latency), V(health),
        V(error_code:<CODE>) (those errors are left out), V(eval:<case>).
    type: list
    elements: str
    default: []
  error_rate_max:
    description: Error rate above which a window breaches (the on-call threshold).
    type: float
    default: 0.05
  error_rate_multiple:
    description: A window breaches only above this multiple of the baseline's error rate too.
    type: float
    default: 2.0
  latency_multiple:
    description: p99 above this multiple of the baseline's p99 breaches.
    type: float
    default: 2.0
  consecutive_windows:
    description: Breaching windows in a row, up to now, for an error or latency rule to fire.
    type: int
    default: 2
  min_requests:
    description: Windows with fewer requests are not judged.
    type: int
    default: 5
  health_grace_seconds:
    description: How long /health may be non-ok before it counts.
    type: float
    default: 180
  inconclusive_action:
    description: What V(inconclusive) means for RV(rollback).
    type: str
    choices: [rollback, hold]
    default: rollback
  prometheus:
    description:
      - A Prometheus-compatible query API to take error rate and latency windows from instead of the logs. Each
        query is evaluated with C(query_range) over the evidence period at a step of O(window_seconds).
    type: dict
    suboptions:
      url:
        description: Base URL, for example C(http://prometheus:9090).
        type: str
        required: true
      error_rate_query:
        description: PromQL giving the error rate (0 to 1).
        type: str
      p99_query:
        description: PromQL giving the p99 latency in milliseconds.
        type: str
      requests_query:
        description: PromQL giving the requests per window (windows below O(min_requests) are not judged).
        type: str
"""

EXAMPLES = r"""
- name: Watch the new release for five minutes and judge it
  engine_ops.lifecycle.rollback_decision:
    container: engine
    health_url: http://127.0.0.1:8000/health
    observe_seconds: 300
    store: /var/lib/engine_ops/snapshots
    expected_changes: [latency]
  register: verdict

- name: Roll back when the evidence says so
  ansible.builtin.include_role:
    name: engine_ops.lifecycle.rollback
  vars:
    rollback_version: v2.3.1
    rollback_reason: "{{ verdict.symptom }}"
  when: verdict.rollback
"""

RETURN = r"""
verdict:
  description: V(rollback), V(hold) or V(inconclusive).
  returned: always
  type: str
rollback:
  description: Whether to roll back (V(rollback), or V(inconclusive) with O(inconclusive_action=rollback)).
  returned: always
  type: bool
symptom:
  description: One line for the incident message.
  returned: always
  type: str
  sample: error rate 50.0% vs 0.0% baseline for 3 min, not improving
fired:
  description: Names of the rules that count towards the verdict.
  returned: always
  type: list
  elements: str
rules:
  description: Every rule with C(fired), C(counted), C(guard), C(pending), C(numbers) and C(detail).
  returned: always
  type: list
  elements: dict
evidence:
  description: The evidence judged (period, windows, overall statistics, health summary, baseline file, evals).
  returned: always
  type: dict
"""

import json
import time

from ansible_collections.engine_ops.lifecycle.plugins.module_utils._module import EngineOpsModule, http_get, run
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._judge.decision import DEFAULTS, decide
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._errors import EngineDockerError
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._judge.evidence import (
    EvidenceError, concentration, container_times, eval_cases, health_summary, parse_timestamp, prometheus_windows,
    requests_from_logs, stats, watch_health, windows)
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._judge.health import probe_once
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain.store import find_baseline


def read_text(module, path, what):
    try:
        with open(path) as handle:
            return handle.read()
    except (IOError, OSError) as exc:
        module.fail_action("read the %s" % what, exc)


def main():
    module = EngineOpsModule(
        argument_spec=dict(
            health_url=dict(type="str"),
            observe_seconds=dict(type="float", default=0),
            health_interval=dict(type="float", default=5),
            since=dict(type="str"),
            window_seconds=dict(type="int", default=60),
            baseline=dict(type="path"),
            store=dict(type="path"),
            eval_results=dict(type="path"),
            eval_results_content=dict(type="str"),
            customer_reports=dict(type="list", elements="dict", default=[], options=dict(
                summary=dict(type="str"), confirmed=dict(type="bool", default=False))),
            expected_changes=dict(type="list", elements="str", default=[]),
            error_rate_max=dict(type="float", default=DEFAULTS["error_rate_max"]),
            error_rate_multiple=dict(type="float", default=DEFAULTS["error_rate_multiple"]),
            latency_multiple=dict(type="float", default=DEFAULTS["latency_multiple"]),
            consecutive_windows=dict(type="int", default=DEFAULTS["consecutive_windows"]),
            min_requests=dict(type="int", default=DEFAULTS["min_requests"]),
            health_grace_seconds=dict(type="float", default=DEFAULTS["health_grace_seconds"]),
            inconclusive_action=dict(type="str", choices=["rollback", "hold"], default=DEFAULTS["inconclusive_action"]),
            prometheus=dict(type="dict", options=dict(
                url=dict(type="str", required=True), error_rate_query=dict(type="str"), p99_query=dict(type="str"),
                requests_query=dict(type="str"))),
        ),
        mutually_exclusive=[("eval_results", "eval_results_content")],
        supports_check_mode=True,
        read_only=True,
    )
    p = module.params
    if p["window_seconds"] < 1:
        module.fail_action("check options", "window_seconds must be at least 1")
    container = module.find_engine()
    name = container["Name"].lstrip("/")
    started, finished = container_times(container)
    since = parse_timestamp(p["since"]) if p["since"] else started
    if since is None:
        module.fail_action("check options", "since %r is not an ISO-8601 UTC time" % p["since"])

    # Baseline: named, else the rollback target's, else the newest in the store.
    baseline, baseline_path = None, p["baseline"]
    if not baseline_path and p["store"]:
        baseline_path = find_baseline(p["store"], name)
    if baseline_path:
        try:
            baseline = json.loads(read_text(module, baseline_path, "baseline"))
        except ValueError as exc:
            module.fail_action("read the baseline %s" % baseline_path, exc)

    # Health: a down container has been down since it exited; then watch.
    samples = []
    if finished:
        samples.append({"at": finished, "classification": "unreachable", "failing": [], "latency_ms": None})
    if p["health_url"]:
        samples += watch_health(lambda url: probe_once(http_get, url, 2.0), p["health_url"], p["observe_seconds"],
                                p["health_interval"])
    elif p["observe_seconds"]:
        time.sleep(p["observe_seconds"])
    until = time.time()

    excluded = [c.split(":", 1)[1] for c in p["expected_changes"] if c.startswith("error_code:")]
    try:
        records = module.docker.log_records(container["Id"], since=int(since))
    except EngineDockerError as exc:
        module.fail_action("read the Engine's logs", exc)
    requests, engine_errors = requests_from_logs(records)
    requests = [r for r in requests if r["at"] >= since]
    evidence = {"since": round(since, 3), "until": round(until, 3), "window_seconds": p["window_seconds"],
                "source": "logs", "overall": stats(requests, excluded), "baseline": baseline_path,
                "container": {"name": name, "image": container["Config"]["Image"],
                              "running": bool((container.get("State") or {}).get("Running")),
                              "exit_code": (container.get("State") or {}).get("ExitCode")}}
    try:
        if p["prometheus"]:
            prom = p["prometheus"]
            found = prometheus_windows(http_get, prom["url"], {"error_rate": prom["error_rate_query"],
                                                               "p99_ms": prom["p99_query"],
                                                               "requests": prom["requests_query"]},
                                       since, until, p["window_seconds"])
            for window in found:
                if window["requests"] is None:
                    window["requests"] = p["min_requests"]
            evidence.update(source="prometheus", windows=found)
        else:
            evidence["windows"] = windows(requests, since, until, p["window_seconds"], excluded)
        evals = None
        if p["eval_results"] or p["eval_results_content"]:
            text = p["eval_results_content"] or read_text(module, p["eval_results"], "eval results")
            evals = {"now": eval_cases(text), "baseline": (baseline or {}).get("evals")}
            evidence["evals"] = evals
    except EvidenceError as exc:
        module.fail_action("gather the evidence", exc)
    evidence["health"] = health_summary(samples)
    evidence["concentration"] = concentration(requests, excluded)
    evidence["failing_requests"] = [{"request_id": r["request_id"], "error_code": r["error_code"], "at": r["at"]}
                                    for r in requests if r.get("error_code")][:20]
    evidence["engine_errors"] = engine_errors

    config = dict((k, p[k]) for k in DEFAULTS if k in p)  # the options that tune the decision
    result = decide(evidence["windows"], p["window_seconds"], baseline=(baseline or {}).get("stats"),
                    health=evidence["health"], evals=evals, customer_reports=p["customer_reports"],
                    expected_changes=p["expected_changes"], concentration=evidence["concentration"],
                    engine_errors=engine_errors, config=config)
    evidence["health_samples"] = samples[-50:]
    module.exit_json(changed=False, evidence=evidence, **result)


if __name__ == "__main__":
    run(main)
