# -*- coding: utf-8 -*-
# Copyright: (c) 2026, engine_ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A thin wrapper over the Docker Engine API (module_utils._docker.api): find the Engine, inspect, stop, swap.

Everything speaks raw Engine API dictionaries (what `docker inspect` prints), so the logic in
the other module_utils can be tested with plain data and a fake of this class.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

from ansible_collections.engine_ops.lifecycle.plugins.module_utils._docker.api import ApiError, DockerApi, DockerTimeout
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._errors import EngineDockerError

COMPOSE_PROJECT = "com.docker.compose.project"
COMPOSE_SERVICE = "com.docker.compose.service"


class EngineDocker:
    def __init__(self, api):
        self.api = api

    @classmethod
    def connect(cls, docker_host=None, timeout=60):
        try:
            api = DockerApi(docker_host, timeout)
            api.negotiate()
        except ApiError as exc:
            raise EngineDockerError("cannot reach the Docker daemon%s: %s"
                                    % (" at %s" % docker_host if docker_host else "", exc))
        return cls(api)

    # -- finding ----------------------------------------------------------------------------------
    def find_engine(self, name=None, compose_project=None, compose_service="engine"):
        """Return the Engine container's inspect document, or None when it does not exist."""
        if name:
            return self.inspect_container(name)
        if not compose_project:
            raise EngineDockerError("name the Engine by container name or by compose project")
        labels = ["%s=%s" % (COMPOSE_PROJECT, compose_project), "%s=%s" % (COMPOSE_SERVICE, compose_service)]
        found = self._call("list containers", self.api.containers, all=True, filters={"label": labels})
        if not found:
            return None
        if len(found) > 1:
            names = sorted(n.lstrip("/") for c in found for n in c.get("Names", [])[:1])
            raise EngineDockerError("compose project %r service %r has %d containers (%s): name the one to operate "
                                    "with container=" % (compose_project, compose_service, len(found), ", ".join(names)))
        return self.inspect_container(found[0]["Id"])

    def running_containers(self):
        return self._call("list containers", self.api.containers)

    def inspect_container(self, ref):
        return self._inspect("container", self.api.inspect_container, ref)

    def inspect_image(self, ref):
        return self._inspect("image", self.api.inspect_image, ref)

    def _inspect(self, what, func, ref):
        try:
            return func(ref)
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise EngineDockerError("inspect %s %s: %s" % (what, ref, exc))

    def pull(self, ref, auth_header=None):
        self._call("pull %s" % ref, self.api.pull, ref, auth_header=auth_header)
        return self.inspect_image(ref)

    # -- lifecycle --------------------------------------------------------------------------------
    def kill(self, ref, signal):
        self._call("send %s to %s" % (signal, ref), self.api.kill, ref, signal=signal)

    def wait(self, ref, timeout):
        """Exit code, or None when the container is still running after `timeout` seconds."""
        try:
            return self.api.wait(ref, timeout=timeout)
        except DockerTimeout:
            return None

    def start(self, ref):
        self._call("start %s" % ref, self.api.start, ref)

    def rename(self, ref, name):
        self._call("rename %s to %s" % (ref, name), self.api.rename, ref, name)

    def remove(self, ref, force=False):
        try:
            self.api.remove_container(ref, force=force)  # never anonymous volumes (v=0): they may hold a brain
        except ApiError as exc:
            if exc.status != 404:
                raise EngineDockerError("remove container %s: %s" % (ref, exc))

    def create(self, body, name, extra_networks=None):
        created = self._call("create container %s" % name, self.api.create_container, body, name)
        for network, endpoint in (extra_networks or {}).items():
            config = dict((k, endpoint[k]) for k in ("Aliases", "Links", "IPAMConfig", "DriverOpts") if endpoint.get(k))
            self._call("connect %s to network %s" % (name, network), self.api.connect_network, network,
                       created["Id"], config)
        return created["Id"]

    def log_records(self, ref, since=None):
        """The container's stdout/stderr JSON lines (non-JSON lines are skipped)."""
        raw = self._call("read logs of %s" % ref, self.api.logs, ref, since=since)
        records = []
        for line in raw.decode("utf-8", "replace").splitlines():
            line = line.strip()
            if line.startswith("{"):
                try:
                    records.append(json.loads(line))
                except ValueError:
                    continue
        return records

    def _call(self, action, func, *args, **kwargs):
        try:
            return func(*args, **kwargs)
        except ApiError as exc:
            raise EngineDockerError("%s: %s" % (action, exc))
