# -*- coding: utf-8 -*-
# Copyright: (c) 2026, engine_ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Stop an Engine just before a brain is swapped (or frozen) and start it after; say who else uses the brain.

Plain values in, results out: the module wrapper (_common.BrainModule.engine_stop) builds one from its options.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain.locate import containers_using
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._docker.drain import drain
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._errors import EngineDockerError
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._judge.health import probe


class EngineStop:
    """The Engine container of a brain operation (or none: then only who uses the brain is checked).

    `docker` returns the Docker client (or None) when first needed; `get` is the HTTP GET the health probe uses.
    """

    def __init__(self, docker, container, backend, get, drain_timeout=30, start_engine=True, health_url=None,
                 health_timeout=60):
        self._docker, self.container, self.backend, self.get = docker, container, backend, get
        self.drain_timeout, self.start_engine = drain_timeout or 30, start_engine
        self.health_url, self.health_timeout = health_url, health_timeout or 60
        self.stopped = False

    def in_use(self):
        if self.backend.name == "postgres":
            return self.backend.sessions()
        docker = self._docker()
        if docker is None:
            return []
        return containers_using(docker, self.backend.path)

    def stop(self):
        if not self.container or not self.container["State"]["Running"]:
            return None
        self.stopped = True
        return drain(self._docker(), self.container, "SIGTERM", self.drain_timeout)

    def start(self, always=False):
        """Start the Engine this stopped (unless start_engine is off and not `always`); its health when known."""
        if not self.stopped or not (self.start_engine or always):
            return None
        self._docker().start(self.container["Id"])
        self.stopped = False
        if not self.health_url:
            return {"started": True, "healthy": None, "classification": "unknown", "reason": "no health_url to ask"}
        return dict(probe(self.get, self.health_url, timeout=1.0, deadline=self.health_timeout, backoff=0.05,
                          backoff_max=0.2), started=True)

    def start_if_stopped(self):
        """After a refusal the Engine goes back to serving, whatever start_engine says.

        Never raises: it runs while another failure is being reported (the Docker daemon itself may be gone).
        """
        if not self.stopped:
            return None
        try:
            return self.start(always=True)
        except EngineDockerError as exc:
            return {"started": False, "healthy": False, "classification": "stopped",
                    "reason": "could not start it again: %s" % exc}

    def after_failure(self):
        """Start the Engine again if this stopped it; return (its health or None, what a failure message says)."""
        restarted = self.start_if_stopped()
        return restarted, engine_after(restarted)


def engine_after(restarted):
    """What became of an Engine a failed step had stopped, said at the end of the failure message ('' if it
    was not stopped). Every word is what was found: started and healthy, started and not (yet) healthy, started
    without a health URL to ask, or left stopped."""
    if restarted is None:
        return ""
    if not restarted.get("started", True):
        return "; the Engine is left stopped (%s)" % restarted.get("reason")
    if restarted.get("healthy"):
        return "; the Engine was started again and is healthy"
    if restarted.get("healthy") is None:
        return "; the Engine was started again (its health was not checked: %s)" % restarted.get("reason")
    return "; the Engine was started again but is not healthy (%s: %s)" % (
        restarted.get("classification"), restarted.get("reason"))
