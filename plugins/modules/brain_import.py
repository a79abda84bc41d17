#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, engine_ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: brain_import
short_description: Bring chosen tables of a restore's export back into the restored brain, through the Engine
version_added: 0.1.0
description:
  - After a data rollback and once the root cause is fixed, re-imports the rows the bad window wrote (a restore's
    export, C(<table>.jsonl)) of the tables named in O(tables) - nothing else, and nothing by default.
  - The plan reads the export and the live brain (read-only) and sorts every row of those tables - importable (its key
    is free), already present (same key and values, from an earlier import) or a conflict (same key, other values) - and
    counts the rows the bad window changed in place or deleted, which are never applied (re-applying a change or a
    deletion is the operator's decision; their before and after images are in the export). Check mode returns the
    plan and changes nothing.
  - The rows go through the Engine's C(POST /memory/import) with the C(X-Engine-Key) header, in one transaction, so
    the Engine stays the brain's only writer and keeps its vector and full-text indexes in step. A conflict fails the
    module before anything is sent (check mode lists them); the Engine refuses a conflict that arose meanwhile as a
    whole (nothing imported).
author:
  - engine_ops maintainers (@engine-ops)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - engine_ops.lifecycle._engine.attributes
  - engine_ops.lifecycle._engine.docker
  - engine_ops.lifecycle._engine.engine
  - engine_ops.lifecycle._engine.brain
attributes:
  check_mode:
    support: full
    details: Returns the plan (rows per table to import, already present, conflicts); nothing is sent.
  diff_mode:
    support: none
options:
  export_dir:
    description: The export directory of a restore (C(export_dir) of M(engine_ops.lifecycle.brain_restore)).
    type: path
    required: true
  tables:
    description: Tables to re-import; every one must be in the export and in the restored brain.
    type: list
    elements: str
    required: true
  ignore_columns:
    description:
      - Columns (C(table.column)) the exported rows have and the restored brain does not (a forward-only migration
        added them), to import without. Any other such column fails the plan.
    type: list
    elements: str
    default: []
  on_conflict:
    description:
      - What a conflict (a key the restored brain holds with other values - often a turn written after the rollback,
        which took the same key) does. V(fail) fails before anything is sent; V(skip) imports the other rows and
        returns the conflicting keys in the plan, not imported.
    type: str
    choices: [fail, skip]
    default: fail
  engine_url:
    description: Base URL of the Engine (C(/memory/import) is appended).
    type: str
    required: true
  engine_api_key:
    description: The Engine's API key, sent as C(X-Engine-Key).
    type: str
    required: true
  timeout:
    description: Seconds to wait for the Engine's answer.
    type: int
    default: 120
"""

EXAMPLES = r"""
- name: What would come back?
  engine_ops.lifecycle.brain_import:
    container: engine
    export_dir: /var/lib/engine_ops/snapshots/engine/20261128T100000.000000Z/exports/20261128T120000Z
    tables: [episodes, episodes_vec, conversations]
    engine_url: http://127.0.0.1:8000
    engine_api_key: "{{ engine_api_key }}"
  check_mode: true
  register: reimport_plan
"""

RETURN = r"""
plan:
  description:
    - Per table - C(rows) exported, C(importable), C(already_present), C(conflicts) (with up to 20 C(conflicting_keys)),
      C(changed_in_place) and C(deleted) (in the bad window; never applied), C(columns_not_in_brain).
  returned: always
  type: dict
imported:
  description: Rows imported per table, as the Engine counted them.
  returned: when rows were imported
  type: dict
"""

import json

from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain.base import BrainError
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._module import BrainModule, http_request, run
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain.reimport import ReimportError, import_rows, plan


def main():
    spec = dict(
        export_dir=dict(type="path", required=True),
        tables=dict(type="list", elements="str", required=True),
        ignore_columns=dict(type="list", elements="str", default=[]),
        on_conflict=dict(type="str", choices=["fail", "skip"], default="fail"),
        engine_url=dict(type="str", required=True),
        engine_api_key=dict(type="str", required=True, no_log=True),
        timeout=dict(type="int", default=120),
    )
    module = BrainModule(argument_spec=spec)
    p = module.params
    if not p["tables"]:
        module.fail_action("check options", "name the tables to re-import (nothing is imported by default)")
    try:
        report, send = plan(module.backend(), p["export_dir"], p["tables"], p["ignore_columns"])
    except (ReimportError, BrainError, OSError, ValueError) as exc:
        module.fail_action("plan the re-import of %s" % p["export_dir"], exc)
    conflicts = dict((t, e["conflicting_keys"]) for t, e in report.items() if e["conflicts"])
    if conflicts and p["on_conflict"] == "fail" and not module.check_mode:
        module.fail_action("re-import %s" % p["export_dir"], "rows whose key the restored brain holds with other values: "
                           "%s (on_conflict=skip imports the others)" % json.dumps(conflicts), plan=report)
    importable = sum(e["importable"] for e in report.values())
    if module.check_mode or not importable:
        module.exit_json(changed=bool(importable), plan=report)

    def post(body):
        try:
            status, raw = http_request(p["engine_url"].rstrip("/") + "/memory/import", p["timeout"], method="POST",
                                       body=body, headers={"X-Engine-Key": p["engine_api_key"]})
        except (IOError, OSError) as exc:  # URLError: nothing answered
            return 0, {"error": str(exc)}
        try:
            return status, json.loads(raw or b"{}")
        except ValueError:
            return status, {"raw": raw[:300].decode("utf-8", "replace")}

    try:
        imported = import_rows(post, send)
    except ReimportError as exc:
        module.fail_action("re-import %s" % p["export_dir"], exc, plan=report)
    module.exit_json(changed=True, plan=report, imported=imported)


if __name__ == "__main__":
    run(main)
