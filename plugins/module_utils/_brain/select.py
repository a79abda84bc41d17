# -*- coding: utf-8 -*-
# Copyright: (c) 2026, engine_ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Build the brain backend the module options describe."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain.base import BrainError
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain.locate import sqlite_path_from_container

BRAIN_OPTIONS = dict(
    engine=dict(type="str"),
    store=dict(type="path", default="/var/lib/engine_ops/snapshots"),
    backend=dict(type="str", choices=["sqlite", "postgres", "ebs", "gcp_disk"], default="sqlite"),
    sqlite_path=dict(type="path"),
    pg_dsn=dict(type="str", no_log=True),
    pg_host=dict(type="str", default="127.0.0.1"),
    pg_port=dict(type="int", default=5432),
    pg_user=dict(type="str"),
    pg_password=dict(type="str", no_log=True),
    pg_database=dict(type="str"),
    pg_jobs=dict(type="int", default=2),
    pg_restore_strategy=dict(type="str", choices=["auto", "schema", "database"], default="auto"),
)
# Cloud volumes (backends ebs and gcp_disk) and the off-host S3 copy; kept apart so they stay optional.
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain.offsite import AWS_OPTIONS, OFFSITE_OPTIONS  # noqa: E402
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain.volume_options import VOLUME_OPTIONS  # noqa: E402

BRAIN_OPTIONS.update(VOLUME_OPTIONS)
BRAIN_OPTIONS.update(AWS_OPTIONS)
BRAIN_OPTIONS.update(OFFSITE_OPTIONS)


def make_backend(params, container=None, run=None):
    if params["backend"] in ("ebs", "gcp_disk"):
        from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain.volume import VolumeBrain, make_provider
        return VolumeBrain(make_provider(params), make_backend(dict(params, backend="sqlite"), container), params)
    if params["backend"] == "sqlite":
        from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain.sqlite import SqliteBackend
        path = params.get("sqlite_path")
        if not path:
            if container is None:
                raise BrainError("give sqlite_path, or the Engine (container or compose_project) to find it from")
            path = sqlite_path_from_container(container)
        return SqliteBackend(path)
    from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain.locate import container_env
    from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain.postgres import PostgresBackend
    url = container_env(container).get("DATABASE_URL") if container else None
    return PostgresBackend.from_params(params, run=run, container_url=url)
