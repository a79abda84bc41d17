# -*- coding: utf-8 -*-
# Copyright: (c) 2026, engine_ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Registry credentials for a pull, found where the docker CLI finds them.

In order: the module's `registry_username`/`registry_password`; else the Docker client config
(`$DOCKER_CONFIG/config.json`, default `~/.docker/config.json`, as `docker login` writes it): a credential helper
named for the registry in `credHelpers`, else the `credsStore` helper, else the `auths` entry. The daemon gets them
in the `X-Registry-Auth` header of the pull; nothing here talks to the registry.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import json
import os
import subprocess

from ansible_collections.engine_ops.lifecycle.plugins.module_utils._errors import EngineOpsError

DOCKER_HUB = "docker.io"
DOCKER_HUB_HOSTS = ("index.docker.io", "docker.io", "registry-1.docker.io")  # any of them names Docker Hub
DOCKER_HUB_SERVER = "https://index.docker.io/v1/"  # the key `docker login` writes for Hub, and what helpers expect


class RegistryAuthError(EngineOpsError):
    """The credentials could not be read (a broken config file, a failing helper): nothing was pulled."""


def registry_of(repository):
    """The registry host of a repository: 'reg.example:5000/team/engine' -> 'reg.example:5000'; 'engine' -> Hub."""
    first, sep, dummy = repository.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first
    return DOCKER_HUB


def config_file(environ=None):
    environ = os.environ if environ is None else environ
    directory = environ.get("DOCKER_CONFIG") or os.path.join(os.path.expanduser("~"), ".docker")
    return os.path.join(directory, "config.json")


def _host_of(key):
    """An `auths` key as docker writes it ('https://reg:5000/v1/', 'reg:5000') -> 'reg:5000'."""
    key = key.strip()
    for scheme in ("https://", "http://"):
        if key.startswith(scheme):
            key = key[len(scheme):]
    return key.split("/", 1)[0]


def _is(registry, key):
    if registry == DOCKER_HUB:
        return _host_of(key) in DOCKER_HUB_HOSTS
    return _host_of(key) == registry


def _server(registry):
    """The server address the credentials are stored under (and sent with)."""
    return DOCKER_HUB_SERVER if registry == DOCKER_HUB else registry


def _helper(name, registry, run):
    server = _server(registry)
    program = "docker-credential-%s" % name
    try:
        proc = run([program, "get"], input=server, capture_output=True, text=True, timeout=30, check=False)
    except OSError as exc:
        raise RegistryAuthError("the Docker config names the credential helper %s, which can't be run: %s"
                                % (program, exc))
    except subprocess.TimeoutExpired:
        raise RegistryAuthError("the credential helper %s did not answer within 30 s" % program)
    if proc.returncode != 0:
        if "credentials not found" in (proc.stdout + proc.stderr).lower():
            return None
        raise RegistryAuthError("the credential helper %s failed for %s: %s"
                                % (program, registry, (proc.stderr or proc.stdout).strip()[:300]))
    try:
        answer = json.loads(proc.stdout)
        username, secret = answer["Username"], answer["Secret"]
    except (ValueError, KeyError, TypeError):
        raise RegistryAuthError("the credential helper %s answered something that is not its JSON" % program)
    if username == "<token>":
        return {"identitytoken": secret, "serveraddress": server}
    return {"username": username, "password": secret, "serveraddress": server}


def _from_auths(entry, registry, path):
    server = _server(registry)
    if entry.get("identitytoken"):
        return {"identitytoken": entry["identitytoken"], "serveraddress": server}
    if entry.get("auth"):
        try:
            username, dummy, password = base64.b64decode(entry["auth"]).decode("utf-8").partition(":")
        except (ValueError, TypeError, UnicodeDecodeError):
            raise RegistryAuthError("%s: the auths entry for %s is not base64 of user:password" % (path, registry))
        return {"username": username, "password": password, "serveraddress": server}
    if entry.get("username"):
        return {"username": entry["username"], "password": entry.get("password") or "", "serveraddress": server}
    return None


def credentials(registry, username=None, password=None, environ=None, run=subprocess.run):
    """(auth dict or None, where it came from). Raises RegistryAuthError when the config can't be read."""
    if username:
        return {"username": username, "password": password or "", "serveraddress": registry}, "registry_username"
    path = config_file(environ)
    try:
        with open(path) as handle:
            config = json.load(handle)
    except (IOError, OSError):
        return None, "no credentials (no %s)" % path
    except ValueError as exc:
        raise RegistryAuthError("%s is not valid JSON (%s)" % (path, exc))
    if not isinstance(config, dict):
        raise RegistryAuthError("%s is not a Docker client config (not a JSON object)" % path)
    helpers = config.get("credHelpers") or {}
    for key, name in helpers.items():
        if _is(registry, key):
            found = _helper(name, registry, run)
            return found, ("credential helper %s" % name) if found else "no credentials (helper %s has none)" % name
    if config.get("credsStore"):
        found = _helper(config["credsStore"], registry, run)
        if found:
            return found, "credential store %s" % config["credsStore"]
    for key, entry in (config.get("auths") or {}).items():
        if _is(registry, key) and isinstance(entry, dict):
            found = _from_auths(entry, registry, path)
            if found:
                return found, "%s (auths %s)" % (path, key)
    return None, "no credentials for %s in %s" % (registry, path)


def header(auth):
    """The X-Registry-Auth value: URL-safe base64 of the JSON."""
    return base64.urlsafe_b64encode(json.dumps(auth).encode("utf-8")).decode("ascii")
