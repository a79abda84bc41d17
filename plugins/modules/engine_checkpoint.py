#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, engine_ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: engine_checkpoint
short_description: Record and read the phases an operation on an Engine has finished
version_added: 0.1.0
description:
  - Keeps one record per Engine and operation (V(rollback), V(upgrade)) in O(state_dir) on the Engine's host,
    written atomically after every phase. It holds the target, the decision the run took (which snapshot, data
    rollback or not) and each finished phase with its time.
  - A run to the same O(target) that finds an unfinished record resumes it (RV(resumed)), so a controller that died
    mid-run can simply be run again - the roles re-use the recorded decision and skip the finished phases.
  - Without O(phase) the record is only read. Recording V(done) or V(failed) closes the run; the next run
    starts a new record.
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
  operation:
    description: Which operation's record.
    type: str
    choices: [rollback, upgrade]
    default: rollback
  target:
    description: The version the operation moves the Engine to; a record for another target is not resumed.
    type: str
    required: true
  phase:
    description:
      - The phase just finished. Omit to only read the record.
      - A list records several phases at once, in order (one round-trip where nothing happens between them).
    type: list
    elements: str
  data:
    description: Values to keep with the record (merged), such as the decision taken.
    type: dict
    default: {}
  initial_data:
    description:
      - Values a new record starts with, ignored when an unfinished record of the same target is continued (which
        keeps its own). With O(phase), so a value chosen before a step (the id a snapshot will have) is written
        before the step and a run killed during it finds the same value again.
    type: dict
    default: {}
  run_id:
    description: Identifies the run, so the record lists every run that worked on it.
    type: str
    default: unknown
"""

EXAMPLES = r"""
- name: Read where an earlier rollback of this Engine stopped
  engine_ops.lifecycle.engine_checkpoint:
    container: engine
    target: v2.3.1
  register: checkpoint

- name: Record that the Engine serves again and close the run, in one call
  engine_ops.lifecycle.engine_checkpoint:
    container: engine
    target: v2.3.1
    phase: [switched, done]

- name: Open an upgrade's record with the id its snapshot will have (a resumed run keeps the recorded one)
  engine_ops.lifecycle.engine_checkpoint:
    container: engine
    operation: upgrade
    target: engine:2.4.0
    phase: planned
    initial_data:
      snapshot_planned: 20261128T100000.000000Z

- name: Record the decision before anything is changed
  engine_ops.lifecycle.engine_checkpoint:
    container: engine
    target: v2.3.1
    phase: planned
    data:
      snapshot: 20261128T100000Z
      data_rollback: true
"""

RETURN = r"""
checkpoint:
  description: The record after the call (before it, without O(phase)); empty when there is none.
  returned: always
  type: dict
  sample: {"operation": "rollback", "target": "v2.3.1", "status": "in_progress", "started": 1764300001.2,
           "phases": [{"phase": "planned", "at": 1764300002.9}], "data": {"data_rollback": true},
           "run_ids": ["ctl-1:4242:99"]}
resumed:
  description: An unfinished record for the same target exists (and, with O(phase), was continued).
  returned: always
  type: bool
phases:
  description: Names of the finished phases, in order.
  returned: always
  type: list
  elements: str
timings:
  description: Seconds each phase took, from the previous boundary.
  returned: always
  type: dict
superseded:
  description: An unfinished record for another target, replaced by this run.
  returned: when a phase was recorded over an unfinished record for another target
  type: dict
"""

from ansible_collections.engine_ops.lifecycle.plugins.module_utils._state.checkpoint import (
    CheckpointError, checkpoint_path, load, now_epoch, open_run, phases_done, record_phase, resumable, save, timings)
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._module import EngineOpsModule, STATE_OPTIONS, run
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain.store import StoreError, check_name


def main():
    module = EngineOpsModule(
        argument_spec=dict(
            STATE_OPTIONS,
            operation=dict(type="str", choices=["rollback", "upgrade"], default="rollback"),
            target=dict(type="str", required=True),
            phase=dict(type="list", elements="str"),
            data=dict(type="dict", default={}),
            initial_data=dict(type="dict", default={}),
            run_id=dict(type="str", default="unknown"),
        ),
        engine=None,
        docker=False,
        supports_check_mode=True,
    )
    p = module.params
    try:
        check_name("container", p["container"])
        path = checkpoint_path(p["state_dir"], p["container"], p["operation"])
        record = load(path)
    except (StoreError, CheckpointError) as exc:
        module.fail_action("read the checkpoint", exc)
    if not p["phase"]:
        module.exit_json(changed=False, checkpoint=record or {}, resumed=resumable(record, p["target"]),
                         phases=phases_done(record), timings=timings(record))
    now = now_epoch()
    record, resumed, superseded = open_run(record, p["operation"], p["target"], p["run_id"], now, p["initial_data"])
    for phase in p["phase"]:
        record = record_phase(record, phase, p["data"], now)
    result = dict(changed=True, checkpoint=record, resumed=resumed, phases=phases_done(record), timings=timings(record))
    if superseded:
        result["superseded"] = superseded
        module.warn("an unfinished %s of %s to %s (last phase: %s) is superseded by this run to %s"
                    % (p["operation"], p["container"], superseded.get("target"),
                       (phases_done(superseded) or ["none"])[-1], p["target"]))
    if not module.check_mode:
        try:
            save(path, record)
        except (IOError, OSError) as exc:
            module.fail_action("write the checkpoint %s" % path, exc)
    module.exit_json(**result)


if __name__ == "__main__":
    run(main)
