# -*- coding: utf-8 -*-
# Copyright: (c) 2026, engine_ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One diagnostics archive for a bad window: logs, redacted inspects, evidence, summaries, the export, a manifest."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import io
import json
import os
import tarfile
import time

from ansible_collections.engine_ops.lifecycle.plugins.module_utils._docker.container_spec import redact_env
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._state.files import ensure_dir


def redacted_inspect(container):
    """docker inspect with secret env values and URL passwords masked."""
    copy = json.loads(json.dumps(container))
    config = copy.get("Config") or {}
    config["Env"] = redact_env(config.get("Env"))
    return copy


def error_summary(evidence):
    """Errors and latency per window, and the totals, from a rollback_decision evidence document."""
    evidence = evidence or {}
    return {"overall": evidence.get("overall"), "windows": evidence.get("windows"),
            "engine_errors": evidence.get("engine_errors"), "failing_requests": evidence.get("failing_requests")}


def build(dest, members, manifest_extra, export_dir=None, now=time.time):
    """Write a gzip tar at dest (0600): every member (name -> bytes), the export's files, and manifest.json."""
    ensure_dir(os.path.dirname(os.path.abspath(dest)))
    files = dict(members)
    if export_dir and os.path.isdir(export_dir):
        for name in sorted(os.listdir(export_dir)):
            path = os.path.join(export_dir, name)
            if os.path.isfile(path) and not os.path.islink(path):
                with open(path, "rb") as handle:
                    files["exports/" + name] = handle.read()
    manifest = dict(manifest_extra)
    manifest["created_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now()))
    manifest["files"] = [{"name": name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
                         for name, data in sorted(files.items())]
    files["manifest.json"] = json.dumps(manifest, indent=2, sort_keys=True).encode("utf-8")
    tmp = dest + ".partial"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as raw:
        with tarfile.open(fileobj=raw, mode="w:gz") as archive:
            for name, data in sorted(files.items()):
                info = tarfile.TarInfo(name)
                info.size, info.mode, info.mtime = len(data), 0o600, int(now())
                archive.addfile(info, io.BytesIO(data))
        raw.flush()
        os.fsync(raw.fileno())
    os.rename(tmp, dest)
    return manifest
