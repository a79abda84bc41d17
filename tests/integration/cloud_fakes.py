"""Local stand-ins for the clouds: moto (EC2, S3, IAM) with a block-device data plane, and a Compute REST server.

Neither moto nor a REST fake moves bytes, so both get the same data plane: every volume (disk) is an ext4
image file; a snapshot copies the image at the moment the API call arrives (a point in time, as the real
services promise); a volume made from a snapshot copies it back; attaching a volume sets up a loop device
and a link to it in `dev_dir` (how the module finds it: device_path = "<dev_dir>/{volume_id}" or
"<dev_dir>/google-{device}"); detaching removes both. Only 127.0.0.1 is ever used.
"""

import http.client
import json
import os
import re
import shutil
import subprocess
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


def _run(*argv):
    return subprocess.run(argv, check=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE).stdout.decode().strip()


class BlockStore:
    """Volume and snapshot images on disk; attached volumes as loop devices linked from `dev_dir`."""

    def __init__(self, root):
        self.root = root
        self.images, self.snaps, self.dev_dir = (os.path.join(root, d) for d in ("volumes", "snapshots", "dev"))
        for directory in (self.images, self.snaps, self.dev_dir):
            os.makedirs(directory, exist_ok=True)
        self.loops = {}  # volume -> (loop device, link)
        self.lock = threading.Lock()

    def image(self, volume):
        return os.path.join(self.images, volume + ".img")

    def create(self, volume, size_mb=64):
        with open(self.image(volume), "wb") as handle:
            handle.truncate(size_mb * 1024 * 1024)
        _run("mkfs.ext4", "-q", "-F", self.image(volume))

    def snapshot(self, volume, snapshot):
        """Copy a volume's bytes now (the loop device writes through the page cache the copy reads)."""
        if os.path.exists(self.image(volume)):
            _run("cp", "--sparse=always", self.image(volume), os.path.join(self.snaps, snapshot + ".img"))

    def from_snapshot(self, snapshot, volume):
        source = os.path.join(self.snaps, snapshot + ".img")
        if os.path.exists(source):
            _run("cp", "--sparse=always", source, self.image(volume))

    def attach(self, volume, link):
        with self.lock:
            loop = _run("losetup", "--find", "--show", self.image(volume))
            path = os.path.join(self.dev_dir, link)
            if os.path.lexists(path):
                os.unlink(path)
            os.symlink(loop, path)
            self.loops[volume] = (loop, path)
            return loop

    def detach(self, volume):
        with self.lock:
            loop, path = self.loops.pop(volume, (None, None))
            if path and os.path.lexists(path):
                os.unlink(path)
            if loop:
                subprocess.run(["losetup", "-d", loop], check=False)

    def close(self):
        for volume in list(self.loops):
            self.detach(volume)
        shutil.rmtree(self.root, ignore_errors=True)


class _Server:
    def __init__(self, handler):
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.url = "http://127.0.0.1:%d" % self.httpd.server_port
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class Ec2DataPlane(_Server):
    """An HTTP hop in front of moto: forwards every request unchanged, and moves bytes for EC2 volume calls.

    `snapshot_seconds` keeps new snapshots `pending` (with rising progress) for that long, as EBS does;
    `fates[snapshot_id or "next"]` = "error" ends a snapshot in the error state, "stuck" keeps it pending.
    """

    def __init__(self, moto_url, blocks, snapshot_seconds=1.0):
        self.moto = urlparse(moto_url)
        self.blocks = blocks
        self.snapshot_seconds = snapshot_seconds
        self.fates, self.born, self.calls = {}, {}, []
        plane = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                plane.handle(self)

            do_GET = do_PUT = do_DELETE = do_HEAD = do_POST

            def log_message(self, *args):
                pass

        super().__init__(Handler)

    def handle(self, req):
        body = req.rfile.read(int(req.headers.get("Content-Length") or 0))
        params = {}
        if "x-www-form-urlencoded" in (req.headers.get("Content-Type") or ""):
            params = dict((k, v[0]) for k, v in parse_qs(body.decode()).items())
        action = params.get("Action")
        dry = params.get("DryRun") == "true"
        pending_image = None
        if action == "CreateSnapshot" and not dry:
            pending_image = "pending-" + uuid.uuid4().hex
            self.blocks.snapshot(params["VolumeId"], pending_image)  # the point in time: when the call arrives
        status, headers, data = self._forward(req, body)
        if action:
            self.calls.append(action + (" (dry run)" if dry else ""))
        if status == 200 and not dry:
            data = self._after(action, params, data, pending_image)
        req.send_response(status)
        for key, value in headers:
            if key.lower() not in ("content-length", "transfer-encoding", "connection", "server", "date"):
                req.send_header(key, value)
        req.send_header("Content-Length", str(len(data)))
        req.end_headers()
        if req.command != "HEAD":
            req.wfile.write(data)

    def _forward(self, req, body):
        conn = http.client.HTTPConnection(self.moto.hostname, self.moto.port, timeout=60)
        # The Host header stays as the client signed it (SigV4 covers it; moto checks signatures under IAM).
        headers = dict((k, v) for k, v in req.headers.items() if k.lower() != "connection")
        conn.request(req.command, req.path, body=body or None, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        return resp.status, resp.getheaders(), data

    def _after(self, action, params, data, pending_image):
        text = data.decode("utf-8", "replace")
        if action == "CreateSnapshot":
            snapshot = re.search(r"<snapshotId>([^<]+)</snapshotId>", text).group(1)
            if os.path.exists(os.path.join(self.blocks.snaps, pending_image + ".img")):
                os.rename(os.path.join(self.blocks.snaps, pending_image + ".img"),
                          os.path.join(self.blocks.snaps, snapshot + ".img"))
            self.born[snapshot] = (time.monotonic(), self.fates.pop("next", None))
        elif action == "CreateVolume" and params.get("SnapshotId"):
            volume = re.search(r"<volumeId>([^<]+)</volumeId>", text).group(1)
            self.blocks.from_snapshot(params["SnapshotId"], volume)
        elif action == "AttachVolume":
            self.blocks.attach(params["VolumeId"], params["VolumeId"])
        elif action == "DetachVolume":
            self.blocks.detach(params["VolumeId"])
        elif action == "DescribeSnapshots":
            return self._progress(data)
        return data

    def _progress(self, data):
        root = ET.fromstring(data)
        namespace = root.tag[:root.tag.index("}") + 1] if root.tag.startswith("{") else ""
        ET.register_namespace("", namespace.strip("{}"))
        for item in root.iter(namespace + "item"):
            sid, status = item.find(namespace + "snapshotId"), item.find(namespace + "status")
            if sid is None or status is None or sid.text not in self.born:
                continue
            born, fate = self.born[sid.text]
            fate = self.fates.get(sid.text, fate)
            done = (time.monotonic() - born) / self.snapshot_seconds if self.snapshot_seconds else 1.0
            progress = item.find(namespace + "progress")
            if fate == "stuck" or done < 1.0:
                status.text = "pending"
                if progress is not None:
                    progress.text = "12%" if fate == "stuck" else "%d%%" % min(99, int(done * 100))
            elif fate == "error" and done >= 1.0:
                status.text = "error"
        return ET.tostring(root, encoding="utf-8", xml_declaration=True)


class FakeCompute(_Server):
    """The Compute REST calls the gcp_disk backend uses, with operations that progress in time.

    Disks and snapshots live in dicts; operations are RUNNING until `op_seconds` after they start, and a
    `wait` returns after at most `wait_seconds` whether or not the operation is done (GCP's returns after about two
    minutes). A snapshot is CREATING until its point in time, half-way through its operation: only then are the
    disk's bytes copied (after createSnapshot has returned, as GCP does), `on_cut(disk)` being called first; then
    UPLOADING, then READY. What GCP refuses is refused: attaching a disk that is attached, deleting an attached
    disk (400 resourceInUseByAnotherResource), and testIamPermissions asked for permissions of another resource
    type (400). `deny` holds permission names refused (403, and absent from testIamPermissions);
    `fates[snapshot name or "next"]` = "error" ends a snapshot FAILED, "stuck" never finishes it.
    """

    def __init__(self, blocks, project="proj", zone="zone-a", op_seconds=0.6, wait_seconds=1.0):
        self.blocks, self.project, self.zone, self.op_seconds = blocks, project, zone, op_seconds
        self.wait_seconds = wait_seconds
        self.disks, self.snapshots, self.instances, self.ops = {}, {}, {}, {}
        self.deny, self.fates, self.calls = set(), {}, []
        self.on_cut, self.timers = None, []
        self.lock = threading.RLock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                fake.dispatch(self)

            do_POST = do_DELETE = do_GET

            def log_message(self, *args):
                pass

        super().__init__(Handler)

    # --- set-up helpers (what a real project would already have) ----------------------------------------
    def base(self, zone=None):
        return "%s/compute/v1/projects/%s/zones/%s" % (self.url, self.project, zone or self.zone)

    def add_instance(self, name, zone=None):
        self.instances[name] = {"name": name, "zone": self.base(zone), "status": "RUNNING", "disks": []}

    def add_disk(self, name, size_mb=64, zone=None, labels=None):
        self.blocks.create(name, size_mb)
        self.disks[name] = {"name": name, "zone": self.base(zone), "sizeGb": "10", "status": "READY",
                            "users": [], "labels": labels or {}, "labelFingerprint": uuid.uuid4().hex[:12],
                            "selfLink": "%s/disks/%s" % (self.base(zone), name)}

    def attach_now(self, instance, disk, device):
        self._attach(instance, disk, device)

    # --- request handling ---------------------------------------------------------------------------------
    def dispatch(self, req):
        length = int(req.headers.get("Content-Length") or 0)
        body = json.loads(req.rfile.read(length) or b"{}") if length else {}
        url = urlparse(req.path)
        query = dict((k, v[0]) for k, v in parse_qs(url.query).items())
        path = url.path.split("/compute/v1/projects/", 1)[-1].split("/")
        with self.lock:
            self.calls.append("%s %s" % (req.command, url.path))
            try:
                status, doc = self.route(req.command, path[1:], query, body)
            except KeyError as exc:
                status, doc = self.error(404, "notFound", "The resource %s was not found" % exc, "not found")
        data = json.dumps(doc).encode()
        req.send_response(status)
        req.send_header("Content-Type", "application/json")
        req.send_header("Content-Length", str(len(data)))
        req.end_headers()
        req.wfile.write(data)

    def close(self):
        for timer in self.timers:
            timer.cancel()
        super().close()

    @staticmethod
    def error(code, reason, message, detail=None):
        """(status, body) of a Compute API error: its message, and one error of `reason` (with `detail`)."""
        return code, {"error": {"code": code, "message": message,
                                "errors": [{"reason": reason, "message": detail or message}]}}

    def in_use(self, disk):
        return self.error(400, "resourceInUseByAnotherResource", "The disk resource '%s' is already being used by '%s'"
                          % (disk["selfLink"], disk["users"][0]))

    def test_permissions(self, resource_type, body):
        """testIamPermissions answers only for the permissions of the resource it is asked on."""
        asked = body.get("permissions") or []
        foreign = [p for p in asked if p.split(".")[1:2] != [resource_type]]
        if foreign:
            return self.error(400, "invalid", "Permission %s is not valid for a %s resource" % (foreign[0], resource_type))
        return 200, {"permissions": [p for p in asked if p not in self.deny]}

    def forbidden(self, permission):
        return self.error(403, "forbidden", "Required '%s' permission for 'projects/%s'" % (permission, self.project),
                          "Required '%s' permission" % permission)

    def route(self, method, parts, query, body):  # pylint: disable=too-many-return-statements
        if parts[:1] == ["global"]:
            kind, name, verb = parts[1], (parts[2] if len(parts) > 2 else None), (parts[3] if len(parts) > 3 else None)
            if kind == "snapshots" and verb == "testIamPermissions":
                if name not in self.snapshots:
                    raise KeyError("snapshot %s" % name)
                return self.test_permissions("snapshots", body)
            if kind == "snapshots" and name is None:
                return 200, {"items": [self._snapshot(s) for s in self.snapshots.values() if self._match(s, query)]}
            if kind == "snapshots" and method == "GET":
                return 200, self._snapshot(self.snapshots[name])
            if kind == "snapshots" and method == "DELETE":
                self.snapshots.pop(name)
                return 200, self._op("delete", name, zone=None)
            if kind == "operations" and verb == "wait":
                return 200, self._wait(name)
            if kind == "operations":
                return 200, self._op_doc(self.ops[name])
        zone, kind = parts[1], parts[2]
        name, verb = (parts[3] if len(parts) > 3 else None), (parts[4] if len(parts) > 4 else None)
        if kind == "operations":
            return 200, (self._wait(name) if verb == "wait" else self._op_doc(self.ops[name]))
        if kind == "instances":
            inst = self.instances[name]
            if verb is None:
                return 200, dict(inst, zone=self.base(zone))
            if verb == "testIamPermissions":
                return self.test_permissions("instances", body)
            permission = "compute.instances.%s" % verb
            if permission in self.deny:
                return self.forbidden(permission)
            if verb == "detachDisk":
                return 200, self._op("detachDisk", name, run=lambda: self._detach(name, query["deviceName"]))
            if verb == "attachDisk":
                disk = body["source"].rstrip("/").rsplit("/", 1)[-1]
                if self.disks[disk]["users"]:
                    return self.in_use(self.disks[disk])
                if self.fates.pop("attach", None) == "error":  # the attach operation fails (once)
                    return 200, self._op("attachDisk", name, run=self._refuse_attach)
                return 200, self._op("attachDisk", name, run=lambda: self._attach(name, disk, body["deviceName"]))
        if kind == "disks":
            if name is None and method == "POST":
                if "compute.disks.create" in self.deny:
                    return self.forbidden("compute.disks.create")
                return 200, self._insert_disk(body, zone)
            disk = self.disks[name]
            if verb is None and method == "GET":
                return 200, disk
            if verb == "createSnapshot":
                if "compute.disks.createSnapshot" in self.deny:
                    return self.forbidden("compute.disks.createSnapshot")
                return 200, self._create_snapshot(disk, body)
            if verb == "setLabels":
                if body.get("labelFingerprint") != disk["labelFingerprint"]:
                    return self.error(412, "conditionNotMet",
                                      "Labels fingerprint either invalid or resource labels have changed")
                disk.update(labels=body.get("labels") or {}, labelFingerprint=uuid.uuid4().hex[:12])
                return 200, self._op("setLabels", name)
            if verb == "testIamPermissions":
                return self.test_permissions("disks", body)
            if method == "DELETE":
                if disk["users"]:
                    return self.in_use(disk)
                self.disks.pop(name)
                return 200, self._op("delete", name)
        return self.error(400, "unsupported", "unsupported call %s %s" % (method, "/".join(parts)))

    # --- resources ------------------------------------------------------------------------------------------
    def _match(self, snap, query):
        for key, value in re.findall(r'labels\.([\w-]+)\s*=\s*"([^"]*)"', query.get("filter", "")):
            if (snap.get("labels") or {}).get(key) != value:
                return False
        return True

    def _snapshot(self, snap):
        op = self.ops[snap["op"]]
        elapsed = time.monotonic() - op["started"]
        fate = snap["fate"]
        if not snap["cut"]:
            status = "CREATING"
        elif fate == "stuck":
            status = "UPLOADING"
        elif elapsed < self.op_seconds:
            status = "UPLOADING"
        else:
            status = "FAILED" if fate == "error" else "READY"
        doc = dict((k, v) for k, v in snap.items() if k not in ("op", "fate", "cut"))
        doc["status"] = status
        return doc

    def _create_snapshot(self, disk, body):
        name = body["name"]
        fate = self.fates.pop(name, None) or self.fates.pop("next", None)
        op = self._op("createSnapshot", disk["name"], fate=fate)
        snap = {"name": name, "labels": body.get("labels") or {}, "description": body.get("description"),
                "sourceDisk": disk["selfLink"], "diskSizeGb": disk["sizeGb"], "op": op["name"], "fate": fate,
                "cut": False, "selfLink": "%s/compute/v1/projects/%s/global/snapshots/%s" % (self.url, self.project, name)}
        self.snapshots[name] = snap
        op["snapshot"] = snap

        def cut():  # the point in time, after the call has returned: the bytes are read now
            if self.on_cut is not None:
                self.on_cut(disk["name"])
            self.blocks.snapshot(disk["name"], name)
            with self.lock:
                snap["cut"] = True
        timer = threading.Timer(self.op_seconds / 2, cut)
        timer.daemon = True
        self.timers.append(timer)
        timer.start()
        return op

    def _insert_disk(self, body, zone):
        name = body["name"]
        snapshot = body["sourceSnapshot"].rstrip("/").rsplit("/", 1)[-1]
        if snapshot not in self.snapshots:
            raise KeyError("snapshot %s" % snapshot)
        self.blocks.from_snapshot(snapshot, name)
        self.disks[name] = {"name": name, "zone": self.base(zone), "sizeGb": self.snapshots[snapshot]["diskSizeGb"],
                            "status": "READY", "users": [], "labels": body.get("labels") or {},
                            "labelFingerprint": uuid.uuid4().hex[:12], "sourceSnapshot": body["sourceSnapshot"],
                            "selfLink": "%s/disks/%s" % (self.base(zone), name)}
        return self._op("insert", name)

    def _attach(self, instance, disk, device):
        inst = self.instances[instance]
        if any(d["deviceName"] == device for d in inst["disks"]):
            raise RuntimeError("device %s is in use" % device)
        inst["disks"].append({"deviceName": device, "source": self.disks[disk]["selfLink"], "boot": False})
        self.disks[disk]["users"] = ["%s/instances/%s" % (self.base(), instance)]
        self.blocks.attach(disk, "google-" + device)

    @staticmethod
    def _refuse_attach():
        raise RuntimeError("the disk could not be attached (injected fault)")

    def _detach(self, instance, device):
        inst = self.instances[instance]
        found = [d for d in inst["disks"] if d["deviceName"] == device]
        if not found:
            raise RuntimeError("no disk at %s" % device)
        inst["disks"].remove(found[0])
        disk = found[0]["source"].rstrip("/").rsplit("/", 1)[-1]
        self.disks[disk]["users"] = []
        self.blocks.detach(disk)

    # --- operations -----------------------------------------------------------------------------------------
    def _op(self, kind, target, run=None, fate=None, zone="z"):
        name = "operation-%s" % uuid.uuid4().hex[:12]
        self.ops[name] = {"name": name, "kind": kind, "target": target, "started": time.monotonic(), "run": run,
                          "fate": fate, "error": None, "zone": zone}
        return self._op_doc(self.ops[name])

    def _op_doc(self, op):
        elapsed = time.monotonic() - op["started"]
        done = op["fate"] != "stuck" and elapsed >= self.op_seconds and op.get("snapshot", {}).get("cut", True)
        if done and op["run"] is not None:
            run, op["run"] = op["run"], None
            try:
                run()
            except RuntimeError as exc:
                op["error"] = str(exc)
        doc = {"name": op["name"], "operationType": op["kind"], "targetLink": op["target"],
               "status": "DONE" if done else "RUNNING", "progress": 100 if done else int(100 * elapsed / self.op_seconds)}
        if op["zone"]:
            doc["zone"] = self.base()
        if done and (op["error"] or op["fate"] == "error"):
            doc["error"] = {"errors": [{"code": "RESOURCE_OPERATION_RATE_EXCEEDED" if op["error"] else "INTERNAL_ERROR",
                                        "message": op["error"] or "snapshot creation failed"}]}
        return doc

    def _wait(self, name):
        """Like the real wait: returns when DONE or after a while (`wait_seconds` instead of about 2 min)."""
        op = self.ops[name]
        until = time.monotonic() + self.wait_seconds
        while True:
            doc = self._op_doc(op)
            if doc["status"] == "DONE" or time.monotonic() >= until:
                return doc
            self.lock.release()
            try:
                time.sleep(0.05)
            finally:
                self.lock.acquire()
