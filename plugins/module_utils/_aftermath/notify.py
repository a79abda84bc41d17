# -*- coding: utf-8 -*-
# Copyright: (c) 2026, engine_ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Incident messages in the runbook's words, and their delivery with retries that never raise.

Targets: a Slack-compatible incoming webhook, a generic JSON webhook, and a Statuspage-compatible API
(incidents created at the start, updated, resolved at the all-clear).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import time

EVENTS = ("start", "all_clear", "not_recovered", "escalation", "info")
# What the status page says for each event (Statuspage incident statuses).
STATUS = {"start": "identified", "not_recovered": "monitoring", "all_clear": "resolved", "escalation": "investigating",
          "info": "monitoring"}


def _v(version):
    text = str(version or "?")
    return text if text.startswith("v") or text == "?" else "v" + text


def _data_line(facts):
    if not facts.get("data_rollback"):
        return "Data rolled back: no (the brain was kept as it was)."
    line = "Data rolled back: yes, to snapshot %s" % facts.get("snapshot", "?")
    if facts.get("rows_exported") is not None:
        line += "; %s rows written in the bad window were exported" % facts["rows_exported"]
        if facts.get("export_dir"):
            line += " to %s" % facts["export_dir"]
    return line + "."


def render(event, facts):
    """The message for an event; facts: engine, version, from, symptom, data_rollback, snapshot, rows_exported,
    export_dir, error_rate, threshold, message."""
    engine, version = facts.get("engine", "the Engine"), _v(facts.get("version"))
    if event == "start":
        text = "Rolling back %s to %s due to %s." % (engine, version, facts.get("symptom") or "an operator's decision")
        details = ["From: %s." % facts["from"]] if facts.get("from") else []
        details.append("Data rollback: %s." % ("yes, to snapshot %s" % facts.get("snapshot") if facts.get("data_rollback")
                                               else "no"))
        return " ".join([text] + details)
    if event == "all_clear":
        rate = facts.get("error_rate")
        errors = ("error rate %.1f%% (under %.1f%%)" % (100 * rate, 100 * facts.get("threshold", 0.05))
                  if rate is not None else "no errors seen")
        text = "All clear: %s is back on %s, /health ok, %s. %s" % (engine, version, errors, _data_line(facts))
        calls = facts.get("external_calls") or {}
        if calls:
            text += (" Not undone: %d bad-window row(s) record calls to external MCP systems (%s); check their effects."
                     % (sum(calls.values()), ", ".join("%s x%d" % kv for kv in sorted(calls.items()))))
        return text
    if event == "not_recovered":
        return ("%s is on %s and /health answers, but it has not recovered: %s. No all-clear yet; watching."
                % (engine, version, facts.get("symptom") or "errors persist"))
    if event == "escalation":
        return ("ESCALATION: the rollback of %s to %s failed: %s. The Engine needs a human now; no all-clear will be "
                "sent." % (engine, version, facts.get("message") or "see the run"))
    return str(facts.get("message") or "")


def deliver(send, target, method, url, body, headers=None, retries=3, delay=1.0, sleep=time.sleep):
    """Try up to 1 + retries times; return {"target", "delivered", "status", "attempts", "error", "answer"}."""
    outcome = {"target": target, "delivered": False, "status": None, "attempts": 0, "error": None, "answer": None}
    for attempt in range(1 + max(0, retries)):
        outcome["attempts"] = attempt + 1
        try:
            status, answer = send(url, 10, method=method, body=body, headers=headers)
        except Exception as exc:  # any failure to deliver is reported, never raised; pylint: disable=broad-except
            status, answer = None, None
            outcome["error"] = "%s" % (exc.__class__.__name__ if not str(exc) else exc)
        outcome["status"] = status
        if status is not None and 200 <= status < 300:
            outcome.update(delivered=True, error=None)
            try:
                outcome["answer"] = json.loads(answer) if answer else None
            except ValueError:
                outcome["answer"] = None
            return outcome
        if status is not None:
            outcome["error"] = "HTTP %s" % status
        if attempt < retries:
            sleep(delay * (2 ** attempt))
    return outcome


def statuspage_call(event, api_url, page_id, incident_id, text, name, impact):
    """(method, url, body) for the status page: create at the start, update or resolve afterwards."""
    base = "%s/v1/pages/%s/incidents" % (api_url.rstrip("/"), page_id)
    if event == "start" or not incident_id:
        return "POST", base, {"incident": {"name": name, "status": STATUS["start"], "body": text,
                                           "impact_override": impact}}
    return "PATCH", "%s/%s" % (base, incident_id), {"incident": {"status": STATUS.get(event, "monitoring"), "body": text}}
