# -*- coding: utf-8 -*-
# Copyright: (c) 2026, engine_ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The snapshot store on the host: layout, ids, manifests with checksums, listing and retention.

    <root>/<engine>/<id>/manifest.json        one schema for every backend
    <root>/<engine>/<id>/manifest.json.sha256 checksum of the manifest itself
    <root>/<engine>/<id>/<files>              the backend's files, each with its sha256 in the manifest
    <root>/<engine>/<id>/exports/<time>/      rows of a bad window exported before a restore
    <root>/<engine>/.partial-<id>/            a snapshot being written; never listed
    <root>/<engine>/ROLLBACK_TARGET           id of the snapshot the next rollback restores

Directories are 0700 and files 0600: a brain holds users' memories.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import json
import os
import re
import shutil
from contextlib import contextmanager
from datetime import datetime

from ansible_collections.engine_ops.lifecycle.plugins.module_utils._state.files import ensure_dir, fsync_path, write_atomic
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._errors import EngineOpsError

MANIFEST = "manifest.json"
MANIFEST_SUM = MANIFEST + ".sha256"
TARGET_MARKER = "ROLLBACK_TARGET"
FORMAT = 1
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class StoreError(EngineOpsError):
    """A store problem; the message names it."""


def check_name(kind, value):
    """Ids and engine names become path components: refuse anything that could leave the store."""
    if not isinstance(value, str) or not SAFE_NAME.match(value) or ".." in value:
        raise StoreError("%s %r is not a valid name (letters, digits, '.', '_', '-'; no path parts)" % (kind, value))
    return value


def check_relpath(value):
    """A file inside a snapshot: one or more safe names joined by '/'."""
    for part in (value or "").split("/"):
        check_name("file name", part)
    return value


def new_id(now=None):
    moment = now or datetime.utcnow()
    return moment.strftime("%Y%m%dT%H%M%S") + ".%06dZ" % moment.microsecond


def sha256_file(path, chunk=1 << 20):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while True:
            block = handle.read(chunk)
            if not block:
                break
            digest.update(block)
    return digest.hexdigest()


def key_fingerprint(secret):
    """Identity of an encryption key, never the key: sha256 over a fixed prefix and the key."""
    if not secret:
        return None
    return "sha256:" + hashlib.sha256(b"engine_ops key identity:" + secret.encode("utf-8")).hexdigest()[:32]


class SnapshotStore:
    def __init__(self, root, engine):
        self.root = root
        self.engine = check_name("engine name", engine)
        self.base = os.path.join(root, self.engine)

    def path(self, snapshot_id):
        return os.path.join(self.base, check_name("snapshot id", snapshot_id))

    def ensure(self):
        ensure_dir(self.root)  # Engines of one host snapshot in parallel into one store
        if os.path.islink(self.base):
            self.refuse_links(self.base)
        ensure_dir(self.base)
        os.chmod(self.base, 0o700)

    def refuse_links(self, directory):
        """The store never follows a symbolic link out of itself: not for the Engine's folder, a snapshot, or a file in it."""
        found = [self.base] if os.path.islink(self.base) else links_in(directory)
        if found:
            raise StoreError("%s is a symbolic link (to %s); the snapshot store never follows links out of itself"
                             % (found[0], os.readlink(found[0])))

    def partial(self, snapshot_id):
        self.ensure()
        path = os.path.join(self.base, ".partial-" + check_name("snapshot id", snapshot_id))
        if os.path.exists(path):
            shutil.rmtree(path)
        os.makedirs(path, 0o700)
        return path

    def discard_partials(self):
        if os.path.isdir(self.base):
            for name in os.listdir(self.base):
                if name.startswith(".partial-"):
                    shutil.rmtree(os.path.join(self.base, name), ignore_errors=True)

    def commit(self, partial_dir, manifest=None, snapshot_id=None):
        """Move a filled partial snapshot into place: its manifest written with its checksum (or, with none given,
        the one already in it checked: snapshot `snapshot_id` of this Engine), then one rename, so a snapshot is
        either whole in the store or not there."""
        if manifest is not None:
            write_manifest(partial_dir, manifest)
        else:
            manifest = read_manifest(partial_dir, self.engine, expected_id=snapshot_id)
        final = self.path(manifest["id"])
        if os.path.exists(final):
            raise StoreError("snapshot %s already exists" % manifest["id"])
        os.rename(partial_dir, final)
        fsync_path(self.base)
        return final

    @contextmanager
    def entering(self, snapshot_id, name=None):
        """The one way into the store (a snapshot taken, adopted, imported, fetched from S3, or a cloud snapshot's
        manifest): a fresh partial directory to fill; when the block ends the snapshot is committed with the
        manifest set on the entry (or the one written into the directory), and on any error the partial directory
        is removed, so nothing half-made ever looks like a snapshot.

            with store.entering(snapshot_id) as entry:
                ...write files into entry.path...
                entry.manifest = manifest
        """
        entry = StoreEntry(self.partial(name or snapshot_id))
        try:
            yield entry
            entry.final = self.commit(entry.path, entry.manifest, snapshot_id)
        except BaseException:
            shutil.rmtree(entry.path, ignore_errors=True)
            raise

    def ids(self):
        if not os.path.isdir(self.base):
            return []
        return sorted(name for name in os.listdir(self.base)
                      if SAFE_NAME.match(name) and os.path.isfile(os.path.join(self.base, name, MANIFEST)))

    def load(self, snapshot_id, verify_files=False):
        """Read a manifest, checking its own checksum (and the files' when asked); raise StoreError."""
        directory = self.path(snapshot_id)
        if not os.path.isfile(os.path.join(directory, MANIFEST)):
            raise StoreError("snapshot %s of engine %s does not exist in %s" % (snapshot_id, self.engine, self.base))
        self.refuse_links(directory)
        return read_manifest(directory, self.engine, verify_files)

    def list(self):
        """Manifests, oldest first, each with `valid` and `problem`; never raises for one bad snapshot."""
        out = []
        for snapshot_id in self.ids():
            try:
                manifest = self.load(snapshot_id)
                manifest["valid"], manifest["problem"] = True, None
            except StoreError as exc:
                manifest = {"id": snapshot_id, "valid": False, "problem": str(exc)}
            out.append(manifest)
        return out

    def rollback_target(self):
        try:
            with open(os.path.join(self.base, TARGET_MARKER)) as handle:
                return handle.read().strip() or None
        except (IOError, OSError):
            return None

    def set_rollback_target(self, snapshot_id):
        write_atomic(os.path.join(self.base, TARGET_MARKER), snapshot_id + "\n")

    def delete(self, snapshot_id):
        shutil.rmtree(self.path(snapshot_id))
        if self.rollback_target() == snapshot_id:
            os.unlink(os.path.join(self.base, TARGET_MARKER))


class StoreEntry:
    """A snapshot on its way into the store (SnapshotStore.entering): where to write, and its manifest."""

    def __init__(self, path):
        self.path, self.manifest, self.final = path, None, None


def links_in(directory):
    """Symbolic links at or under `directory` (os.walk lists links to folders without entering them)."""
    if os.path.islink(directory):
        return [directory]
    found = []
    for root, dirs, files in os.walk(directory):
        found.extend(os.path.join(root, n) for n in dirs + files if os.path.islink(os.path.join(root, n)))
    return found


def write_manifest(directory, manifest):
    data = json.dumps(manifest, indent=2, sort_keys=True).encode("utf-8")
    for name, content in ((MANIFEST, data), (MANIFEST_SUM, (hashlib.sha256(data).hexdigest() + "\n").encode())):
        path = os.path.join(directory, name)
        with open(path, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(path, 0o600)


def read_manifest(directory, engine=None, verify_files=False, expected_id=None):
    """The manifest of the snapshot in `directory` (named by its id, or `expected_id` when it is not yet)."""
    path = os.path.join(directory, MANIFEST)
    with open(path, "rb") as handle:
        data = handle.read()
    try:
        with open(os.path.join(directory, MANIFEST_SUM)) as handle:
            expected = handle.read().strip()
    except (IOError, OSError):
        raise StoreError("snapshot %s has no manifest checksum" % os.path.basename(directory))
    if hashlib.sha256(data).hexdigest() != expected:
        raise StoreError("the manifest of snapshot %s does not match its checksum (corrupted)"
                         % os.path.basename(directory))
    try:
        manifest = json.loads(data.decode("utf-8"))
    except ValueError:
        raise StoreError("the manifest of snapshot %s is not valid JSON" % os.path.basename(directory))
    if manifest.get("format") != FORMAT or manifest.get("id") != (expected_id or os.path.basename(directory)):
        raise StoreError("the manifest of snapshot %s has an unknown format or a foreign id" % os.path.basename(directory))
    if engine is not None and manifest.get("engine") != engine:
        raise StoreError("snapshot %s belongs to engine %r, not %r" % (manifest["id"], manifest.get("engine"), engine))
    if verify_files:
        for entry in manifest.get("files") or []:
            if not os.path.isfile(os.path.join(directory, check_relpath(entry["name"]))):
                raise StoreError("snapshot %s is missing its file %s" % (manifest["id"], entry["name"]))
            if not file_matches(directory, entry):
                raise StoreError("checksum of %s in snapshot %s does not match its manifest (corrupted)"
                                 % (entry["name"], manifest["id"]))
    return manifest


def file_matches(directory, entry):
    """Whether the file of a manifest entry is in `directory` with the entry's size and sha256."""
    path = os.path.join(directory, check_relpath(entry["name"]))
    return os.path.isfile(path) and os.path.getsize(path) == entry["size"] and sha256_file(path) == entry["sha256"]


def entry_path(directory, entry):
    """Where the file of a manifest entry goes in `directory` (a snapshot being written); its folders are made."""
    path = os.path.join(directory, check_relpath(entry["name"]))
    ensure_dir(os.path.dirname(path))
    return path


def file_entries(directory, names):
    return [{"name": name, "size": os.path.getsize(os.path.join(directory, name)),
             "sha256": sha256_file(os.path.join(directory, name))} for name in names]


def retention_victims(manifests, keep, target_id=None):
    """Snapshots retention removes: all but the newest `keep` unpinned ones (manifests oldest first).

    Pinned snapshots and the rollback target are kept in addition and never removed.
    """
    removable = [m for m in manifests if m.get("valid", True) and not m.get("pinned") and m["id"] != target_id]
    return [m["id"] for m in removable[:max(0, len(removable) - keep)]]


def schema_diff(live, snapshot):
    """Tables and columns that differ between two {table: {column: type}} schemas."""
    diff = {"tables_only_live": sorted(set(live) - set(snapshot)),
            "tables_only_snapshot": sorted(set(snapshot) - set(live)), "columns": {}}
    for table in sorted(set(live) & set(snapshot)):
        cols_live, cols_snap = live[table], snapshot[table]
        changes = {}
        only_live = sorted(set(cols_live) - set(cols_snap))
        only_snap = sorted(set(cols_snap) - set(cols_live))
        retyped = sorted(c for c in set(cols_live) & set(cols_snap) if cols_live[c] != cols_snap[c])
        if only_live:
            changes["only_live"] = only_live
        if only_snap:
            changes["only_snapshot"] = only_snap
        if retyped:
            changes["type_changed"] = retyped
        if changes:
            diff["columns"][table] = changes
    return diff


# Baselines (engine_baseline, rollback_decision) live with the snapshot they were taken with, or on their own.
BASELINE = "baseline.json"
BASELINES_DIR = "baselines"


def baseline_path(root, engine, snapshot_id=None, stamp=None):
    store = SnapshotStore(root, engine)
    if snapshot_id:
        return os.path.join(store.path(snapshot_id), BASELINE)
    return os.path.join(store.base, BASELINES_DIR, "%s.json" % check_name("baseline time", stamp or new_id()))


def find_baseline(root, engine):
    """The rollback target's baseline, else the newest stand-alone one, else None."""
    store = SnapshotStore(root, engine)
    target = store.rollback_target()
    if target and os.path.isfile(os.path.join(store.path(target), BASELINE)):
        return os.path.join(store.path(target), BASELINE)
    directory = os.path.join(store.base, BASELINES_DIR)
    if os.path.isdir(directory):
        names = sorted(n for n in os.listdir(directory) if n.endswith(".json") and SAFE_NAME.match(n))
        if names:
            return os.path.join(directory, names[-1])
    return None
