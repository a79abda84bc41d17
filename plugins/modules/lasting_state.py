#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, engine_ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: lasting_state
short_description: Check that the controller's lasting state (ledger, reports, drill history) can be written and will last
version_added: 0.1.0
description:
  - A read-only preflight the roles run on the controller (delegated to C(localhost)) before anything changes.
  - Fails, naming the path, when the ledger, the report directory or the drill history can't be written (a file where
    a directory should be, a directory that is not writable); nothing is created.
  - Warns loudly when one of them would not outlive the run - under C(/tmp) or C(/var/tmp); and in an AWX job
    (O(awx_job_id) given) also under the job's home directory, under C(/runner), or on the execution environment
    container's own (overlay) filesystem. The guard against redeploying a rolled-back version reads the ledger, and
    the drill compares itself with the drill history, in the next job. With O(require_lasting=true) this fails
    instead.
author:
  - engine_ops maintainers (@engine-ops)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - engine_ops.lifecycle._engine.attributes
attributes:
  diff_mode:
    support: none
options:
  ledger_path:
    description: The ledger file.
    type: path
  report_dir:
    description: The directory of the fleet summaries and reports.
    type: path
  history_path:
    description: The drill history file.
    type: path
  awx_job_id:
    description: The AWX (or Tower) job ID when the run is an AWX job (the roles pass C(awx_job_id) or C(tower_job_id)).
    type: str
  require_lasting:
    description: Fail, instead of warning, when a path would not outlive the run.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Check that the ledger and reports will outlive this job
  engine_ops.lifecycle.lasting_state:
    ledger_path: /var/lib/engine_ops/ledger.jsonl
    report_dir: /var/lib/engine_ops/reports
    awx_job_id: "{{ awx_job_id | default(tower_job_id) | default(omit) }}"
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
lasting:
  description: Every path given will outlive the run.
  returned: always
  type: bool
problems:
  description: Why each path that would not outlive the run would be lost.
  returned: always
  type: list
  elements: str
paths:
  description: Per path (C(ledger), C(reports), C(drill_history)) its C(path), C(kind), C(lasting), C(reason) and C(writable).
  returned: always
  type: dict
"""

from ansible_collections.engine_ops.lifecycle.plugins.module_utils._module import EngineOpsModule, run
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._state.lasting import check

ADVICE = ("set engine_controller_state_dir to a path that outlives the job (in AWX a volume mounted into the execution "
          "environment, docs/awx.md#lasting-state)")


def main():
    module = EngineOpsModule(
        argument_spec=dict(
            ledger_path=dict(type="path"),
            report_dir=dict(type="path"),
            history_path=dict(type="path"),
            awx_job_id=dict(type="str"),
            require_lasting=dict(type="bool", default=False),
        ),
        engine=None, docker=False, supports_check_mode=True,
    )
    p = module.params
    found = check({"ledger": (p["ledger_path"], "file"), "reports": (p["report_dir"], "directory"),
                   "drill_history": (p["history_path"], "file")}, in_job=bool(p["awx_job_id"]))
    result = dict(changed=False, lasting=found["lasting"], problems=found["problems"], paths=found["paths"])
    if found["unwritable"]:
        module.fail_json(msg="lasting_state: %s; nothing was changed" % "; ".join(found["unwritable"]), **result)
    if found["problems"] and p["require_lasting"]:
        module.fail_json(msg="lasting_state: %s; %s; nothing was changed" % ("; ".join(found["problems"]), ADVICE),
                         **result)
    for problem in found["problems"]:
        module.warn("LASTING STATE WILL BE LOST: %s. The next run will not see what this one records (the guard "
                    "against redeploying a rolled-back version, the drill-to-drill comparison); %s." % (problem, ADVICE))
    module.exit_json(**result)


if __name__ == "__main__":
    run(main)
