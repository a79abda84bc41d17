#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, engine_ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: engine_image
short_description: Put the Engine container on a target image, keeping the old one until the new one is healthy
version_added: 0.1.0
description:
  - Resolves the target first (O(version) with O(repository), a full O(image) reference or digest, or O(previous)),
    makes sure it is on the host (pulling it when O(pull=missing)), and refuses C(latest). Any failure up to
    here leaves the running Engine untouched.
  - Creates the new container beside the running one (created, not started), drains the old one, renames it
    aside, starts the new one on the same brain (never two Engines on one brain) and probes C(/health).
    If the new Engine is not healthy it is removed and the old container is restored under its name and
    started, and the module fails saying so.
  - Every setting of the old container is kept (env, mounts, ports, networks and aliases, labels, restart
    policy, healthcheck, user, command, entrypoint, working dir, log config, resource limits, stop signal and
    timeout). What the old I(image) set (its ENV, CMD, ENTRYPOINT, labels, healthcheck, user) is not a setting
    of the container; on the new image, the new image's own apply.
  - The replaced image (reference, ID and digests) is recorded in container labels and in a state file, so
    O(previous) and O(resolve=recorded) name the exact build even after its tag has moved or the image was pruned
    (it is pulled back by its repository digest).
  - Pulls send registry credentials (O(registry_username), or the Docker client config); a registry that refuses them
    fails the module before anything changes.
  - With O(compose_file), the service's C(image:) in that file is updated too (comments and layout kept), so a
    later C(docker compose up) does not undo the switch.
  - An Engine already on the target image ID is left alone (C(changed=false)).
author:
  - engine_ops maintainers (@engine-ops)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - engine_ops.lifecycle._engine.attributes
  - engine_ops.lifecycle._engine.docker
  - engine_ops.lifecycle._engine.engine
options:
  version:
    description: Target version, with or without a leading C(v) (C(v2.3.1) or C(2.3.1)); C(latest) is refused.
    type: str
  repository:
    description: Image repository for O(version); defaults to the repository of the running image.
    type: str
  image:
    description: Full target image reference with a tag or a digest.
    type: str
  previous:
    description: Target the image this Engine ran before its last switch (exact image ID).
    type: bool
    default: false
  pull:
    description: C(missing) pulls a target that is not on the host; C(never) fails instead.
    type: str
    choices: [missing, never]
    default: missing
  resolve:
    description:
      - C(tag) runs what the target's tag names on the host (pulled when missing).
      - C(recorded) goes back to the exact build this Engine ran as that reference before, when a switch recorded it
        (labels and the state file in O(state_dir)) - by image ID when it is still on the host, else pulled by the
        recorded repository digest - even when the tag names another build now. Without a record it is C(tag).
        A recorded build that is on neither the host nor its registry is refused before anything changes.
      - The rollback role uses C(recorded); O(previous=true) always does.
    type: str
    choices: [tag, recorded]
    default: tag
  registry_username:
    description:
      - User name for the registry of the image pulled. Without it, credentials come from the Docker client config
        as the docker CLI finds them (O(registry_config)) - C(credHelpers), C(credsStore), C(auths).
    type: str
  registry_password:
    description: Password or token for O(registry_username).
    type: str
  registry_config:
    description:
      - Directory of the Docker client config (C(config.json)) to read registry credentials from.
      - Defaults to C($DOCKER_CONFIG), else C(~/.docker) of the user the module runs as.
    type: path
  drain_timeout:
    description: Seconds the old Engine gets to finish in-flight turns.
    type: int
    default: 30
  drain_signal:
    description: Signal that starts the drain.
    type: str
    default: SIGTERM
  health_url:
    description:
      - Health URL of the Engine. Defaults to the host port published for container port 8000.
      - Required for Engines on host networking.
    type: str
  health_timeout:
    description: Seconds the new Engine gets to become healthy before the switch is reverted.
    type: float
    default: 60
  health_consecutive:
    description: Healthy answers in a row required from the new Engine.
    type: int
    default: 1
  verify_health_url:
    description:
      - Before anything is changed, ask the health URL once and refuse when it cannot be this Engine's - nothing
        answers although the container has run for 30 s, it answers with another version than the container runs,
        or with an uptime that does not match the container's start.
      - A stopped Engine, a timeout or an answer without version or uptime is not held against the URL.
    type: bool
    default: true
  keep_previous:
    description: Keep the old container (stopped, renamed with C(-engine_ops-previous)) after a successful switch.
    type: bool
    default: false
  state_dir:
    description: Directory of the state files that record replaced images.
    type: path
    default: /var/lib/engine_ops/state
  compose_file:
    description:
      - Compose file whose service C(image:) is updated to the target (after a successful switch), so that the next
        C(docker compose up -d) keeps the Engine where this module put it instead of recreating the old release.
      - Defaults, with O(compose_from_labels), to the files in the container's C(com.docker.compose.project.config_files)
        label (relative ones under C(com.docker.compose.project.working_dir)); of several, the last that gives the
        service its own C(image:). The service is the container's C(com.docker.compose.service) label, else
        O(compose_service).
      - Only the image value changes; comments, quoting, order and layout are kept (read with ruamel.yaml, which must be
        installed where the module runs). An image written as C(${VAR}) or C(repo:${TAG}) is changed in the env file
        (O(compose_env_file)) instead. An image inherited through a merge key or an alias, a variable the env file does
        not set, or a target the variable can't express is refused before anything changes, naming what to change.
    type: path
  compose_env_file:
    description: The env file compose reads variables from; default C(.env) in the compose project's directory.
    type: path
  compose_from_labels:
    description: Find the compose file from the container's compose labels when O(compose_file) is not given.
    type: bool
    default: true
attributes:
  diff_mode:
    support: full
notes:
  - Value-for-value equal settings between the container and its old image are treated as coming from the image.
"""

EXAMPLES = r"""
- name: Roll the Engine back to 2.3.1
  engine_ops.lifecycle.engine_image:
    container: engine
    version: v2.3.1
    health_url: http://127.0.0.1:8000/health

- name: Go back to exactly the build that ran before the last switch
  engine_ops.lifecycle.engine_image:
    compose_project: support-agent
    previous: true
    compose_file: /srv/support-agent/compose.yml

- name: Pin a digest
  engine_ops.lifecycle.engine_image:
    container: engine
    image: registry.example.com/september-engine@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
"""

RETURN = r"""
previous_image:
  description: The image the Engine ran before (reference, id, digests).
  returned: always
  type: dict
image:
  description:
    - The target image (reference, id, digests). With O(resolve=recorded) or O(previous), C(pinned) says which
      recorded build it is (C(id)), and how it was found (C(how)) - on the host, or pulled by C(digest).
  returned: always
  type: dict
container_id:
  description: ID of the Engine container after the run.
  returned: always
  type: str
plan:
  description: The steps the switch takes (or would take in check mode).
  returned: when changed
  type: list
  elements: str
actions:
  description: The steps taken, each with the seconds it took.
  returned: when changed and not in check mode
  type: list
  elements: dict
drain:
  description: What draining the old Engine did (see M(engine_ops.lifecycle.engine_drain)).
  returned: when a running Engine was drained
  type: dict
health:
  description: The health probe of the new Engine.
  returned: when changed and not in check mode
  type: dict
reverted:
  description: The new Engine was not healthy and the old container was restored.
  returned: always
  type: bool
recorded_interrupted_switch:
  description: The Engine already ran the target because of a switch whose run was interrupted before it wrote its
    record (the container carries the switch's labels); the record was written now (not in check mode).
  returned: when the Engine already runs the target
  type: bool
compose_file_updated:
  description: The compose file's image was changed (or, for an image in a variable, the env file's line).
  returned: when a compose file is used
  type: bool
compose:
  description: Where the image is changed for compose. The compose file, the env file when a variable holds the image
    (else null), the variable (else null), and the image written there before.
  returned: when a compose file is used
  type: dict
"""


import os

from ansible.module_utils.basic import missing_required_lib

from ansible_collections.engine_ops.lifecycle.plugins.module_utils._module import EngineOpsModule, http_get, run
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._docker.compose import (
    HAS_RUAMEL, RUAMEL_IMPORT_ERROR, ComposeError, env_file_for, plan_image_change, service_image)
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._errors import EngineDockerError
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._judge.health import probe
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._docker.image_switch import (
    SwitchError, diff, health_url_for, health_url_problem, image_record, plan, read_state, record_switch, resolve_target,
    run_reference, state_path, switch, unrecorded_switch, write_state)
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._docker.registry_auth import (
    RegistryAuthError, credentials, header, registry_of)


CONFIG_FILES = "com.docker.compose.project.config_files"
WORKING_DIR = "com.docker.compose.project.working_dir"
SERVICE = "com.docker.compose.service"


def compose_source(module, container):
    """(compose files, service, env file) to keep in step, or None: from the options, else the compose labels."""
    p = module.params
    labels = (container.get("Config") or {}).get("Labels") or {}
    workdir = labels.get(WORKING_DIR)
    if p["compose_file"]:
        files = [p["compose_file"]]
    elif p["compose_from_labels"] and labels.get(CONFIG_FILES):
        files = [f if os.path.isabs(f) or not workdir else os.path.join(workdir, f)
                 for f in labels[CONFIG_FILES].split(",") if f]
        missing = [f for f in files if not os.path.isfile(f)]
        if missing:
            module.warn("the Engine was started by compose from %s, which is not on this host: the next `compose up` "
                        "may recreate the old image; give compose_file" % ", ".join(missing))
            return None
    else:
        return None
    env_file = p["compose_env_file"] or (os.path.join(workdir, ".env") if workdir and not p["compose_file"]
                                         else env_file_for(files[0]))
    return files, labels.get(SERVICE) or p["compose_service"], env_file


def registry_auth(params):
    """repository -> (X-Registry-Auth value or None, where the credentials came from), for the pulls."""
    environ = dict(os.environ)
    if params["registry_config"]:
        environ["DOCKER_CONFIG"] = params["registry_config"]

    def auth(repository):
        registry = registry_of(repository)
        try:
            found, source = credentials(registry, params["registry_username"], params["registry_password"],
                                        environ=environ)
        except RegistryAuthError as exc:
            raise SwitchError("registry credentials for %s: %s; nothing was changed" % (registry, exc))
        return (header(found) if found else None), source
    return auth


def _read(path, required=True):
    if not required and not os.path.exists(path):
        return None
    with open(path) as handle:
        return handle.read()


def compose_update(module, source, target_ref):
    """What to write so compose starts `target_ref`: {"files": {path: text}, "changed", "report"}; fails naming the
    problem (nothing is written here)."""
    files, service, env_file = source
    if not HAS_RUAMEL:
        module.fail_json(msg=missing_required_lib("ruamel.yaml", reason="to keep the compose file in step"),
                         exception=RUAMEL_IMPORT_ERROR)
    try:
        texts = dict((path, _read(path)) for path in files)
        owner = None
        for path in reversed(files):  # later files override earlier ones
            try:
                service_image(texts[path], service)
            except ComposeError:
                continue
            owner = path
            break
        if owner is None:  # say why, from the main file
            service_image(texts[files[0]], service)
        env_text = _read(env_file, required=False)
        planned = plan_image_change(texts[owner], service, target_ref, env_text, env_file)
    except (IOError, OSError, ComposeError) as exc:
        module.fail_action("keep the compose file in step", "%s: %s" % (", ".join(files), exc))
    writes = {}
    if planned["compose_text"] != texts[owner]:
        writes[owner] = planned["compose_text"]
    if planned["env_text"] is not None and planned["env_text"] != env_text:
        writes[env_file] = planned["env_text"]
    report = {"file": owner, "service": service, "env_file": env_file if planned["variable"] else None,
              "variable": planned["variable"], "before": planned["old"]}
    return {"files": writes, "changed": bool(writes), "report": report}


def write_compose(module, writes):
    for path, text in sorted(writes.items()):
        tmp = "%s.engine_ops-tmp" % path
        with open(tmp, "w") as handle:
            handle.write(text)
        module.atomic_move(tmp, path)


def main():
    module = EngineOpsModule(
        argument_spec=dict(
            version=dict(type="str"),
            repository=dict(type="str"),
            image=dict(type="str"),
            previous=dict(type="bool", default=False),
            pull=dict(type="str", choices=["missing", "never"], default="missing"),
            resolve=dict(type="str", choices=["tag", "recorded"], default="tag"),
            registry_username=dict(type="str"),
            registry_password=dict(type="str", no_log=True),
            registry_config=dict(type="path"),
            drain_timeout=dict(type="int", default=30),
            drain_signal=dict(type="str", default="SIGTERM"),
            health_url=dict(type="str"),
            health_timeout=dict(type="float", default=60),
            health_consecutive=dict(type="int", default=1),
            verify_health_url=dict(type="bool", default=True),
            keep_previous=dict(type="bool", default=False),
            state_dir=dict(type="path", default="/var/lib/engine_ops/state"),
            compose_file=dict(type="path"),
            compose_env_file=dict(type="path"),
            compose_from_labels=dict(type="bool", default=True),
        ),
        mutually_exclusive=[("version", "image")],
        required_together=[("registry_username", "registry_password")],
        supports_check_mode=True,
    )
    p = module.params
    if sum(1 for given in (p["version"] is not None, p["image"] is not None, p["previous"]) if given) != 1:
        module.fail_action("check options", "give exactly one of version, image or previous=true")
    container = module.find_engine()
    name = container["Name"].lstrip("/")
    path = state_path(p["state_dir"], name)
    try:
        state = read_state(path)
        current_image = module.docker.inspect_image(container["Image"]) or {"Id": container["Image"], "Config": {}}
        current = image_record(current_image, container["Config"]["Image"])
        target = resolve_target(module.docker, container, current_image, version=p["version"],
                                repository=p["repository"], image=p["image"], previous=p["previous"], state=state,
                                pull=p["pull"], auth=registry_auth(p), resolve=p["resolve"])
    except (SwitchError, EngineDockerError) as exc:
        module.fail_action("resolve the target image", exc)

    result = {"changed": False, "previous_image": current, "image": target, "container_id": container["Id"],
              "reverted": False}
    compose = {"files": {}, "changed": False}
    source = compose_source(module, container)
    if source:
        # a build that its tag no longer names (pinned by digest) is written as its digest, so compose runs it too
        compose = compose_update(module, source, run_reference(module.docker, target))
        result.update(compose_file_updated=compose["changed"], compose=compose["report"])
    compose_changed = compose["changed"]
    if target["id"] == container["Image"]:
        # A switch killed after it started the new container never wrote its record: written now, from the labels
        # the switch put on the container, so the history (and `previous`, `resolve: recorded`) knows it.
        found = unrecorded_switch(state, container, target)
        if found and not module.check_mode:
            try:
                write_state(path, record_switch(state, found[0], target, container["Id"], clock=lambda: found[1]))
                module.warn("%s runs %s from a switch whose record was never written (the run doing it was "
                            "interrupted); the record was written now" % (name, target["reference"]))
            except (IOError, OSError) as exc:
                module.warn("the record of an interrupted switch could not be written to %s: %s" % (path, exc))
        result["recorded_interrupted_switch"] = bool(found)
        if compose_changed and not module.check_mode:
            write_compose(module, compose["files"])
        result["changed"] = compose_changed
        module.exit_json(**result)

    try:
        health_url = health_url_for(container, p["health_url"])
        problem = health_url_problem(container, health_url, http_get) if p["verify_health_url"] else None
        if problem:
            raise SwitchError(problem)
    except SwitchError as exc:
        module.fail_action("check the health URL", exc)
    result.update(changed=True, plan=plan(container, current, target, p["keep_previous"]))
    if module._diff:
        result["diff"] = diff(container, current_image, target)
    if module.check_mode:
        module.exit_json(**result)

    def probe_new():
        return probe(http_get, health_url, timeout=1.0, deadline=p["health_timeout"], consecutive=p["health_consecutive"],
                     backoff=0.05, backoff_max=0.1)

    try:
        outcome = switch(module.docker, container, current, current_image, target, probe_new,
                         drain_timeout=p["drain_timeout"], drain_signal=p["drain_signal"],
                         keep_previous=p["keep_previous"])
    except SwitchError as exc:
        details = dict((k, v) for k, v in result.items() if k != "changed")
        details.update(exc.result)
        module.fail_action("switch to %s" % target["reference"], exc, changed=exc.changed, **details)
    except EngineDockerError as exc:
        module.fail_action("switch to %s" % target["reference"], exc, changed=True)
    result.update(outcome)
    try:
        write_state(path, record_switch(state, current, target, outcome["container_id"]))
    except (IOError, OSError) as exc:
        module.warn("the switch succeeded but the state file %s could not be written: %s" % (path, exc))
    if compose_changed:
        write_compose(module, compose["files"])
    module.exit_json(**result)


if __name__ == "__main__":
    run(main)
