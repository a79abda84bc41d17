# -*- coding: utf-8 -*-
# Copyright: (c) 2026, engine_ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A thin wrapper over the Docker SDK's low-level API: find the Engine, inspect, stop, swap.

Everything speaks raw Engine API dictionaries (what `docker inspect` prints), so the logic in
the other module_utils can be tested with plain data and a fake of this class.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import traceback

try:
    import docker
    from docker.errors import APIError, DockerException, ImageNotFound, NotFound
    from requests.exceptions import ConnectionError as RequestsConnectionError
    from requests.exceptions import ReadTimeout
    HAS_DOCKER = True
    DOCKER_IMPORT_ERROR = None
except ImportError:
    HAS_DOCKER = False
    DOCKER_IMPORT_ERROR = traceback.format_exc()

from ansible_collections.engine_ops.lifecycle.plugins.module_utils._errors import EngineDockerError

COMPOSE_PROJECT = "com.docker.compose.project"
COMPOSE_SERVICE = "com.docker.compose.service"


class EngineDocker:
    def __init__(self, api):
        self.api = api

    @classmethod
    def connect(cls, docker_host=None, timeout=60):
        if not HAS_DOCKER:
            raise EngineDockerError("the Python Docker SDK is not installed")
        try:
            if docker_host:
                api = docker.APIClient(base_url=docker_host, version="auto", timeout=timeout)
            else:
                api = docker.from_env(timeout=timeout, version="auto").api
            api.ping()
        except DockerException as exc:
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

    def inspect_container(self, ref):
        try:
            return self.api.inspect_container(ref)
        except NotFound:
            return None
        except (APIError, DockerException) as exc:
            raise EngineDockerError("inspect container %s: %s" % (ref, exc))

    def inspect_image(self, ref):
        try:
            return self.api.inspect_image(ref)
        except (NotFound, ImageNotFound):
            return None
        except (APIError, DockerException) as exc:
            raise EngineDockerError("inspect image %s: %s" % (ref, exc))

    def pull(self, ref):
        self._call("pull %s" % ref, self.api.pull, ref)  # the SDK splits tag or digest off the reference
        return self.inspect_image(ref)

    # -- lifecycle --------------------------------------------------------------------------------
    def kill(self, ref, signal):
        self._call("send %s to %s" % (signal, ref), self.api.kill, ref, signal=signal)

    def wait(self, ref, timeout):
        """Exit code, or None when the container is still running after `timeout` seconds."""
        try:
            return self.api.wait(ref, timeout=timeout)["StatusCode"]
        except (ReadTimeout, RequestsConnectionError):
            return None

    def start(self, ref):
        self._call("start %s" % ref, self.api.start, ref)

    def rename(self, ref, name):
        self._call("rename %s to %s" % (ref, name), self.api.rename, ref, name)

    def remove(self, ref, force=False):
        try:
            self.api.remove_container(ref, force=force, v=False)  # never anonymous volumes: they may hold a brain
        except NotFound:
            pass
        except (APIError, DockerException) as exc:
            raise EngineDockerError("remove container %s: %s" % (ref, exc))

    def create(self, body, name, extra_networks=None):
        created = self._call("create container %s" % name, self.api.create_container_from_config, body, name=name)
        for network, endpoint in (extra_networks or {}).items():
            self._call("connect %s to network %s" % (name, network), self.api.connect_container_to_network,
                       created["Id"], network, aliases=endpoint.get("Aliases"), links=endpoint.get("Links"),
                       ipv4_address=(endpoint.get("IPAMConfig") or {}).get("IPv4Address"),
                       ipv6_address=(endpoint.get("IPAMConfig") or {}).get("IPv6Address"),
                       driver_opt=endpoint.get("DriverOpts"))
        return created["Id"]

    def log_records(self, ref, since=None):
        """The container's stdout/stderr JSON lines (non-JSON lines are skipped)."""
        raw = self._call("read logs of %s" % ref, self.api.logs, ref, stdout=True, stderr=True, since=since)
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
        except (APIError, DockerException) as exc:
            raise EngineDockerError("%s: %s" % (action, exc))
