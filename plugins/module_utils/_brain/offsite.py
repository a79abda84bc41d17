# -*- coding: utf-8 -*-
# Copyright: (c) 2026, engine_ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The off-host copy of file and dump snapshots in S3: upload after a snapshot, fetch before a restore.

    s3://<bucket>/<prefix>/<engine>/<id>/<file>            every file of the snapshot
    s3://<bucket>/<prefix>/<engine>/<id>/manifest.json     uploaded last: its presence marks a complete copy

Every object is written with server-side encryption and a SHA-256 checksum; large files go up in parts.
A download is written beside the store, checked against the manifest's sha256 of every file (and the
manifest against its own checksum), and only then moved into the store.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import time

from ansible_collections.engine_ops.lifecycle.plugins.module_utils._errors import EngineOpsError
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain.store import (
    MANIFEST, MANIFEST_SUM, StoreError, check_name, check_relpath, entry_path, file_matches, read_manifest, sha256_file)

OFFSITE_OPTIONS = dict(
    s3_bucket=dict(type="str"),
    s3_prefix=dict(type="str", default="engine_ops"),
    s3_sse=dict(type="str", choices=["AES256", "aws:kms"], default="AES256"),
    s3_kms_key_id=dict(type="str"),
    s3_multipart_mib=dict(type="int", default=64),
)
AWS_OPTIONS = dict(
    aws_region=dict(type="str"),
    aws_endpoint_url=dict(type="str"),
    aws_access_key=dict(type="str", no_log=True),
    aws_secret_key=dict(type="str", no_log=True),
    aws_session_token=dict(type="str", no_log=True),
    aws_profile=dict(type="str"),
)


class OffsiteError(EngineOpsError):
    """An off-host store problem; the message names the object and the cause."""


class S3Store:
    def __init__(self, params, engine, client=None):
        self.bucket = params["s3_bucket"]
        self.prefix = (params.get("s3_prefix") or "").strip("/")
        self.engine = check_name("engine name", engine)
        self.sse = params.get("s3_sse") or "AES256"
        self.kms_key = params.get("s3_kms_key_id")
        self.part_bytes = max(5, int(params.get("s3_multipart_mib") or 64)) * 1024 * 1024
        if client is None:
            from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain.ebs import aws_client, HAS_BOTO3
            if not HAS_BOTO3:
                raise OffsiteError("the off-host store needs boto3 (pip install boto3) on the Engine host")
            try:
                client = aws_client(params, "s3")
            except Exception as exc:  # pylint: disable=broad-except
                raise OffsiteError("cannot build the S3 client: %s" % exc)
        self.client = client

    def location(self, snapshot_id=None):
        base = "s3://%s/%s" % (self.bucket, self.key(snapshot_id or ""))
        return base.rstrip("/")

    def key(self, snapshot_id, name=None):
        parts = [p for p in (self.prefix, self.engine, snapshot_id, name) if p]
        return "/".join(parts)

    def _call(self, what, func, **kwargs):
        from botocore.exceptions import BotoCoreError, ClientError
        try:
            return func(**kwargs)
        except ClientError as exc:
            error = exc.response.get("Error") or {}
            raise OffsiteError("%s: %s: %s" % (what, error.get("Code", "?"), error.get("Message", exc)))
        except (BotoCoreError, OSError) as exc:
            raise OffsiteError("%s: %s" % (what, exc))

    def _transfer(self):
        from boto3.s3.transfer import TransferConfig
        return TransferConfig(multipart_threshold=self.part_bytes, multipart_chunksize=self.part_bytes,
                              max_concurrency=4, use_threads=True)

    def _extra(self, sha256_hex):
        extra = {"ServerSideEncryption": self.sse, "Metadata": {"sha256": sha256_hex}, "ChecksumAlgorithm": "SHA256"}
        if self.sse == "aws:kms" and self.kms_key:
            extra["SSEKMSKeyId"] = self.kms_key
        return extra

    # --- upload ------------------------------------------------------------------------------------------
    def upload(self, directory, manifest):
        """Copy a committed snapshot; returns {location, objects, bytes, seconds, multipart}."""
        began = time.monotonic()
        names = [f["name"] for f in manifest.get("files") or []]
        sums = dict((f["name"], f["sha256"]) for f in manifest.get("files") or [])
        total, multipart = 0, []
        for name in names + [MANIFEST_SUM, MANIFEST]:  # the manifest last: it marks the copy complete
            path = os.path.join(directory, check_relpath(name))
            digest = sums.get(name) or sha256_file(path)
            size = os.path.getsize(path)
            key = self.key(manifest["id"], name)
            self._call("uploading %s to %s" % (name, self.location(manifest["id"])), self.client.upload_file,
                       Filename=path, Bucket=self.bucket, Key=key, ExtraArgs=self._extra(digest), Config=self._transfer())
            head = self._call("checking %s" % key, self.client.head_object, Bucket=self.bucket, Key=key)
            if head.get("ContentLength") != size:
                raise OffsiteError("the uploaded %s is %s bytes, the local file %d" % (key, head.get("ContentLength"), size))
            if head.get("ServerSideEncryption") != self.sse:
                raise OffsiteError("the uploaded %s is not stored with server-side encryption %s" % (key, self.sse))
            if size >= self.part_bytes:
                multipart.append(name)
            total += size
        return {"location": self.location(manifest["id"]), "objects": len(names) + 2, "bytes": total,
                "multipart": multipart, "encryption": self.sse, "seconds": round(time.monotonic() - began, 3)}

    # --- listing -----------------------------------------------------------------------------------------
    def ids(self):
        """Snapshot ids with a complete copy (their manifest uploaded)."""
        found = []
        paginator = self.client.get_paginator("list_objects_v2")
        prefix = self.key("") + "/"
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                for item in page.get("Contents") or []:
                    rest = item["Key"][len(prefix):]
                    snapshot_id, dummy, name = rest.partition("/")
                    if name == MANIFEST:
                        found.append(snapshot_id)
        except Exception as exc:  # pylint: disable=broad-except
            raise OffsiteError("listing %s: %s" % (self.location(), exc))
        return sorted(found)

    def has(self, snapshot_id):
        from botocore.exceptions import ClientError
        try:
            self.client.head_object(Bucket=self.bucket, Key=self.key(snapshot_id, MANIFEST))
            return True
        except ClientError as exc:
            if (exc.response.get("Error") or {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise OffsiteError("checking %s: %s" % (self.location(snapshot_id), exc))

    # --- download ----------------------------------------------------------------------------------------
    def fetch(self, store, snapshot_id):
        """Download a snapshot into the local store, verified; returns {location, bytes, seconds}."""
        check_name("snapshot id", snapshot_id)
        began = time.monotonic()
        if not self.has(snapshot_id):
            raise OffsiteError("snapshot %s of engine %s is neither in the local store nor in %s"
                               % (snapshot_id, self.engine, self.location()))
        total = 0
        try:
            with store.entering(snapshot_id, name="fetch-" + snapshot_id) as entering:
                partial = entering.path
                for name in (MANIFEST, MANIFEST_SUM):
                    self._get(snapshot_id, name, os.path.join(partial, name))
                try:
                    manifest = read_manifest(partial, self.engine, expected_id=snapshot_id)
                except StoreError as exc:
                    raise OffsiteError("the off-host manifest of %s: %s" % (snapshot_id, exc))
                for entry in manifest.get("files") or []:
                    path = entry_path(partial, entry)
                    self._get(snapshot_id, entry["name"], path)
                    if not file_matches(partial, entry):
                        raise OffsiteError("the downloaded %s of snapshot %s does not match the checksum in its "
                                           "manifest" % (entry["name"], snapshot_id))
                    os.chmod(path, 0o600)
                    total += entry["size"]
                # no manifest set: the downloaded one, checked, is committed as it is
        except StoreError as exc:
            raise OffsiteError("snapshot %s could not be put into the local store: %s" % (snapshot_id, exc))
        return {"location": self.location(snapshot_id), "bytes": total, "seconds": round(time.monotonic() - began, 3)}

    def _get(self, snapshot_id, name, path):
        key = self.key(snapshot_id, name)
        self._call("downloading %s" % key, self.client.download_file, Bucket=self.bucket, Key=key, Filename=path,
                   ExtraArgs={"ChecksumMode": "ENABLED"}, Config=self._transfer())
        os.chmod(path, 0o600)

    def delete(self, snapshot_id):
        keys = []
        prefix = self.key(snapshot_id) + "/"
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            keys.extend({"Key": item["Key"]} for item in page.get("Contents") or [])
        # The manifest first: a half-deleted copy must never look complete.
        keys.sort(key=lambda k: not k["Key"].endswith("/" + MANIFEST))
        for key in keys:
            self._call("deleting %s" % key["Key"], self.client.delete_object, Bucket=self.bucket, Key=key["Key"])
        return len(keys)
