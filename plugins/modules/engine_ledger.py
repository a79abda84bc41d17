#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, engine_ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: engine_ledger
short_description: Append an entry to the append-only ledger of operations on Engines
version_added: 0.1.0
description:
  - Appends one JSON object as one line to O(path), under an exclusive lock so parallel forks never
    interleave, and flushes it to disk. Existing lines are never rewritten.
  - The roles run it on the controller (delegated to C(localhost)) once per Engine and run; each entry says who,
    why, from and to, the snapshot, the plan, phase timings, the outcome and the rows exported.
  - Adds C(recorded_at) (UTC) when the entry has none. Keys listed in O(redact) are replaced, wherever they are nested.
  - In check mode nothing is written.
  - On the controller itself (delegated to C(localhost), no become) the entry is written by the action plugin in the
    controller's worker, without starting a module process; elsewhere the module runs on the host.
author:
  - engine_ops maintainers (@engine-ops)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - engine_ops.lifecycle._engine.attributes
attributes:
  diff_mode:
    support: none
options:
  path:
    description: The ledger file (created 0600, its directory 0700).
    type: path
    required: true
  entry:
    description: The entry to append.
    type: dict
    required: true
  redact:
    description: Keys whose values never go into the ledger.
    type: list
    elements: str
    default: [password, token, secret, webhook_url, api_key, encryption_key]
"""

EXAMPLES = r"""
- name: Record the rollback in the ledger
  engine_ops.lifecycle.engine_ledger:
    path: "{{ playbook_dir }}/ledger/engine_ops.jsonl"
    entry:
      operation: rollback
      engine: engine-1
      from: engine:2.4.0
      to: engine:2.3.1
      outcome: rolled_back
  delegate_to: localhost
"""

RETURN = r"""
entry:
  description: The entry as written.
  returned: always
  type: dict
bytes:
  description: Bytes appended (0 in check mode).
  returned: always
  type: int
"""

from ansible_collections.engine_ops.lifecycle.plugins.module_utils._module import EngineOpsModule, run
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._state.ledger import LEDGER_SPEC, LedgerError, record


def main():
    module = EngineOpsModule(argument_spec=dict(LEDGER_SPEC), engine=None, docker=False, supports_check_mode=True)
    try:
        result = record(module.params, module.check_mode)
    except LedgerError as exc:
        module.fail_json(msg="engine_ledger: %s; nothing was changed" % exc)
    module.exit_json(**result)


if __name__ == "__main__":
    run(main)
