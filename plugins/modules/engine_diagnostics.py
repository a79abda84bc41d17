#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, engine_ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: engine_diagnostics
short_description: Capture the diagnostics of a bad window into one archive with a manifest
version_added: 0.1.0
description:
  - Writes a gzip tar archive (0600) on the Engine's host with the JSON log lines of the bad release's container
    (O(bad_container), by default the C(<name>-engine_ops-previous) container a rollback keeps) and of the current
    one, both containers' C(docker inspect) with secret environment values masked, the decision evidence (health
    history, windows), an error and latency summary, the run summary, the bad-window export, and C(manifest.json)
    with the size and sha256 of every file.
  - Fetch it to the controller with M(ansible.builtin.fetch); the rollback role does.
  - In check mode nothing is written.
author:
  - engine_ops maintainers (@engine-ops)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - engine_ops.lifecycle._engine.attributes
  - engine_ops.lifecycle._engine.docker
  - engine_ops.lifecycle._engine.engine
attributes:
  diff_mode:
    support: none
options:
  bad_container:
    description: The container of the bad release; defaults to C(<container>-engine_ops-previous) when it exists.
    type: str
  evidence:
    description: The RV(engine_ops.lifecycle.rollback_decision#module:evidence) of the bad release.
    type: dict
    default: {}
  summary:
    description: The run's summary (versions, decision, phase timings), stored as C(summary.json).
    type: dict
    default: {}
  export_dir:
    description: The bad-window export directory of the restore, copied under C(exports/).
    type: path
  dest:
    description: The archive to write.
    type: path
    required: true
  release_compose_container:
    description:
      - Once the archive holds its logs and inspect, remove the bad release's container when it carries compose labels
        (C(com.docker.compose.project)). Compose counts every container with the service's labels as a replica, so the
        next C(docker compose up) would take the kept container for a second Engine and remove one of the two.
      - A bad release's container without compose labels is always kept.
    type: bool
    default: true
"""

EXAMPLES = r"""
- name: Capture the diagnostics of the bad window
  engine_ops.lifecycle.engine_diagnostics:
    container: engine
    evidence: "{{ verdict.evidence }}"
    export_dir: "{{ restore.export_dir }}"
    dest: /var/lib/engine_ops/diagnostics/engine-20261128T101500Z.tar.gz
"""

RETURN = r"""
released_container:
  description: The bad release's compose container removed after the archive was written (O(release_compose_container)),
    else null.
  returned: success
  type: str
path:
  description: The archive.
  returned: always
  type: str
manifest:
  description: The archive's manifest (files with size and sha256).
  returned: always
  type: dict
"""

import json

from ansible_collections.engine_ops.lifecycle.plugins.module_utils._module import EngineOpsModule, run
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._aftermath.diagnostics import build, error_summary, redacted_inspect
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._errors import EngineDockerError
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._docker.image_switch import ASIDE_SUFFIX


def _json(value):
    return json.dumps(value, indent=2, sort_keys=True, default=str).encode("utf-8")


def main():
    module = EngineOpsModule(
        argument_spec=dict(
            bad_container=dict(type="str"),
            evidence=dict(type="dict", default={}),
            summary=dict(type="dict", default={}),
            export_dir=dict(type="path"),
            dest=dict(type="path", required=True),
            release_compose_container=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    p = module.params
    current = module.find_engine()
    name = current["Name"].lstrip("/")
    members, containers = {}, [current]
    try:
        bad = module.docker.inspect_container(p["bad_container"] or name + ASIDE_SUFFIX)
        if p["bad_container"] and bad is None:
            module.fail_action("find the bad release's container", "container %r does not exist" % p["bad_container"])
        if bad:
            containers.insert(0, bad)
        for container in containers:
            cname = container["Name"].lstrip("/")
            lines = module.docker.log_records(container["Id"])
            members["logs/%s.jsonl" % cname] = "".join(json.dumps(r, sort_keys=True) + "\n" for r in lines).encode("utf-8")
            members["inspect/%s.json" % cname] = _json(redacted_inspect(container))
    except EngineDockerError as exc:
        module.fail_action("read the containers", exc)
    members["evidence.json"] = _json(p["evidence"])
    members["errors.json"] = _json(error_summary(p["evidence"]))
    members["summary.json"] = _json(p["summary"])
    extra = {"engine": name, "bad_container": containers[0]["Name"].lstrip("/") if len(containers) > 1 else None,
             "from": p["summary"].get("from"), "to": p["summary"].get("to")}
    if module.check_mode:
        module.exit_json(changed=True, path=p["dest"], manifest=dict(extra, files=sorted(members)))
    try:
        manifest = build(p["dest"], members, extra, p["export_dir"])
    except (IOError, OSError) as exc:
        module.fail_action("write the archive %s" % p["dest"], exc)
    released = None
    labels = ((containers[0].get("Config") or {}).get("Labels") or {}) if len(containers) > 1 else {}
    if p["release_compose_container"] and labels.get("com.docker.compose.project"):
        released = extra["bad_container"]
        try:
            module.docker.remove(containers[0]["Id"], force=True)
        except EngineDockerError as exc:
            module.fail_action("remove the bad release's compose container %s (the archive %s was written)"
                               % (released, p["dest"]), exc, changed=True)
    module.exit_json(changed=True, path=p["dest"], manifest=manifest, released_container=released)


if __name__ == "__main__":
    run(main)
