#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, engine_ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: engine_drain
short_description: Drain the Engine so in-flight turns finish, or start it serving again
version_added: 0.1.0
description:
  - O(state=drained) sends O(drain_signal) to a running Engine, waits up to O(drain_timeout) seconds for it to
    exit, then sends C(SIGKILL). It reports whether the drain was clean, how long it took, the exit code, how many
    turns were in flight when draining began and how many of them the kill cut.
  - In-flight turns are read from the Engine's JSON log lines; a request with log lines and no completion line
    (one with C(extra.duration_ms)) is in flight.
  - O(state=serving) starts a stopped Engine and, with O(wait_healthy), waits for C(/health); with O(wait_healthy)
    it also waits for an Engine that runs but is still starting (one left by an interrupted run).
  - An Engine already in the wanted state is left alone (C(changed=false)).
author:
  - engine_ops maintainers (@engine-ops)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - engine_ops.lifecycle._engine.attributes
  - engine_ops.lifecycle._engine.docker
  - engine_ops.lifecycle._engine.engine
options:
  state:
    description: Wanted state of the Engine.
    type: str
    choices: [drained, serving]
    default: drained
  drain_timeout:
    description: Seconds the Engine gets to finish its in-flight turns before it is killed.
    type: int
    default: 30
  drain_signal:
    description: Signal that starts the drain.
    type: str
    default: SIGTERM
  wait_healthy:
    description: With O(state=serving), wait until O(health_url) reports healthy.
    type: bool
    default: true
  health_url:
    description: The Engine's health URL; required when O(state=serving) and O(wait_healthy) are set.
    type: str
  health_timeout:
    description: Seconds to wait for health after starting.
    type: float
    default: 60
attributes:
  diff_mode:
    support: full
"""

EXAMPLES = r"""
- name: Drain the Engine with the runbook's 30 s window
  engine_ops.lifecycle.engine_drain:
    container: engine
    state: drained
    drain_timeout: 30
  register: drain

- name: Report cut turns
  ansible.builtin.debug:
    msg: "{{ drain.drain.cut_turns }} turn(s) were cut"
  when: drain.drain.killed | default(false)

- name: Start the compose-managed Engine again and wait for health
  engine_ops.lifecycle.engine_drain:
    compose_project: support-agent
    state: serving
    health_url: http://127.0.0.1:8000/health
"""

RETURN = r"""
container_id:
  description: ID of the Engine container.
  returned: always
  type: str
drain:
  description: What the drain did.
  returned: when a running Engine was drained (also in check mode, as a prediction without timings)
  type: dict
  contains:
    clean:
      description: The Engine exited by itself with code 0 within the window.
      type: bool
    killed:
      description: The window passed and the Engine was killed.
      type: bool
    duration_seconds:
      description: Seconds from the signal to the exit.
      type: float
    exit_code:
      description: Exit code of the Engine.
      type: int
    in_flight_at_start:
      description: Turns in flight when draining began.
      type: int
    cut_turns:
      description: In-flight turns that did not complete before the exit.
      type: int
    cut_request_ids:
      description: Request ids of the cut turns.
      type: list
      elements: str
health:
  description: The health probe after starting (see M(engine_ops.lifecycle.health_probe)).
  returned: when O(state=serving) and O(wait_healthy) are set (not in check mode)
  type: dict
"""

from ansible_collections.engine_ops.lifecycle.plugins.module_utils._module import EngineOpsModule, http_get, run
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._errors import EngineDockerError
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._docker.drain import drain, in_flight
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._judge.health import probe


def main():
    module = EngineOpsModule(
        argument_spec=dict(
            state=dict(type="str", choices=["drained", "serving"], default="drained"),
            drain_timeout=dict(type="int", default=30),
            drain_signal=dict(type="str", default="SIGTERM"),
            wait_healthy=dict(type="bool", default=True),
            health_url=dict(type="str"),
            health_timeout=dict(type="float", default=60),
        ),
        supports_check_mode=True,
    )
    p = module.params
    if p["drain_timeout"] < 0:
        module.fail_action("check options", "drain_timeout must not be negative")
    if p["state"] == "serving" and p["wait_healthy"] and not p["health_url"]:
        module.fail_action("check options", "health_url is required to wait for health (or set wait_healthy=false)")
    container = module.find_engine()
    running = container["State"]["Running"]
    before = {"state": "serving" if running else "stopped"}
    result = {"changed": False, "container_id": container["Id"]}
    try:
        if p["state"] == "drained":
            if not running:
                module.exit_json(**result)
            result["changed"] = True
            result["diff"] = {"before": before, "after": {"state": "stopped"}}
            if module.check_mode:
                pending = in_flight(module.docker.log_records(container["Id"]))
                result["drain"] = {"in_flight_at_start": len(pending), "in_flight_request_ids": pending}
                module.exit_json(**result)
            result["drain"] = drain(module.docker, container, p["drain_signal"], p["drain_timeout"])
            module.exit_json(**result)
        if not running:
            result["changed"] = True
            result["diff"] = {"before": before, "after": {"state": "serving"}}
            if module.check_mode:
                module.exit_json(**result)
            module.docker.start(container["Id"])
    except EngineDockerError as exc:
        module.fail_action("drain" if p["state"] == "drained" else "start", exc, changed=result["changed"])
    # Running is not yet serving: an Engine started by an interrupted run may still be starting up.
    if p["wait_healthy"] and not module.check_mode:
        result["health"] = probe(http_get, p["health_url"], deadline=p["health_timeout"])
        if not result["health"]["healthy"]:
            health = result["health"]
            module.fail_action("wait for health", "%s is %s (%s)" % (p["health_url"], health["classification"],
                                                                     health["reason"]),
                               changed=result["changed"], container_id=container["Id"], health=health)
    module.exit_json(**result)


if __name__ == "__main__":
    run(main)
