#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, engine_ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: engine_lock
short_description: Take or release the per-Engine lock, so two runs never operate one Engine at once
version_added: 0.1.0
description:
  - A lock file per Engine in O(state_dir) on the Engine's host, holding who took it (user, AWX job,
    controller host and process, operation, target) and until when (a lease).
  - A second run that finds the lock held by another live run is refused, and the message names the holder.
  - A holder whose lease expired is taken over. So is a holder that ran on the same controller host and whose
    controller process is gone (a killed C(ansible-playbook)); the action plugin checks that on the controller.
  - The same run may take the lock again, because roles nest (an upgrade that rolls back).
  - In check mode the lock is only inspected, so a dry run still tells you when someone else holds it.
author:
  - engine_ops maintainers (@engine-ops)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - engine_ops.lifecycle._engine.attributes
  - engine_ops.lifecycle._engine.state
attributes:
  diff_mode:
    support: none
options:
  state:
    description: V(present) takes (or renews) the lock, V(absent) releases it if this run holds it.
    type: str
    choices: [present, absent]
    default: present
  operation:
    description: What the holder is doing, shown to anyone refused.
    type: str
    default: rollback
  target:
    description: The version the holder is moving the Engine to, shown to anyone refused.
    type: str
  lease:
    description: Seconds the lock is held without being renewed; after that another run may take it over.
    type: int
    default: 3600
  force:
    description: Take the lock even from a live holder. Only when you know that run is gone.
    type: bool
    default: false
  owner:
    description:
      - Who takes the lock. Filled in by the action plugin on the controller (run id, user, AWX job, controller
        host, process id and its start time); keys given here override those.
    type: dict
    default: {}
  break_run_id:
    description: Internal, set by the action plugin. Take over from this run id, proven dead on the controller.
    type: str
"""

EXAMPLES = r"""
- name: Lock the Engine for this rollback
  engine_ops.lifecycle.engine_lock:
    container: engine
    operation: rollback
    target: v2.3.1

- name: Release it
  engine_ops.lifecycle.engine_lock:
    container: engine
    state: absent
"""

RETURN = r"""
lock:
  description: The holder after the call (this run for O(state=present)); empty when released.
  returned: always
  type: dict
  sample: {"run_id": "ctl-1:4242:1764300000", "user": "alice", "controller": "ctl-1", "pid": 4242,
           "operation": "rollback", "target": "v2.3.1", "since": 1764300001.2, "expires": 1764303601.2}
taken_over:
  description: The holder that was replaced (expired lease, dead controller process, or O(force)).
  returned: when a lock was taken over
  type: dict
holder:
  description: The holder that refused this run, or that still holds the lock after O(state=absent).
  returned: when another run holds the lock
  type: dict
path:
  description: The lock file.
  returned: always
  type: str
"""

from ansible_collections.engine_ops.lifecycle.plugins.module_utils._module import EngineOpsModule, STATE_OPTIONS, run
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._state.lock import (
    LockError, LockHeld, acquire, describe, lock_path, release)
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain.store import StoreError, check_name


def main():
    module = EngineOpsModule(
        argument_spec=dict(
            STATE_OPTIONS,
            state=dict(type="str", choices=["present", "absent"], default="present"),
            operation=dict(type="str", default="rollback"),
            target=dict(type="str"),
            lease=dict(type="int", default=3600),
            force=dict(type="bool", default=False),
            owner=dict(type="dict", default={}),
            break_run_id=dict(type="str"),
        ),
        engine=None,
        docker=False,
        supports_check_mode=True,
    )
    p = module.params
    try:
        check_name("container", p["container"])
    except StoreError as exc:
        module.fail_action("check options", exc)
    path = lock_path(p["state_dir"], p["container"])
    owner = dict(p["owner"])
    owner.setdefault("run_id", "unknown")
    owner.update(engine=p["container"], operation=p["operation"], target=p["target"])
    if p["lease"] < 1:
        module.fail_action("check options", "lease must be at least 1 second, got %d" % p["lease"])
    try:
        if p["state"] == "absent":
            changed, other = release(path, owner["run_id"], check_mode=module.check_mode)
            result = {"changed": changed, "lock": {}, "path": path}
            if other:
                result["holder"] = other
                module.warn("the lock on %s is held by another run (%s); left in place" % (p["container"], describe(other)))
            module.exit_json(**result)
        holder, taken_over, changed = acquire(path, owner, p["lease"], break_run_id=p["break_run_id"], force=p["force"],
                                              check_mode=module.check_mode)
    except LockHeld as exc:
        module.fail_action("lock %s" % p["container"], exc, holder=exc.holder, path=path)
    except (LockError, IOError, OSError) as exc:
        module.fail_action("lock %s" % p["container"], exc, path=path)
    result = {"changed": changed, "lock": holder, "path": path}
    if taken_over:
        result["taken_over"] = taken_over
        module.warn("took over the lock on %s from %s" % (p["container"], describe(taken_over)))
    module.exit_json(**result)


if __name__ == "__main__":
    run(main)
