# -*- coding: utf-8 -*-
# Copyright: (c) 2026, engine_ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one module wrapper: common options, the Docker client, and errors turned into fail_json."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import traceback

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain.base import BrainError
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain.select import BRAIN_OPTIONS, make_backend
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._errors import EngineDockerError, EngineOpsError
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain.store import SnapshotStore, StoreError

DOCKER_OPTIONS = dict(
    docker_host=dict(type="str", aliases=["docker_url"]),
    docker_timeout=dict(type="int", default=60),
)
STATE_OPTIONS = dict(
    container=dict(type="str", required=True),
    state_dir=dict(type="path", default="/var/lib/engine_ops/state"),
)
ENGINE_OPTIONS = dict(
    container=dict(type="str", aliases=["name"]),
    compose_project=dict(type="str"),
    compose_service=dict(type="str", default="engine"),
)


def http_request(url, timeout, method="GET", body=None, headers=None, validate_certs=True):
    """(status, body) of one HTTP request; an HTTP error status is an answer too (503 carries a body to read)."""
    # Imported here: ansible's urls module costs ~50 ms per module start, and brain modules seldom need it.
    from ansible.module_utils.six.moves.urllib.error import HTTPError
    from ansible.module_utils.urls import open_url
    all_headers = {"Accept": "application/json"}
    if body is not None:
        all_headers["Content-Type"] = "application/json"
    all_headers.update(headers or {})
    try:
        response = open_url(url, method=method, timeout=timeout, validate_certs=validate_certs, headers=all_headers,
                            data=json.dumps(body) if body is not None else None)
        return response.getcode(), response.read()
    except HTTPError as exc:
        return exc.code, exc.read()


def http_get(url, timeout, validate_certs=True):
    return http_request(url, timeout, validate_certs=validate_certs)


class EngineOpsModule(AnsibleModule):
    """AnsibleModule with the collection's common options merged in and one way to fail."""

    def __init__(self, argument_spec, engine="required", docker=True, read_only=False, **kwargs):
        """`read_only`: a module documented as changing nothing; it never renames a container either."""
        spec = dict(DOCKER_OPTIONS) if docker else {}
        if engine:
            spec.update(ENGINE_OPTIONS)
            if engine == "required":
                kwargs.setdefault("required_one_of", []).append(("container", "compose_project"))
            kwargs.setdefault("mutually_exclusive", []).append(("container", "compose_project"))
        spec.update(argument_spec)
        super(EngineOpsModule, self).__init__(argument_spec=spec, **kwargs)
        self.action = self._name.split(".")[-1]
        self._docker = None
        self.read_only = read_only
        EngineOpsModule.current = self  # for run(): the one module object of this process

    @property
    def docker(self):
        """The Docker client (standard library, module_utils._docker.api), connected on first use."""
        if self._docker is None:
            from ansible_collections.engine_ops.lifecycle.plugins.module_utils._docker.client import EngineDocker
            try:
                self._docker = EngineDocker.connect(self.params["docker_host"], self.params["docker_timeout"])
            except EngineDockerError as exc:
                self.fail_action("connect to Docker", exc)
        return self._docker

    def runner(self):
        """run(argv, env) -> (rc, stdout, stderr), for module_utils that call programs (pg_dump)."""
        return lambda argv, env: self.run_command(argv, environ_update=env)

    def engine_given(self):
        return bool(self.params.get("container") or self.params.get("compose_project"))

    def find_engine(self, required=True):
        params = self.params
        try:
            container = self.docker.find_engine(params.get("container"), params.get("compose_project"),
                                                params.get("compose_service"))
        except EngineDockerError as exc:
            self.fail_action("find the Engine", exc)
        if container is None and params.get("container"):
            from ansible_collections.engine_ops.lifecycle.plugins.module_utils._docker.image_switch import recover_interrupted_switch
            try:
                container, note = recover_interrupted_switch(self.docker, params["container"],
                                                             self.check_mode or self.read_only)
            except EngineDockerError as exc:
                self.fail_action("find the Engine", exc)
            if note:
                self.warn(note)
        if container is None and required:
            what = ("container %r" % params["container"]) if params.get("container") else (
                "compose project %r service %r" % (params["compose_project"], params["compose_service"]))
            self.fail_action("find the Engine", "%s does not exist" % what)
        return container

    def fail_action(self, action, cause, changed=None, **result):
        """Fail naming the action and the cause, and saying whether anything was changed.

        A cause that is an EngineOpsError brings its own `changed` and partial `result` (given values win)."""
        if isinstance(cause, EngineOpsError):
            result = dict(cause.result, **result)
            changed = cause.changed if changed is None else changed
        changed = bool(changed)
        for reserved in ("msg", "changed", "failed"):
            result.pop(reserved, None)
        tail = "" if changed else "; nothing was changed"
        self.fail_json(msg="%s: %s: %s%s" % (self.action, action, cause, tail), changed=changed, **result)


EngineOpsModule.current = None


def run(main):
    """A module's entry point: every error ends in one fail_json naming the module, never in a bare traceback.

    An EngineOpsError a module did not catch still carries `changed` and its partial result; anything else (a library
    error no layer converted) is reported with its type, and with the warning that it may have changed something."""
    try:
        main()
    except EngineOpsError as exc:
        if EngineOpsModule.current is None:
            raise
        EngineOpsModule.current.fail_action("stopped", exc)
    except Exception as exc:  # pylint: disable=broad-except
        module = EngineOpsModule.current
        if module is None:
            raise
        module.fail_json(msg="%s: unexpected %s: %s; this step may have changed something: look at the Engine and its "
                             "brain before running it again" % (module.action, type(exc).__name__, exc),
                         exception=traceback.format_exc())


class BrainModule(EngineOpsModule):
    """The brain modules' wrapper: brain options, an optional Engine, its store name, store and backend."""

    def __init__(self, argument_spec, **kwargs):
        spec = dict(BRAIN_OPTIONS)
        spec.update(argument_spec)
        kwargs.setdefault("required_one_of", []).append(("engine", "container", "compose_project"))
        super(BrainModule, self).__init__(argument_spec=spec, engine="optional", supports_check_mode=True, **kwargs)
        self.container = self.find_engine() if self.engine_given() else None
        self.engine_name = self.params["engine"] or self.container["Name"].lstrip("/")

    def engine_stop(self, backend):
        """The Engine this brain operation may stop and start again (_engine_control.EngineStop), from the options."""
        from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain.engine_stop import EngineStop
        p = self.params
        return EngineStop(lambda: self.docker, self.container, backend, http_get, drain_timeout=p.get("drain_timeout"),
                          start_engine=p.get("start_engine", True), health_url=p.get("health_url"),
                          health_timeout=p.get("health_timeout"))

    def store(self):
        try:
            return SnapshotStore(self.params["store"], self.engine_name)
        except StoreError as exc:
            self.fail_action("check options", exc)

    def backend(self):
        try:
            return make_backend(self.params, self.container, run=self.runner())
        except BrainError as exc:
            self.fail_action("find the brain", exc)

    def offsite(self):
        """The off-host S3 store when s3_bucket is set, else None (boto3 is imported only then)."""
        if not self.params.get("s3_bucket"):
            return None
        from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain.offsite import OffsiteError, S3Store
        try:
            return S3Store(self.params, self.engine_name)
        except (OffsiteError, StoreError) as exc:
            self.fail_action("check options", exc)
