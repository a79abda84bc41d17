# -*- coding: utf-8 -*-
# Copyright: (c) 2026, engine_ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Take a verified snapshot into the store: written aside, verified, then committed with its manifest."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import os
import shutil
import threading
import time
from datetime import datetime

from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain.base import BrainError, brain_reads
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._state.files import fsync_path
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain.store import FORMAT, file_entries, sha256_file


def engine_metadata(container, image=None):
    """Image reference, ID and version of the Engine that wrote the brain (from Docker, not from the brain)."""
    if not container:
        return {"engine_image": None, "engine_image_id": None, "engine_version": None}
    ref = (container.get("Config") or {}).get("Image")
    labels = ((image or {}).get("Config") or {}).get("Labels") or {}
    version = labels.get("org.opencontainers.image.version")
    if not version and ref and ":" in ref.rsplit("/", 1)[-1]:
        version = ref.rsplit(":", 1)[-1]
    return {"engine_image": ref, "engine_image_id": container.get("Image"), "engine_version": version}


def fsync_files(directory, names):
    for name in names:
        fsync_path(os.path.join(directory, name))


def parallel(jobs):
    """Run {name: (func, *args)} in threads (sqlite3 and hashlib release the GIL); re-raise the first error."""
    results, errors = {}, []

    def run(name, func, args):
        try:
            results[name] = func(*args)
        except Exception as exc:  # pylint: disable=broad-except
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(name, job[0], job[1:])) for name, job in jobs.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results


def room_for_snapshot(store, size):
    """Refuse a snapshot the store's filesystem cannot hold (the brain's size, 10 % and 16 MiB to spare)."""
    where = store.root
    while not os.path.isdir(where) and os.path.dirname(where) != where:
        where = os.path.dirname(where)  # the store may not exist yet: ask the filesystem it will be made on
    free = shutil.disk_usage(where).free
    need = int(size * 1.1) + (16 << 20)
    if free < need:
        raise BrainError("not enough free space in %s for a snapshot of %d MiB: %d MiB free, %d MiB needed"
                         % (store.root, size >> 20, free >> 20, need >> 20))


def adopt(backend, store, snapshot_id, path, metadata, reason=None, pinned=False, key_fingerprint=None, force=False):
    """A snapshot taken by hand (a plain `sqlite3 .backup` file, a pg_dump) into the store as a normal snapshot.

    Checked first (whole, an Engine brain, this Engine's: backend.adoption_problem), then copied and described like
    any snapshot (take_snapshot), its time being the file's. Raises BrainError naming the problem.
    """
    refuse_adoption(backend, path, force)
    digest, size, mtime = file_facts(path)
    room_for_snapshot(store, size)
    metadata = dict(metadata, adopted_from={"path": path, "sha256": digest, "size": size,
                                            "modified_at": _stamp(datetime.utcfromtimestamp(mtime))})
    return take_snapshot(backend.for_file(path), store, snapshot_id, metadata, reason, pinned, key_fingerprint,
                         clock=lambda: datetime.utcfromtimestamp(mtime))


def file_facts(path):
    """(sha256, size, modification time) of a file, or of a directory's files together (pg_dump's directory
    format): the digest covers every file's relative name and content, the time is the newest file's."""
    if not os.path.isdir(path):
        stat = os.stat(path)
        return sha256_file(path), stat.st_size, stat.st_mtime
    digest, size, mtime = hashlib.sha256(), 0, 0
    for root, dirs, files in os.walk(path):
        dirs.sort()
        for name in sorted(files):
            full = os.path.join(root, name)
            stat = os.stat(full)
            digest.update(("%s\0%s\0" % (os.path.relpath(full, path), sha256_file(full))).encode("utf-8"))
            size, mtime = size + stat.st_size, max(mtime, stat.st_mtime)
    return digest.hexdigest(), size, mtime


def refuse_adoption(backend, path, force=False):
    """Raise BrainError when a hand-made copy can't be adopted (another Engine's brain only without `force`)."""
    problem = backend.adoption_problem(path)
    if problem and not (force and problem.startswith("holds none")):
        raise BrainError("%s %s" % (path, problem))


def _stamp(moment):
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def take_snapshot(backend, store, snapshot_id, metadata, reason=None, pinned=False, key_fingerprint=None,
                  now=time.monotonic, clock=datetime.utcnow):
    store.ensure()
    store.discard_partials()
    created_at = _stamp(clock())
    began = now()
    try:
        with store.entering(snapshot_id) as entry:  # a partial snapshot is never left to look valid
            manifest = _take_into(entry.path, backend, store, snapshot_id, metadata, reason, pinned, key_fingerprint,
                                  created_at, began, now)
            entry.manifest = manifest
    except (BrainError, OSError) as exc:
        raise BrainError("%s; the partial snapshot was removed and nothing was recorded" % exc)
    return manifest


def _take_into(partial, backend, store, snapshot_id, metadata, reason, pinned, key_fingerprint, created_at, began,
               now):
    """Copy, verify, checksum and describe the brain into `partial`; the manifest."""
    names, description = backend.snapshot(partial)
    jobs = {"problems": (backend.verify_snapshot, partial), "files": (file_entries, partial, names),
            "durable": (fsync_files, partial, names)}
    if description is None:
        jobs["description"] = (backend.describe_snapshot, partial)
    done = parallel(jobs)  # integrity check, checksums and counts read the same copy: overlap them
    if done["problems"]:
        raise BrainError("the new snapshot failed verification: %s" % "; ".join(done["problems"][:3]))
    files = done["files"]
    description = description or done["description"]
    manifest = {
        "format": FORMAT, "id": snapshot_id, "engine": store.engine, "created_at": created_at,
        "backend": backend.name, "source": backend.location(),
        "size_bytes": sum(f["size"] for f in files), "files": files,
        "schema_fingerprint": description["fingerprint"], "schema": description["schema"],
        "tables": description["tables"],
        "row_counts": dict((t, info["rows"]) for t, info in description["tables"].items()),
        "reason": reason, "pinned": bool(pinned), "encryption_key_fingerprint": key_fingerprint,
    }
    reads = brain_reads(description)
    if reads:
        manifest["brain_reads"] = reads
    manifest.update(metadata)
    manifest["duration_seconds"] = round(now() - began, 3)
    return manifest
