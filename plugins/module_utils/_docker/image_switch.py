# -*- coding: utf-8 -*-
# Copyright: (c) 2026, engine_ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Put the Engine on another image without ever leaving it broken.

Order: resolve and check the target (nothing touched yet) -> create the new container beside the
old one (created, not started) -> drain the old one -> rename it aside -> start the new one on the
same brain -> probe /health. On failure the new container goes and the old one comes back under its
name. The replaced image is recorded (exact ID and digests) in a label and a state file, so that
`previous` names a build, not a tag that may have moved.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import re
import time
from datetime import datetime

from ansible_collections.engine_ops.lifecycle.plugins.module_utils._docker.container_spec import recreate_spec, settings_view
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._errors import EngineDockerError, EngineOpsError
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._state.files import write_atomic
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._docker.drain import drain, started_at
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._judge.health import probe_once
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._docker.version import TargetError, split_reference, target_reference

LABEL = "engine_ops.lifecycle."
NEXT_SUFFIX = "-engine_ops-next"
ASIDE_SUFFIX = "-engine_ops-previous"


class SwitchError(EngineOpsError):
    """The switch failed; `changed` says whether anything was changed, `result` what is known."""


def image_record(image, reference):
    return {"reference": reference, "id": image["Id"], "digests": list(image.get("RepoDigests") or [])}


# -- the state file ---------------------------------------------------------------------------------
def state_path(state_dir, container_name):
    return os.path.join(state_dir, "%s.json" % container_name.lstrip("/"))


def read_state(path):
    try:
        with open(path) as handle:
            return json.load(handle)
    except (IOError, OSError):
        return {"history": []}
    except ValueError:
        raise SwitchError("state file %s is not valid JSON; fix or remove it (nothing was changed)" % path)


def write_state(path, state):
    write_atomic(path, json.dumps(state, indent=2, sort_keys=True))


# -- resolving --------------------------------------------------------------------------------------
def previous_record(container, state):
    labels = (container.get("Config") or {}).get("Labels") or {}
    if labels.get(LABEL + "previous_image_id"):
        return {"reference": labels.get(LABEL + "previous_image"), "id": labels[LABEL + "previous_image_id"],
                "digests": json.loads(labels.get(LABEL + "previous_image_digests") or "[]")}
    history = state.get("history") or []
    return history[-1]["image"] if history else None


def recorded_build(reference, container, state):
    """The exact build this Engine last ran as `reference` and replaced ({reference, id, digests}), or None:
    from the container's labels (the switch that replaced it) and the state file's history, newest first."""
    labels = (container.get("Config") or {}).get("Labels") or {}
    candidates = []
    if labels.get(LABEL + "previous_image_id"):
        candidates.append(previous_record(container, {}))
    candidates.extend(entry.get("image") for entry in reversed((state or {}).get("history") or []))
    for record in candidates:
        if record and record.get("id") and record.get("reference") == reference:
            return record
    return None


def repository_digests(record, repository):
    """The record's repository digests ('repo@sha256:..'), those of `repository` first."""
    digests = [d for d in record.get("digests") or [] if "@" in d]
    return sorted(digests, key=lambda d: d.split("@", 1)[0] != repository)


def _pull(docker, reference, auth):
    """Pull `reference` with the registry's credentials; SwitchError naming the registry's answer."""
    repository = split_reference(reference)["repository"]
    header, source = auth(repository) if auth else (None, "no credentials")
    try:
        return docker.pull(reference, auth_header=header)
    except EngineDockerError as exc:
        text = str(exc)
        lowered = text.lower()
        if any(word in lowered for word in ("unauthorized", "no basic auth credentials", "authentication required",
                                            "denied", "incorrect username or password")):
            raise SwitchError("the registry refused to let this host pull %s with %s: %s. Give registry_username and "
                              "registry_password (engine_registry_username/engine_registry_password), or run "
                              "`docker login` for its registry as the user the module runs as; nothing was changed"
                              % (reference, source, text))
        if "manifest unknown" in lowered or "not found" in lowered:
            raise SwitchError("the registry has no image %s (%s); nothing was changed" % (reference, text))
        raise SwitchError("image %s is not present on this host and could not be pulled (%s); nothing was changed"
                          % (reference, text))


def resolve_recorded(docker, record, reference, auth=None, pull="missing"):
    """The exact build `record` (what ran as `reference` before): present by image ID, else pulled by its
    repository digest. SwitchError, touching nothing, when neither can be had."""
    found = docker.inspect_image(record["id"])
    if found:
        return dict(image_record(found, reference), pinned={"id": record["id"], "how": "present on this host"})
    repository = split_reference(reference)["repository"]
    digests = repository_digests(record, repository)
    where = "rebuild it from the release's git tag and push it (docs/rollback.md), then name it with image=..."
    if not digests:
        raise SwitchError("%s last ran here as build %s, which is no longer on this host and was never pulled from or "
                          "pushed to a registry (no repository digest was recorded); %s, or give resolve=tag to run "
                          "whatever %s names now; nothing was changed" % (reference, record["id"][:19], where,
                                                                          reference))
    if pull != "missing":
        raise SwitchError("%s (build %s, %s) is not present on this host and pulling is disabled; nothing was changed"
                          % (reference, record["id"][:19], digests[0]))
    problems = []
    for digest_ref in digests:
        try:
            found = _pull(docker, digest_ref, auth)
        except SwitchError as exc:
            problems.append(str(exc))
            continue
        if found:
            return dict(image_record(found, reference), pinned={"id": record["id"], "digest": digest_ref,
                                                                "how": "pulled by its recorded digest"})
    raise SwitchError("%s (build %s, recorded digest %s) is on neither this host nor its registry: %s. %s; "
                      "nothing was changed" % (reference, record["id"][:19], digests[0], "; ".join(problems), where))


def resolve_target(docker, container, current_image, version=None, repository=None, image=None, previous=False,
                   state=None, pull="missing", auth=None, resolve="tag"):
    """Return the target image record {reference, id, digests[, pinned]}; raise SwitchError, touching nothing.

    `resolve=recorded`: when this Engine ran the target before and a switch recorded that exact build, go back to
    it (by image ID, or pulled by repository digest) even if the tag names another build now."""
    if previous:
        record = previous_record(container, state or {})
        if not record:
            raise SwitchError("no previous image is recorded for this Engine (no label, no state file entry); "
                              "name the version instead")
        return resolve_recorded(docker, record, record.get("reference") or record["id"], auth=auth, pull=pull)
    if version is not None and not repository:
        repository = split_reference((container.get("Config") or {}).get("Image") or "")["repository"]
    try:
        reference = target_reference(version=version, repository=repository, image=image)
    except TargetError as exc:
        raise SwitchError(str(exc))
    record = recorded_build(reference, container, state) if resolve == "recorded" else None
    if record:
        return resolve_recorded(docker, record, reference, auth=auth, pull=pull)
    found = docker.inspect_image(reference)
    if not found and pull == "missing":
        found = _pull(docker, reference, auth)
    if not found:
        raise SwitchError("image %s is not present on this host%s; nothing was changed" % (
            reference, " and pulling is disabled" if pull == "never" else ""))
    return image_record(found, reference)


def run_reference(docker, target):
    """What the new container is created from: the tag when it still names the build, else the build's repository
    digest (the tag moved, or the build was pulled by digest), else its image ID."""
    resolved = docker.inspect_image(target["reference"])
    if resolved and resolved["Id"] == target["id"]:
        return target["reference"]
    try:
        repository = split_reference(target["reference"])["repository"]
    except TargetError:
        return target["id"]
    digests = repository_digests(target, repository)
    if digests and digests[0].split("@", 1)[0] == repository:
        return digests[0]
    return target["id"]


def health_url_for(container, explicit=None):
    """The URL to probe: given, or the host port published for the Engine's port 8000."""
    if explicit:
        return explicit
    bindings = ((container.get("HostConfig") or {}).get("PortBindings") or {}).get("8000/tcp") or []
    for binding in bindings:
        if binding.get("HostPort"):
            host = binding.get("HostIp") or "127.0.0.1"
            host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
            return "http://%s:%s/health" % (host, binding["HostPort"])
    raise SwitchError("cannot tell where this Engine answers /health (no published port 8000); set health_url")


SEMVER = re.compile(r"^v?(\d+\.\d+\.\d+)")
UPTIME_TOLERANCE = 30.0  # seconds between the container's start and the Engine's own uptime


def health_url_problem(container, url, get, now=None):
    """Why `url` cannot be this Engine's /health, or None. Asked once, before anything is changed.

    A running Engine (up long enough to listen) that nothing answers for, an answer from another version
    than the container runs, or an uptime that does not match the container's start: the URL points
    elsewhere, and a switch judged by it would be judged by someone else's Engine. A stopped Engine, a
    timeout (a hung Engine) or an answer without version or uptime is no evidence either way.
    """
    state = container.get("State") or {}
    if not state.get("Running"):
        return None
    name = container["Name"].lstrip("/")
    sample = probe_once(get, url, 2.0)
    since = started_at(container)
    up = None if since is None else (now or time.time()) - since
    if sample["classification"] == "unreachable":
        if up is not None and up > UPTIME_TOLERANCE and "timed out" not in sample["reason"]:
            return ("nothing answers at %s (%s) although container %s has been running for %d s; is the health URL "
                    "right?" % (url, sample["reason"], name, up))
        return None
    body = sample.get("body") or {}
    tag = split_reference((container.get("Config") or {}).get("Image") or "x")["tag"] or ""
    runs, answers = SEMVER.match(tag), SEMVER.match(str(body.get("version") or ""))
    if runs and answers and runs.group(1) != answers.group(1):
        return ("%s answers as Engine version %s, but container %s runs %s: it is another Engine's health URL"
                % (url, answers.group(1), name, tag))
    uptime = body.get("uptime_seconds")
    if isinstance(uptime, (int, float)) and up is not None and abs(uptime - up) > UPTIME_TOLERANCE:
        return ("%s answers for an Engine up %d s, but container %s started %d s ago: it is another Engine's health "
                "URL" % (url, uptime, name, up))
    return None


def recover_interrupted_switch(docker, name, check_mode=False):
    """Put back an Engine that a switch (or its revert) killed between two renames left without its name.

    Such a run leaves no container named `name` and the old Engine as `<name>-engine_ops-previous` (the new one,
    if any, as `<name>-engine_ops-next`, which the next switch removes). Renaming the old one back restores the
    state before the switch. Returns (container, note), or (None, None) when there is nothing to recover; in
    check mode the old container is returned as it is, and nothing is renamed.
    """
    if not name or docker.inspect_container(name) is not None:
        return None, None
    aside = docker.inspect_container(name + ASIDE_SUFFIX)
    if aside is None:
        return None, None
    note = ("no container was named %s but %s was: an image switch was interrupted between its renames; "
            % (name, name + ASIDE_SUFFIX))
    if check_mode:
        # Seen under the name it is about to get back: what a read-only module reports and looks up by the
        # Engine's name (its snapshots, its switch history, its baseline) is the Engine's, not "<name>-previous"'s.
        return dict(aside, Name="/" + name), note + (
            "it would be renamed back to %s (not renamed by this run: check mode or read-only)" % name)
    docker.rename(aside["Id"], name)
    return docker.inspect_container(name), note + "it was renamed back to %s, as before the switch" % name


# -- the switch -------------------------------------------------------------------------------------
def plan(container, current, target, keep_previous=False):
    name = container["Name"].lstrip("/")
    steps = ["create %s on %s (%s) beside the running Engine"
             % (name + NEXT_SUFFIX, target["reference"], target["id"][:19]),
             "drain %s (%s)" % (name, current["reference"]),
             "rename %s to %s" % (name, name + ASIDE_SUFFIX),
             "start the new container as %s on the same brain" % name,
             "probe /health; on failure remove the new container and restore %s" % name,
             ("keep" if keep_previous else "remove") + " the old container"]
    return steps


def diff(container, current_image, target):
    before = settings_view(container, current_image)
    before["image"] = (container.get("Config") or {}).get("Image")
    after = dict(before, image=target["reference"])
    return {"before": before, "after": after}


def switch(docker, container, current, current_image, target, probe, drain_timeout=30, drain_signal="SIGTERM",
           keep_previous=False, now=time.monotonic, clock=None):
    """Run the switch; returns the result dict or raises SwitchError (with what was restored)."""
    name = container["Name"].lstrip("/")
    actions = []
    result = {"actions": actions, "reverted": False}

    def step(action, func, *args, **kwargs):
        began = now()
        value = func(*args, **kwargs)
        actions.append({"action": action, "seconds": round(now() - began, 3)})
        return value

    labels = {LABEL + "previous_image": current["reference"], LABEL + "previous_image_id": current["id"],
              LABEL + "previous_image_digests": json.dumps(current["digests"]),
              LABEL + "replaced_at": (clock or _utcnow)()}
    create_ref = run_reference(docker, target)
    body, extra_networks = recreate_spec(container, current_image, create_ref, labels)
    for stale in (name + NEXT_SUFFIX, name + ASIDE_SUFFIX):
        leftover = docker.inspect_container(stale)
        if leftover and (leftover.get("State") or {}).get("Running"):
            raise SwitchError("container %s is running; a previous switch did not finish, resolve it first "
                              "(nothing was changed)" % stale)
        if leftover:
            step("remove leftover %s" % stale, docker.remove, stale)
    new_id = step("create new container", docker.create, body, name + NEXT_SUFFIX, extra_networks)
    result["container_id"] = new_id
    old_running = (container.get("State") or {}).get("Running")
    try:
        if old_running:
            result["drain"] = step("drain old container", drain, docker, container, drain_signal, drain_timeout)
    except Exception as exc:
        docker.remove(new_id, force=True)
        raise SwitchError("draining %s failed (%s); the new container was removed and the Engine was left as it "
                          "was" % (name, exc), changed=True, result=result)
    try:
        step("rename old container aside", docker.rename, container["Id"], name + ASIDE_SUFFIX)
        step("rename new container", docker.rename, new_id, name)
        step("start new container", docker.start, new_id)
        health = step("probe health", probe)
    except Exception as exc:  # pylint: disable=broad-except
        health = {"healthy": False, "classification": "error", "reason": str(exc)}
    result["health"] = health
    if health.get("healthy"):
        if keep_previous:
            result["previous_container"] = name + ASIDE_SUFFIX
        else:
            step("remove old container", docker.remove, container["Id"], True)
        return result
    result["reverted"] = True
    revert_health = _revert(docker, container, new_id, name, old_running, probe, step)
    result["revert_health"] = revert_health
    raise SwitchError(
        "the Engine on %s was not healthy (%s: %s); reverted to the old container on %s, which is %s"
        % (target["reference"], health.get("classification"), health.get("reason"), current["reference"],
           "healthy again" if revert_health.get("healthy") else "NOT healthy (%s)" % revert_health.get("reason")),
        changed=True, result=result)


def _revert(docker, container, new_id, name, old_running, probe, step):
    step("stop and remove the new container", docker.remove, new_id, True)
    if docker.inspect_container(name) is None:
        step("rename old container back", docker.rename, container["Id"], name)
    if not old_running:
        return {"healthy": True, "reason": "the old container was not running before the switch"}
    step("start old container", docker.start, container["Id"])
    try:
        return step("probe health of the old container", probe)
    except Exception as exc:  # pylint: disable=broad-except
        return {"healthy": False, "reason": str(exc)}


def _utcnow():
    return datetime.utcnow().strftime("%Y-%m-%dT%H:%M:%SZ")


def unrecorded_switch(state, container, target):
    """The switch that made `container` (it carries the switch's labels) when the state has no record of it: a
    switch whose module was killed after the new container started, before it could write the record. Returns
    the record's (previous image, replaced_at) or None."""
    labels = (container.get("Config") or {}).get("Labels") or {}
    previous_id = labels.get(LABEL + "previous_image_id")
    if not previous_id or container["Image"] != target["id"]:
        return None
    if any(h.get("container_id") == container["Id"] for h in state.get("history") or []):
        return None
    try:
        digests = json.loads(labels.get(LABEL + "previous_image_digests") or "[]")
    except ValueError:
        digests = []
    previous = {"reference": labels.get(LABEL + "previous_image"), "id": previous_id, "digests": digests}
    return previous, labels.get(LABEL + "replaced_at")


def record_switch(state, current, target, container_id, clock=None):
    history = list(state.get("history") or [])
    history.append({"image": current, "replaced_by": target, "container_id": container_id,
                    "replaced_at": (clock or _utcnow)()})
    return {"history": history[-20:]}
