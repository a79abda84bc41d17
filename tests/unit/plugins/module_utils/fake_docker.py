"""An in-memory stand-in for EngineDocker: records every call, scripts exits and health."""

import copy

from ansible_collections.engine_ops.lifecycle.plugins.module_utils._docker.client import EngineDockerError


class FakeDocker:
    def __init__(self):
        self.containers = {}  # id -> inspect document
        self.images = {}      # reference or id -> inspect document
        self.logs = {}        # id -> list of records
        self.calls = []
        self.exit_after_signal = {}  # id -> exit code, or None to ignore the signal
        self.fail_on = set()
        self.created = 0
        self.registry = {}    # reference -> inspect document a pull of that reference brings
        self.pull_auth = []   # the X-Registry-Auth of each pull
        self.pull_error = None  # the daemon's message for a pull of anything not in `registry`

    # -- setup helpers -----------------------------------------------------------------------
    def add_image(self, ref, image_id, config=None):
        doc = {"Id": image_id, "RepoDigests": ["engine@sha256:" + image_id[-1] * 64], "Config": config or {}}
        for key in [ref, image_id] + doc["RepoDigests"]:  # a daemon finds an image by each of them
            self.images[key] = doc
        return doc

    def add_container(self, name, image_ref, running=True, config=None, host_config=None):
        cid = "c%03d" % (len(self.containers) + 1) + "0" * 13
        self.containers[cid] = {"Id": cid, "Name": "/" + name, "Image": self.images[image_ref]["Id"],
                                "Config": dict({"Image": image_ref, "Labels": {}}, **(config or {})),
                                "State": {"Running": running, "StartedAt": "2026-11-28T10:00:00Z"},
                                "HostConfig": host_config or {"NetworkMode": "host"}, "Mounts": [],
                                "NetworkSettings": {"Networks": {}}}
        return self.containers[cid]

    def by_ref(self, ref):
        if ref in self.containers:
            return self.containers[ref]
        for doc in self.containers.values():
            if doc["Name"] == "/" + ref:
                return doc
        return None

    def _check(self, action):
        self.calls.append(action)
        if action[0] in self.fail_on:
            raise EngineDockerError("%s failed (scripted)" % action[0])

    # -- the EngineDocker surface ----------------------------------------------------------------
    def find_engine(self, name=None, compose_project=None, compose_service="engine"):
        return copy.deepcopy(self.by_ref(name))

    def inspect_container(self, ref):
        doc = self.by_ref(ref)
        return copy.deepcopy(doc) if doc else None

    def inspect_image(self, ref):
        return copy.deepcopy(self.images.get(ref))

    def pull(self, ref, auth_header=None):
        self._check(("pull", ref))
        self.pull_auth.append(auth_header)
        if ref in self.registry:  # what a registry would give: the image, now on the host under that reference
            self.images[ref] = copy.deepcopy(self.registry[ref])
            self.images[self.registry[ref]["Id"]] = self.images[ref]
            return copy.deepcopy(self.images[ref])
        if self.pull_error:
            raise EngineDockerError("pull %s: %s" % (ref, self.pull_error))
        return None

    def kill(self, ref, signal):
        self._check(("kill", ref, signal))
        doc = self.by_ref(ref)
        if signal == "SIGKILL" or self.exit_after_signal.get(doc["Id"], 0) is not None:
            doc["State"]["Running"] = False
            doc["State"]["ExitCode"] = 137 if signal == "SIGKILL" else self.exit_after_signal.get(doc["Id"], 0)

    def wait(self, ref, timeout):
        self.calls.append(("wait", ref, timeout))
        doc = self.by_ref(ref)
        return None if doc["State"]["Running"] else doc["State"]["ExitCode"]

    def start(self, ref):
        self._check(("start", ref))
        self.by_ref(ref)["State"]["Running"] = True

    def rename(self, ref, name):
        self._check(("rename", ref, name))
        self.by_ref(ref)["Name"] = "/" + name

    def remove(self, ref, force=False):
        self._check(("remove", ref))
        doc = self.by_ref(ref)
        if doc:
            del self.containers[doc["Id"]]

    def create(self, body, name, extra_networks=None):
        self._check(("create", name, body["Image"]))
        self.created += 1
        cid = "n%03d" % self.created + "0" * 13
        image = self.images[body["Image"]]
        self.containers[cid] = {"Id": cid, "Name": "/" + name, "Image": image["Id"],
                                "Config": {"Image": body["Image"], "Labels": body.get("Labels", {})},
                                "State": {"Running": False}, "HostConfig": body["HostConfig"], "Body": body}
        return cid

    def log_records(self, ref, since=None):
        return list(self.logs.get(self.by_ref(ref)["Id"], []))
