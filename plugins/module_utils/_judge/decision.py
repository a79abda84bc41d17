# -*- coding: utf-8 -*-
# Copyright: (c) 2026, engine_ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rollback decision: one pure function from evidence to a verdict, every rule with its numbers.

Verdicts: `rollback` (a rule fired and no guard applies), `inconclusive` (no rule fired but the evidence is
not clean: a breach that has lasted a single window so far, /health not ok but still within its grace
period), `hold` (nothing fired, or only guarded reasons: an outlier window, a change the changelog announced,
errors local to one request or conversation, a failure outside the Engine). The runbook says: if unsure,
roll back, so `inconclusive` rolls back unless configured otherwise.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DEFAULTS = {
    "error_rate_max": 0.05,        # on-call Sev2 threshold: error rate above 5 %
    "error_rate_multiple": 2.0,    # ... and clearly above the baseline's own error rate
    "latency_multiple": 2.0,       # p99 above 2x the baseline's p99
    "consecutive_windows": 2,      # a single window is an outlier, not a trend
    "improving_share": 0.5,        # improving: the latest window is below half of the run's worst
    "min_requests": 5,             # a window with fewer requests says nothing about rates
    "health_grace_seconds": 180,   # /health may be non-ok this long before it counts
    "local_share": 0.8,            # errors this concentrated in one request or conversation are local
    "inconclusive_action": "rollback",
}
EXTERNAL = "external_only"


def _pct(value):
    return "%.1f%%" % (100 * value) if value is not None else "n/a"


def _secs(value):
    return "%.0f s" % value if value < 120 else "%.0f min" % (value / 60.0)


def _ms(value):
    return "%.0f ms" % value if value < 1000 else "%.1f s" % (value / 1000.0)


def _rule(name, fired=False, counted=None, guard=None, pending=False, numbers=None, detail=""):
    return {"rule": name, "fired": fired, "counted": fired and not guard if counted is None else counted,
            "guard": guard, "pending": pending, "numbers": numbers or {}, "detail": detail}


def breach_run(values, threshold):
    """The values of the breaching windows that run up to the last evaluable one, oldest first."""
    run = []
    for value in values:
        if value is None:
            continue
        if value > threshold:
            run.append(value)
        else:
            run = []
    return run


def _metric_rule(name, label, values, threshold, baseline_value, window_seconds, cfg, fmt):
    run = breach_run(values, threshold)
    evaluable = [v for v in values if v is not None]
    numbers = {"threshold": threshold, "baseline": baseline_value, "windows": values,
               "breaching_windows": len(run), "window_seconds": window_seconds}
    if not evaluable:
        return _rule(name, numbers=numbers, detail="%s: no window with at least %d requests"
                     % (label, cfg["min_requests"]))
    if not run:
        earlier = [v for v in evaluable if v > threshold]
        detail = "%s %s within %s" % (label, fmt(evaluable[-1]), fmt(threshold))
        if earlier:
            return _rule(name, guard="outlier", numbers=numbers,
                         detail="%s; %d earlier window(s) above it did not last" % (detail, len(earlier)))
        return _rule(name, numbers=numbers, detail=detail)
    improving = run[-1] < cfg["improving_share"] * max(run)
    numbers.update(latest=run[-1], worst=max(run), improving=improving)
    against = (" vs %s baseline" % fmt(baseline_value)) if baseline_value is not None else ""
    detail = "%s %s%s for %s, %s" % (label, fmt(run[-1]), against, _secs(len(run) * window_seconds),
                                     "improving" if improving else "not improving")
    if len(run) < cfg["consecutive_windows"]:
        return _rule(name, pending=True, numbers=numbers,
                     detail="%s (only %d window so far; %d needed)" % (detail, len(run), cfg["consecutive_windows"]))
    if improving:
        return _rule(name, guard="improving", fired=True, numbers=numbers, detail=detail)
    return _rule(name, fired=True, numbers=numbers, detail=detail)


def decide(windows, window_seconds, baseline=None, health=None, evals=None, customer_reports=None,
           expected_changes=None, concentration=None, engine_errors=None, config=None):
    """Return {"verdict", "rollback", "rules", "symptom"}; see the module docstring for the meanings."""
    cfg = dict(DEFAULTS)
    cfg.update(dict((k, v) for k, v in (config or {}).items() if v is not None))
    expected = set(expected_changes or [])
    baseline = baseline or {}
    health = health or {"samples": 0, "classifications": {}}
    rules = []

    # /health
    classes = health.get("classifications") or {}
    external = bool(classes.get(EXTERNAL)) and classes.get(EXTERNAL, 0) >= sum(
        n for c, n in classes.items() if c != "ok") and classes.get(EXTERNAL, 0) * 2 >= health.get("samples", 0)
    if health.get("non_ok_at_end") and health.get("non_ok_classification") == EXTERNAL:
        rules.append(_rule("health", fired=True, guard="external", numbers=dict(health),
                           detail="only %s fails (for %s): the cause is outside the Engine; reported, not rolled back"
                           % (", ".join(health.get("failing") or ["llm_provider"]), _secs(health.get("non_ok_seconds", 0)))))
    elif health.get("non_ok_at_end"):
        seconds = health.get("non_ok_seconds", 0)
        what = health.get("non_ok_classification")
        if health.get("failing"):
            what += " (%s)" % ", ".join(health["failing"])
        detail = "/health %s for %s" % (what, _secs(seconds))
        if "health" in expected:
            rules.append(_rule("health", fired=True, guard="expected", numbers=dict(health), detail=detail))
        elif seconds >= cfg["health_grace_seconds"]:
            rules.append(_rule("health", fired=True, numbers=dict(health), detail=detail))
        else:
            rules.append(_rule("health", pending=True, numbers=dict(health),
                               detail="%s, within the %s grace period" % (detail, _secs(cfg["health_grace_seconds"]))))
    else:
        rules.append(_rule("health", numbers=dict(health), detail="/health ok at the end (%d samples)"
                           % health.get("samples", 0)))

    # error rate
    base_rate = baseline.get("error_rate")
    threshold = max(cfg["error_rate_max"], (base_rate or 0) * cfg["error_rate_multiple"])
    rates = [w["error_rate"] if w["requests"] >= cfg["min_requests"] else None for w in windows]
    rule = _metric_rule("error_rate", "error rate", rates, threshold, base_rate, window_seconds, cfg, _pct)
    concentration = concentration or {}
    if rule["fired"] and not rule["guard"]:
        if "error_rate" in expected:
            rule["guard"] = "expected"
        elif external:
            rule["guard"] = "external"
            rule["detail"] += "; /health says only llm_provider fails: attributed to it"
        elif concentration.get("errors", 0) > 1 and concentration.get("share", 0) >= cfg["local_share"]:
            rule["guard"] = "local"
            rule["detail"] += "; %d%% of the errors come from %s" % (100 * concentration["share"], concentration["key"])
    rule["counted"] = rule["fired"] and not rule["guard"]
    rule["numbers"]["errors_by_code"] = _merge_codes(windows)
    rules.append(rule)

    # latency
    base_p99 = baseline.get("p99_ms")
    if base_p99:
        p99s = [w["p99_ms"] if w["requests"] >= cfg["min_requests"] else None for w in windows]
        rule = _metric_rule("latency_p99", "p99 latency", p99s, base_p99 * cfg["latency_multiple"], base_p99,
                            window_seconds, cfg, _ms)
        if rule["fired"] and not rule["guard"]:
            if expected & {"latency", "latency_p99"}:
                rule["guard"] = "expected"
            elif external:
                rule["guard"] = "external"
        rule["counted"] = rule["fired"] and not rule["guard"]
        rules.append(rule)
    else:
        rules.append(_rule("latency_p99", detail="no baseline p99: latency not judged"))

    # evals
    if evals and evals.get("now") is not None:
        before, now = evals.get("baseline") or {}, evals["now"]
        regressions = sorted(c for c, s in before.items() if s == "passed" and now.get(c) == "failed")
        guarded = sorted(c for c in regressions if "eval:%s" % c in expected)
        counted = [c for c in regressions if c not in guarded]
        new_failing = sorted(c for c, s in now.items() if s == "failed" and c not in before)
        numbers = {"regressions": regressions, "expected": guarded, "new_failing_without_baseline": new_failing,
                   "cases": len(now)}
        if counted:
            rules.append(_rule("evals", fired=True, numbers=numbers, detail="%d eval case(s) that passed before now "
                               "fail: %s" % (len(counted), ", ".join(counted[:5]))))
        elif guarded:
            rules.append(_rule("evals", fired=True, guard="expected", numbers=numbers,
                               detail="failing eval cases were announced: %s" % ", ".join(guarded)))
        else:
            rules.append(_rule("evals", numbers=numbers, detail="no eval case regressed (%d cases%s)" % (
                len(now), ("; failing without a baseline: " + ", ".join(new_failing[:5])) if new_failing else "")))

    # customer reports
    reports = list(customer_reports or [])
    if reports:
        confirmed = [r for r in reports if r.get("confirmed")]
        numbers = {"reports": len(reports), "confirmed": len(confirmed)}
        if confirmed:
            rules.append(_rule("customer_reports", fired=True, numbers=numbers, detail="confirmed customer reports: %s"
                               % "; ".join(str(r.get("summary", "")) for r in confirmed[:3])))
        else:
            rules.append(_rule("customer_reports", numbers=numbers,
                               detail="%d unconfirmed customer report(s): not counted until confirmed" % len(reports)))

    if engine_errors:
        rules.append(_rule("engine_errors", numbers=dict(engine_errors), detail="errors outside requests: %s"
                           % ", ".join("%s x%d" % kv for kv in sorted(engine_errors.items()))))

    counted = [r for r in rules if r["counted"]]
    pending = [r for r in rules if r["pending"]]
    if counted:
        verdict, symptom = "rollback", "; ".join(r["detail"] for r in counted)
    elif pending:
        verdict, symptom = "inconclusive", "; ".join(r["detail"] for r in pending)
    else:
        guarded = [r for r in rules if r["fired"] and r["guard"]]
        verdict = "hold"
        symptom = ("no rollback: " + "; ".join("%s (%s)" % (r["detail"], r["guard"]) for r in guarded)) if guarded else (
            "no rollback: " + "; ".join(r["detail"] for r in rules if r["rule"] in ("health", "error_rate", "latency_p99")))
    rollback = verdict == "rollback" or (verdict == "inconclusive" and cfg["inconclusive_action"] == "rollback")
    return {"verdict": verdict, "rollback": rollback, "rules": rules, "symptom": symptom,
            "fired": [r["rule"] for r in counted]}


def _merge_codes(windows):
    codes = {}
    for window in windows:
        for code, count in (window.get("errors_by_code") or {}).items():
            codes[code] = codes.get(code, 0) + count
    return codes
