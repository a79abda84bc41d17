# -*- coding: utf-8 -*-
# Copyright: (c) 2026, engine_ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Stop an Engine just before a brain is swapped and start it after; say who else uses the brain."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain.locate import containers_using
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._common import http_get
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._drain import drain
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._errors import EngineDockerError
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._health import probe


class DockerEngine:
    """The Engine container of a brain module (or none: then only who uses the brain is checked)."""

    def __init__(self, module, container, backend):
        self.module, self.container, self.backend = module, container, backend
        self.stopped = False

    def in_use(self):
        if self.backend.name == "postgres":
            return self.backend.sessions()
        if self.module.docker is None:
            return []
        return containers_using(self.module.docker, self.backend.path)

    def stop(self):
        if not self.container or not self.container["State"]["Running"]:
            return None
        self.stopped = True
        return drain(self.module.docker, self.container, "SIGTERM", self.module.params.get("drain_timeout") or 30)

    def start(self):
        if not self.stopped or not self.module.params.get("start_engine", True):
            return None
        self.module.docker.start(self.container["Id"])
        self.stopped = False
        if not self.module.params.get("health_url"):
            return None
        return probe(http_get, self.module.params["health_url"], timeout=1.0,
                     deadline=self.module.params.get("health_timeout") or 60, backoff=0.05, backoff_max=0.2)

    def start_if_stopped(self):
        """After a refusal the Engine goes back to serving, whatever start_engine says.

        Never raises: it runs while another failure is being reported (the Docker daemon itself may be gone).
        """
        if not self.stopped:
            return None
        self.module.params["start_engine"] = True
        try:
            return self.start()
        except EngineDockerError as exc:
            return {"healthy": False, "classification": "stopped", "reason": "could not start it again: %s" % exc}
