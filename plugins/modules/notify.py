#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, engine_ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: notify
short_description: Tell the incident channel and the status page what a rollback is doing
version_added: 0.1.0
description:
  - Renders the runbook's message for O(event) from O(facts) ("Rolling back engine-1 to v2.3.1 due to error rate 31.0%
    vs 0.4% baseline for 6 min, not improving.") and sends it to a Slack-compatible incoming webhook, a generic JSON
    webhook and a Statuspage-compatible API, whichever are set.
  - Status page - V(start) creates an incident, V(not_recovered) and V(escalation) update it, V(all_clear) resolves it.
  - A delivery that fails is retried O(retries) times with backoff, then reported in RV(deliveries) and as a warning.
    The module never fails because a receiver is down - a notification must not block or fail a rollback.
  - Webhook URLs, headers and the status page key are never shown in output.
  - In check mode the message is rendered, not sent.
author:
  - engine_ops maintainers (@engine-ops)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - engine_ops.lifecycle._engine.attributes
attributes:
  diff_mode:
    support: none
options:
  event:
    description: What happened.
    type: str
    required: true
    choices: [start, all_clear, not_recovered, escalation, info]
  facts:
    description:
      - What the message says - C(engine), C(version), C(from), C(symptom), C(data_rollback), C(snapshot),
        C(rows_exported), C(export_dir), C(error_rate), C(threshold), C(message) (the text for V(info) and V(escalation)).
    type: dict
    default: {}
  slack_webhook_url:
    description: Slack-compatible incoming webhook (receives C({"text"})).
    type: str
  webhook_url:
    description: Generic JSON webhook (receives C({"event", "text", "facts"})).
    type: str
  webhook_headers:
    description: Extra headers for O(webhook_url), for example an authorization token.
    type: dict
    default: {}
  statuspage:
    description: A Statuspage-compatible API; used only when set.
    type: dict
    suboptions:
      api_url:
        description: Base URL of the API.
        type: str
        default: https://api.statuspage.io
      page_id:
        description: The page.
        type: str
        required: true
      api_key:
        description: API key, sent as an OAuth authorization header.
        type: str
        required: true
      incident_id:
        description: The incident to update or resolve (RV(incident_id) of the V(start) call).
        type: str
      impact:
        description: Impact shown on the page.
        type: str
        choices: [none, minor, major, critical]
        default: major
  retries:
    description: Retries after a failed delivery (with exponential backoff).
    type: int
    default: 3
  retry_delay:
    description: First pause before a retry, in seconds.
    type: float
    default: 1
"""

EXAMPLES = r"""
- name: Tell the incident channel
  engine_ops.lifecycle.notify:
    event: start
    facts:
      engine: engine-1
      version: 2.3.1
      symptom: error rate 31.0% vs 0.4% baseline for 6 min, not improving
    slack_webhook_url: "{{ vault_slack_webhook }}"
  delegate_to: localhost
"""

RETURN = r"""
message:
  description: The text sent.
  returned: always
  type: str
deliveries:
  description: One entry per target - C(target), C(delivered), C(status), C(attempts), C(error).
  returned: always
  type: list
  elements: dict
incident_id:
  description: The status page incident (created by V(start), or the one given).
  returned: when O(statuspage) is set
  type: str
"""

from ansible_collections.engine_ops.lifecycle.plugins.module_utils._module import EngineOpsModule, http_request, run
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._aftermath.notify import EVENTS, deliver, render, statuspage_call


def main():
    module = EngineOpsModule(
        argument_spec=dict(
            event=dict(type="str", required=True, choices=list(EVENTS)),
            facts=dict(type="dict", default={}),
            slack_webhook_url=dict(type="str", no_log=True),
            webhook_url=dict(type="str", no_log=True),
            webhook_headers=dict(type="dict", default={}, no_log=True),
            statuspage=dict(type="dict", options=dict(
                api_url=dict(type="str", default="https://api.statuspage.io"),
                page_id=dict(type="str", required=True),
                api_key=dict(type="str", required=True, no_log=True),
                incident_id=dict(type="str"),
                impact=dict(type="str", choices=["none", "minor", "major", "critical"], default="major"))),
            retries=dict(type="int", default=3),
            retry_delay=dict(type="float", default=1),
        ),
        engine=None,
        docker=False,
        supports_check_mode=True,
    )
    p = module.params
    text = render(p["event"], p["facts"])
    calls = []
    if p["slack_webhook_url"]:
        calls.append(("slack", "POST", p["slack_webhook_url"], {"text": text}, {}))
    if p["webhook_url"]:
        calls.append(("webhook", "POST", p["webhook_url"], {"event": p["event"], "text": text, "facts": p["facts"]},
                      p["webhook_headers"]))
    page = p["statuspage"]
    if page:
        name = "%s: rollback to %s" % (p["facts"].get("engine", "Engine"), p["facts"].get("version", "?"))
        method, url, body = statuspage_call(p["event"], page["api_url"], page["page_id"], page["incident_id"], text,
                                            name, page["impact"])
        calls.append(("statuspage", method, url, body, {"Authorization": "OAuth %s" % page["api_key"]}))
    result = {"message": text, "deliveries": [], "changed": bool(calls)}
    if page:
        result["incident_id"] = page["incident_id"]
    if module.check_mode:
        module.exit_json(**result)
    for target, method, url, body, headers in calls:
        outcome = deliver(http_request, target, method, url, body, headers, retries=p["retries"], delay=p["retry_delay"])
        answer = outcome.pop("answer")
        if target == "statuspage" and outcome["delivered"] and isinstance(answer, dict) and answer.get("id"):
            result["incident_id"] = str(answer["id"])
        if not outcome["delivered"]:
            module.warn("the %s notification (%s) was not delivered after %d attempts: %s; the operation goes on"
                        % (target, p["event"], outcome["attempts"], outcome["error"]))
        result["deliveries"].append(outcome)
    result["changed"] = any(d["delivered"] for d in result["deliveries"])
    module.exit_json(**result)


if __name__ == "__main__":
    run(main)
