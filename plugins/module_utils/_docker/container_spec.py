# -*- coding: utf-8 -*-
# Copyright: (c) 2026, engine_ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a recreated Engine container must keep: the container's own settings, not its image's.

`docker inspect` mixes both: Config.Env holds the image's ENV and the `-e` values alike. A value
equal to what the old image set came from the image and is left for the new image to set; every
other value was set on the container and is carried over. HostConfig is the container's alone.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import re

# Config keys an image can set, and how to tell the container's own value from the image's.
IMAGE_DERIVED_SCALARS = ("Cmd", "Entrypoint", "WorkingDir", "User", "Healthcheck", "StopSignal", "Shell", "OnBuild")
CONTAINER_ONLY = ("Hostname", "Domainname", "Tty", "OpenStdin", "StdinOnce", "AttachStdin", "AttachStdout",
                  "AttachStderr", "StopTimeout", "MacAddress", "NetworkDisabled")
# Labels the collection writes itself; they describe the swap, not the Engine's settings.
BOOKKEEPING_LABEL_PREFIX = "engine_ops.lifecycle."
# Environment values never shown in a diff or a result: the Engine's secrets and anything named like one.
SECRET_ENV = re.compile(r"(KEY|SECRET|TOKEN|PASSWORD|PASSWD|CREDENTIAL|HASH)", re.I)
URL_PASSWORD = re.compile(r"(://[^/:@\s]*:)[^@/\s]*@")
REDACTED = "<redacted>"


def redact_env(entries):
    """Env entries with secret values replaced, and passwords in URLs (DATABASE_URL) masked."""
    out = []
    for entry in entries or []:
        key, sep, value = entry.partition("=")
        if sep and SECRET_ENV.search(key):
            value = REDACTED
        elif sep:
            value = URL_PASSWORD.sub(r"\1%s@" % REDACTED, value)
        out.append(key + sep + value)
    return out


def _env_map(entries):
    out = {}
    for entry in entries or []:
        key, sep, value = entry.partition("=")
        out[key] = value if sep else None
    return out


def own_config(container, old_image):
    """The container's own Config settings (image-derived values removed)."""
    cfg = container.get("Config") or {}
    img = (old_image or {}).get("Config") or {}
    own = {}
    image_env = _env_map(img.get("Env"))
    env = [e for e in cfg.get("Env") or [] if e.partition("=")[0] not in image_env
           or image_env[e.partition("=")[0]] != (e.partition("=")[2] if "=" in e else None)]
    if env:
        own["Env"] = env
    for key in IMAGE_DERIVED_SCALARS:
        if cfg.get(key) not in (None, "", [], {}) and cfg.get(key) != img.get(key):
            own[key] = copy.deepcopy(cfg[key])
    image_labels = img.get("Labels") or {}
    labels = {k: v for k, v in (cfg.get("Labels") or {}).items()
              if image_labels.get(k) != v and not k.startswith(BOOKKEEPING_LABEL_PREFIX)}
    if labels:
        own["Labels"] = labels
    for key in ("ExposedPorts", "Volumes"):
        extra = {k: v for k, v in (cfg.get(key) or {}).items() if k not in (img.get(key) or {})}
        if extra:
            own[key] = extra
    mode = (container.get("HostConfig") or {}).get("NetworkMode") or ""
    shares_network = mode == "host" or mode.startswith("container:")
    for key in CONTAINER_ONLY:
        if key == "Hostname" and cfg.get(key) == container.get("Id", "")[:12]:
            continue  # Docker's default hostname is the container's own short ID
        if shares_network and key in ("Hostname", "Domainname", "MacAddress"):
            continue  # taken from the shared network namespace; Docker refuses them as settings
        if cfg.get(key) not in (None, "", False):
            own[key] = copy.deepcopy(cfg[key])
    return own


def _anonymous_volume_binds(container):
    """Volumes without a setting of their own (an image VOLUME, `-v /data`): keep them by name."""
    host = container.get("HostConfig") or {}
    covered = set()
    for bind in host.get("Binds") or []:
        parts = bind.split(":")
        if len(parts) >= 2:
            covered.add(parts[1])
    for mount in host.get("Mounts") or []:
        covered.add(mount.get("Target"))
    binds = []
    for mount in container.get("Mounts") or []:
        if mount.get("Type") == "volume" and mount.get("Destination") not in covered and mount.get("Name"):
            binds.append("%s:%s%s" % (mount["Name"], mount["Destination"], "" if mount.get("RW", True) else ":ro"))
    return binds


def _endpoints(container):
    host = container.get("HostConfig") or {}
    mode = host.get("NetworkMode") or "default"
    if mode in ("host", "none") or mode.startswith("container:"):
        return {}
    short_id = container.get("Id", "")[:12]
    endpoints = {}
    for name, net in ((container.get("NetworkSettings") or {}).get("Networks") or {}).items():
        endpoint = {}
        aliases = [a for a in net.get("Aliases") or [] if a != short_id]
        if aliases:
            endpoint["Aliases"] = aliases
        for key in ("IPAMConfig", "Links", "DriverOpts"):
            if net.get(key):
                endpoint[key] = copy.deepcopy(net[key])
        endpoints[name] = endpoint
    return endpoints


def recreate_spec(container, old_image, new_image_ref, labels=None):
    """Return (create_body, extra_networks): the new container's settings on `new_image_ref`.

    The API of Docker 20.10 attaches one network at create time; the others are connected
    before the container starts.
    """
    body = own_config(container, old_image)
    if labels:
        body["Labels"] = dict(body.get("Labels") or {}, **labels)
    body["Image"] = new_image_ref
    host = copy.deepcopy(container.get("HostConfig") or {})
    extra_binds = _anonymous_volume_binds(container)
    if extra_binds:
        host["Binds"] = list(host.get("Binds") or []) + extra_binds
    body["HostConfig"] = host
    endpoints = _endpoints(container)
    extra = {}
    if endpoints:
        mode = host.get("NetworkMode")
        first = mode if mode in endpoints else sorted(endpoints)[0]
        body["NetworkingConfig"] = {"EndpointsConfig": {first: endpoints[first]}}
        extra = {name: ep for name, ep in endpoints.items() if name != first}
    return body, extra


def settings_view(container, image):
    """A comparable view of a container's own settings (what diff mode shows), secrets redacted."""
    body, extra = recreate_spec(container, image, (container.get("Config") or {}).get("Image"))
    if "Env" in body:
        body["Env"] = redact_env(body["Env"])
    host = body.pop("HostConfig")
    networks = dict((body.pop("NetworkingConfig", None) or {}).get("EndpointsConfig") or {}, **extra)
    host_config = dict((k, v) for k, v in host.items() if v not in (None, "", [], {}, 0, False))
    return {"image": body.pop("Image"), "config": body, "host_config": host_config, "networks": networks}
