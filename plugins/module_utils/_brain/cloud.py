# -*- coding: utf-8 -*-
# Copyright: (c) 2026, engine_ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the cloud volume providers (ebs, gcp_disk) share: errors, deadlines, and the manifest carried as tags.

A cloud snapshot outlives the host it protects, so it carries the manifest's identifying fields itself
(EBS tags, GCP labels and description); the local store keeps the full manifest as well.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import time

from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain.base import BrainError


class CloudError(BrainError):
    """A cloud call failed; the message names the call and the cause."""


class PermissionDenied(CloudError):
    """The credentials lack a permission; the message names it."""


class DeadlineExceeded(CloudError):
    """A wait ran out of time; the message names what was awaited and the last state seen."""


# Manifest fields a cloud snapshot carries (each as its own tag); the rest stay in the local manifest.
TAG_FIELDS = ("format", "id", "engine", "created_at", "reason", "pinned", "engine_image", "engine_image_id",
              "engine_version", "schema_fingerprint", "consistency", "brain_path", "size_bytes")


MAX_ROW_TAGS = 30


def manifest_tags(manifest, limit):
    """{field: text} for the tag fields, each cut to `limit` characters; 'tables' when it fits."""
    tags = {}
    for field in TAG_FIELDS:
        value = manifest.get(field)
        if value is None:
            continue
        text = value if isinstance(value, str) else json.dumps(value)
        tags[field] = text[:limit]
    counts = manifest.get("row_counts") or {}
    rows = json.dumps(counts, sort_keys=True, separators=(",", ":"))
    if len(rows) <= limit:
        tags["row_counts"] = rows
    elif len(counts) <= MAX_ROW_TAGS:  # one tag per table (EBS allows 50 tags, values of 256 characters)
        tags.update(("rows.%s" % table, str(count)) for table, count in counts.items())
    return tags


def manifest_from_labels(labels, snapshot, backend):
    """A manifest rebuilt from a cloud snapshot's tags (when the host and its store are gone)."""
    manifest = {"files": [], "backend": backend, "tables": {}, "schema": {}}
    for field in TAG_FIELDS + ("row_counts",):
        if field not in labels:
            continue
        value = labels[field]
        if field in ("format", "pinned", "size_bytes", "row_counts"):
            try:
                value = json.loads(value)
            except ValueError:
                continue
        manifest[field] = value
    for key, value in labels.items():
        if key.startswith("rows.") and value.isdigit():
            manifest.setdefault("row_counts", {})[key[len("rows."):]] = int(value)
    manifest["volume_snapshot"] = {"provider": backend, "snapshot_id": snapshot["id"], "volume_id": snapshot.get("volume_id"),
                                   "size_gb": snapshot.get("size_gb")}
    manifest["source"] = "cloud tags"
    return manifest


def snapshot_deadline(size_gb, timeout=None, base=600, per_gb=30):
    """Seconds a snapshot may take: `timeout` when given, else a base plus time per GiB of volume."""
    if timeout:
        return float(timeout)
    return float(base + per_gb * int(size_gb or 1))


def wait_until(what, probe, deadline, progress=None, poll=0.5, poll_max=5.0, now=time.monotonic, sleep=time.sleep):
    """Call probe() until it returns a truthy value or `deadline` (monotonic) passes.

    probe() returns (done, state); `progress` gets each state, the caller keeps what it wants of them.
    """
    state = None
    while True:
        done, state = probe()
        if progress is not None:
            progress(state)
        if done:
            return state
        remaining = deadline - now()
        if remaining <= 0:
            raise DeadlineExceeded("%s did not finish before its deadline (last state: %s)" % (what, state))
        sleep(min(poll, remaining))
        poll = min(poll * 1.5, poll_max)
