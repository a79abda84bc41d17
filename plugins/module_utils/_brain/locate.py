# -*- coding: utf-8 -*-
# Copyright: (c) 2026, engine_ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where a brain lives, found from the Engine container, and who is using it."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain.base import BrainError

DEFAULT_SQLITE_PATH = "/data/brain.sqlite"


def container_env(container):
    env = {}
    for entry in (container.get("Config") or {}).get("Env") or []:
        key, dummy, value = entry.partition("=")
        env[key] = value
    return env


def sqlite_path_from_container(container):
    """Host path of the SQLite brain: SQLITE_DB_PATH (default /data/brain.sqlite) through the mounts."""
    inner = container_env(container).get("SQLITE_DB_PATH") or DEFAULT_SQLITE_PATH
    best = None
    for mount in container.get("Mounts") or []:
        dest = (mount.get("Destination") or "").rstrip("/")
        if dest and (inner == dest or inner.startswith(dest + "/")) and (best is None or len(dest) > len(best[0])):
            best = (dest, mount)
    if best is None:
        raise BrainError("container %s has no mount holding %s (its brain would be lost with the container)"
                         % (container.get("Name", "?").lstrip("/"), inner))
    dest, mount = best
    return os.path.join(mount["Source"], os.path.relpath(inner, dest))


def mounts_path(container, path):
    directory = os.path.dirname(os.path.realpath(path))
    for mount in container.get("Mounts") or []:
        source = os.path.realpath(mount.get("Source") or "")
        if source and (directory == source or directory.startswith(source + os.sep)):
            return True
    return False


def containers_using(docker, path):
    """Names of running containers that mount the directory holding `path`."""
    users = []
    for summary in docker.running_containers():
        container = docker.inspect_container(summary["Id"])
        if container and mounts_path(container, path):
            users.append(container["Name"].lstrip("/"))
    return sorted(users)
