# -*- coding: utf-8 -*-
# Copyright: (c) 2026, engine_ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The few Docker Engine API calls the collection makes, over the standard library alone.

A module process that imported the Docker SDK paid for it (SDK, requests, urllib3) on every run, and that was
the largest part of a module's start-up after Ansible's own; a fleet rollback starts hundreds of module
processes. The Engine API is plain HTTP over the daemon's socket: unix:// (the default, /var/run/docker.sock),
or tcp:// with the docker CLI's environment: DOCKER_TLS (any value: TLS), DOCKER_TLS_VERIFY (any value, even 0:
TLS and verify the daemon against ca.pem), DOCKER_CERT_PATH (where ca.pem, cert.pem and key.pem are; default
~/.docker; it does not turn TLS on by itself).

The API version is negotiated as the docker CLI and the SDK's `auto` do: the daemon's /version says the newest
(ApiVersion) and oldest (MinAPIVersion) it speaks; the newest both sides speak is used. DOCKER_API_VERSION pins
it instead. Docker 29 refuses anything below 1.44; Docker 20.10 speaks up to 1.41.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import re
import socket
import ssl
import struct

from http.client import HTTPConnection, HTTPSConnection, HTTPException
from urllib.parse import quote, urlencode, urlparse

DEFAULT_HOST = "unix:///var/run/docker.sock"
CLIENT_MIN_API = "1.40"  # Docker 19.03: the oldest daemon whose answers the collection reads
CLIENT_MAX_API = "1.52"  # Docker 29: the newest API the collection's calls and the fields it reads were checked against
API_VERSION = "1.41"  # spoken until negotiate() has asked the daemon


class ApiError(Exception):
    """A Docker API answer other than success; `status` is the HTTP status (0: the daemon was not reached)."""

    def __init__(self, status, message):
        super(ApiError, self).__init__(message)
        self.status = status


class DockerTimeout(ApiError):
    """A call that did not answer within its timeout (a wait on a container that still runs)."""

    def __init__(self, message):
        super(DockerTimeout, self).__init__(0, message)


class _UnixConnection(HTTPConnection):
    def __init__(self, path, timeout):
        HTTPConnection.__init__(self, "localhost", timeout=timeout)
        self.socket_path = path

    def connect(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.socket_path)
        self.sock = sock


def tls_settings(environ=None):
    """(use TLS, verify the daemon, cert directory) from the environment, as the docker CLI reads it."""
    environ = os.environ if environ is None else environ
    verify = environ.get("DOCKER_TLS_VERIFY", "") != ""  # the CLI: set at all (even to 0) means verify
    use_tls = verify or environ.get("DOCKER_TLS", "") != ""
    cert_path = environ.get("DOCKER_CERT_PATH") or os.path.join(os.path.expanduser("~"), ".docker")
    return use_tls, verify, cert_path


def _tls_context(verify, cert_path):
    if verify:
        ca = os.path.join(cert_path, "ca.pem")
        if not os.path.exists(ca):
            raise ApiError(0, "DOCKER_TLS_VERIFY is set but %s does not exist: the daemon can't be verified" % ca)
        context = ssl.create_default_context(cafile=ca)
    else:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    cert, key = os.path.join(cert_path, "cert.pem"), os.path.join(cert_path, "key.pem")
    if os.path.exists(cert) and os.path.exists(key):
        context.load_cert_chain(cert, key)
    return context


class DockerApi:
    """One daemon; each call opens its own connection (calls are few, and a wait may block for minutes)."""

    def __init__(self, host=None, timeout=60):
        self.host = host or os.environ.get("DOCKER_HOST") or DEFAULT_HOST
        self.timeout = timeout
        parts = urlparse(self.host)
        if parts.scheme == "unix":
            self._connect = lambda t: _UnixConnection(parts.path, t)
        elif parts.scheme in ("tcp", "http", "https"):
            use_tls, verify, cert_path = tls_settings()
            tls = parts.scheme == "https" or use_tls
            port = parts.port or (2376 if tls else 2375)
            if tls:
                context = _tls_context(verify, cert_path)
                self._connect = lambda t: HTTPSConnection(parts.hostname, port, timeout=t, context=context)
            else:
                self._connect = lambda t: HTTPConnection(parts.hostname, port, timeout=t)
        else:
            raise ApiError(0, "docker host %s: only unix:// and tcp:// daemons are supported (run the module on the "
                              "Docker host itself)" % self.host)
        self.version = API_VERSION

    def negotiate(self, environ=None):
        """Ask the daemon which API versions it speaks and choose the newest both sides speak (or DOCKER_API_VERSION).

        Raises ApiError naming both ranges when there is none, before any other call is made."""
        environ = os.environ if environ is None else environ
        status, dummy, data = self._raw("GET", "/version", versioned=False)
        if status != 200:
            raise ApiError(status, "GET /version failed with HTTP %d: %s" % (status, data[:200].decode("utf-8", "replace")))
        try:
            info = json.loads(data.decode("utf-8"))
        except ValueError:
            raise ApiError(status, "GET /version did not answer JSON: is %s a Docker daemon?" % self.host)
        newest = info.get("ApiVersion") or API_VERSION
        oldest = info.get("MinAPIVersion") or newest
        daemon = "the Docker daemon at %s (%s) speaks API %s to %s" % (
            self.host, info.get("Version", "?"), oldest, newest)
        pinned = environ.get("DOCKER_API_VERSION", "")
        if pinned:
            if not re.match(r"^1\.[0-9]+$", pinned):
                raise ApiError(0, "DOCKER_API_VERSION=%r is not a Docker API version such as 1.44" % pinned)
            if not _as_tuple(oldest) <= _as_tuple(pinned) <= _as_tuple(newest):
                raise ApiError(0, "DOCKER_API_VERSION=%s, but %s" % (pinned, daemon))
            self.version = pinned
            return self.version
        chosen = min(newest, CLIENT_MAX_API, key=_as_tuple)
        if _as_tuple(chosen) < max(_as_tuple(oldest), _as_tuple(CLIENT_MIN_API)):
            raise ApiError(0, "%s and this collection %s to %s: no version in common" % (
                daemon, CLIENT_MIN_API, CLIENT_MAX_API))
        self.version = chosen
        return self.version

    # -- transport ------------------------------------------------------------------------------
    def _raw(self, method, path, params=None, body=None, timeout=None, versioned=True, headers=None):
        url = ("/v%s%s" % (self.version, path)) if versioned else path
        if params:
            url += "?" + urlencode(dict((k, v) for k, v in params.items() if v is not None))
        headers = dict(headers or {})
        if body is not None:
            headers["Content-Type"] = "application/json"
        conn = self._connect(self.timeout if timeout is None else timeout)
        try:
            conn.request(method, url, body=None if body is None else json.dumps(body), headers=headers)
            response = conn.getresponse()
            data = response.read()
            return response.status, dict((k.lower(), v) for k, v in response.getheaders()), data
        except (socket.timeout, OSError, HTTPException) as exc:
            if isinstance(exc, socket.timeout) or "timed out" in str(exc):
                raise DockerTimeout("%s %s timed out after %ss" % (method, path, timeout or self.timeout))
            raise ApiError(0, "cannot reach the Docker daemon at %s: %s" % (self.host, exc))
        finally:
            conn.close()

    def call(self, method, path, params=None, body=None, timeout=None, ok=(200, 201, 204, 304), raw=False,
             headers=None):
        """The decoded JSON answer (bytes when `raw` or not JSON); ApiError for any other status."""
        status, headers, data = self._raw(method, path, params, body, timeout, headers=headers)
        if status not in ok:
            try:
                message = json.loads(data.decode("utf-8")).get("message")
            except (ValueError, AttributeError):
                message = data.decode("utf-8", "replace").strip()
            raise ApiError(status, "%s %s: HTTP %d: %s" % (method, path, status, message))
        ctype = headers.get("content-type", "")
        if data and "json" in ctype and not raw:
            return json.loads(data.decode("utf-8"))
        return data

    # -- the calls ------------------------------------------------------------------------------
    def containers(self, all=False, filters=None):  # pylint: disable=redefined-builtin
        params = {"all": "1" if all else "0"}
        if filters:
            params["filters"] = json.dumps(filters)
        return self.call("GET", "/containers/json", params)

    def inspect_container(self, ref):
        return self.call("GET", "/containers/%s/json" % quote(ref, safe=""))

    def inspect_image(self, ref):
        return self.call("GET", "/images/%s/json" % quote(ref, safe="/:@"))

    def pull(self, ref, auth_header=None):
        """Pull by reference (tag or digest), with registry credentials in X-Registry-Auth when given; the daemon
        streams progress, and an error comes either as the HTTP status or as a line of it."""
        name, tag = split_reference(ref)
        data = self.call("POST", "/images/create", {"fromImage": name, "tag": tag}, timeout=max(self.timeout, 600),
                         raw=True, headers={"X-Registry-Auth": auth_header} if auth_header else None)
        for line in data.decode("utf-8", "replace").splitlines():
            try:
                item = json.loads(line)
            except ValueError:
                continue
            if isinstance(item, dict) and item.get("error"):
                raise ApiError(500, "pull %s: %s" % (ref, item["error"]))

    def kill(self, ref, signal):
        self.call("POST", "/containers/%s/kill" % quote(ref, safe=""), {"signal": signal})

    def wait(self, ref, timeout):
        """Exit code once the container stops; DockerTimeout when it still runs after `timeout` seconds."""
        return self.call("POST", "/containers/%s/wait" % quote(ref, safe=""), timeout=timeout)["StatusCode"]

    def start(self, ref):
        self.call("POST", "/containers/%s/start" % quote(ref, safe=""))

    def rename(self, ref, name):
        self.call("POST", "/containers/%s/rename" % quote(ref, safe=""), {"name": name})

    def remove_container(self, ref, force=False):
        self.call("DELETE", "/containers/%s" % quote(ref, safe=""), {"force": "1" if force else "0", "v": "0"})

    def create_container(self, body, name):
        return self.call("POST", "/containers/create", {"name": name}, body=body)

    def connect_network(self, network, container, endpoint_config):
        self.call("POST", "/networks/%s/connect" % quote(network, safe=""),
                  body={"Container": container, "EndpointConfig": endpoint_config})

    def logs(self, ref, since=None, tty=None):
        """stdout and stderr as bytes. A container without a TTY (Config.Tty, read when `tty` is not given) sends
        them framed (8-byte headers), which are removed; a TTY's output is raw and passes through as it is."""
        params = {"stdout": "1", "stderr": "1"}
        if since is not None:
            params["since"] = "%.6f" % since if isinstance(since, float) else str(int(since))
        if tty is None:
            tty = bool((self.inspect_container(ref).get("Config") or {}).get("Tty"))
        data = self.call("GET", "/containers/%s/logs" % quote(ref, safe=""), params, raw=True)
        return data if tty else demux(data)


def demux(data):
    """Docker's multiplexed log stream (8-byte frame headers: stream, 3 zero bytes, length) to plain bytes."""
    if not isinstance(data, bytes):
        return b""
    out, offset = [], 0
    while offset + 8 <= len(data):
        size = struct.unpack(">L", data[offset + 4:offset + 8])[0]
        out.append(data[offset + 8:offset + 8 + size])
        offset += 8 + size
    return b"".join(out)


def split_reference(ref):
    """'repo:tag' -> ('repo', 'tag'); 'repo@sha256:..' -> ('repo', 'sha256:..'); a registry port is not a tag."""
    if "@" in ref:
        name, digest = ref.split("@", 1)
        return name, digest
    slash = ref.rfind("/")
    colon = ref.rfind(":")
    if colon > slash:
        return ref[:colon], ref[colon + 1:]
    return ref, "latest"


def _as_tuple(version):
    try:
        return tuple(int(part) for part in version.split("."))
    except ValueError:
        return (0,)
