"""Engines deployed from a private registry: pulls with credentials, and rollbacks to the exact build.

A real registry (Debian's docker-registry, htpasswd authentication) listens on 127.0.0.1; the test setup pushes
Engine builds to it. The playbooks pull with the credentials `docker login` wrote (a Docker client config under
the test's own directory, never ~/.docker) or with inventory variables; the upgrade records the exact build it
replaces (image ID and repository digest), and the rollback goes back to that build when the host no longer has
it and when the tag was moved in the registry since.
"""

import base64
import io
import json
import os
import secrets
import subprocess
import uuid

import docker
import pytest
import requests

from ansible_run import failed_messages, failures, run_module, run_playbook
from fleet import fleet, ledger
from services import free_port, wait_for

USER = "ops"


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    """A registry on its own 127.0.0.1 port with one user, and a Docker client config that logged in to it."""
    root = tmp_path_factory.mktemp("registry")
    password = secrets.token_hex(12)
    htpasswd = subprocess.run(["htpasswd", "-Bbn", USER, password], capture_output=True, text=True, check=True).stdout
    (root / "htpasswd").write_text(htpasswd)
    port = free_port()
    (root / "config.yml").write_text(
        "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n"
        "    enabled: true\nhttp:\n  addr: 127.0.0.1:%d\n  secret: %s\nauth:\n  htpasswd:\n    realm: engine-ops-test\n"
        "    path: %s\n" % (root / "data", port, secrets.token_hex(8), root / "htpasswd"))
    with open(str(root / "registry.log"), "w") as log:
        proc = subprocess.Popen(["docker-registry", "serve", str(root / "config.yml")], stdout=log,
                                stderr=subprocess.STDOUT)
    host = "127.0.0.1:%d" % port

    def answers():
        try:
            return requests.get("http://%s/v2/" % host, timeout=1).status_code == 401
        except requests.RequestException:
            return False

    try:
        wait_for(answers, 30, "the registry on %s" % host)
        logged_in = root / "docker-config"
        logged_in.mkdir()
        (logged_in / "config.json").write_text(json.dumps({"auths": {host: {
            "auth": base64.b64encode(("%s:%s" % (USER, password)).encode()).decode()}}}))
        empty = root / "no-login"
        empty.mkdir()
        yield {"host": host, "password": password, "config": str(logged_in), "no_login": str(empty)}
    finally:
        proc.terminate()
        proc.wait(timeout=30)


class Builds:
    """Engine builds made for one test (an extra label makes each its own image), pushed to its repository."""

    def __init__(self, client, registry, prefix):
        self.client, self.registry = client, registry
        self.repository = "%s/engine-%s" % (registry["host"], prefix)
        self.auth = {"username": USER, "password": registry["password"]}
        self.made = []

    def build(self, base, tag):
        """A build of engine:<base>, tagged <repository>:<tag> on this host; its image ID."""
        label = "%s-%s" % (tag, uuid.uuid4().hex[:8])
        dockerfile = io.BytesIO(("FROM engine:%s\nLABEL engine_ops.test.build=%s\n" % (base, label)).encode())
        image, dummy = self.client.images.build(fileobj=dockerfile, tag="%s:%s" % (self.repository, tag), rm=True)
        self.made.append(image.id)
        return image.id

    def push(self, tag):
        """Push <repository>:<tag>; its repository digest."""
        for line in self.client.api.push(self.repository, tag=tag, auth_config=self.auth, stream=True, decode=True):
            assert "error" not in line, line
        return self.digest_of(tag)

    def digest_of(self, tag):
        answer = requests.head("http://%s/v2/%s/manifests/%s" % (self.registry["host"], self.path, tag),
                               auth=(USER, self.registry["password"]), timeout=10, headers={
                                   "Accept": "application/vnd.docker.distribution.manifest.v2+json"})
        return answer.headers.get("Docker-Content-Digest") if answer.status_code == 200 else None

    @property
    def path(self):
        return self.repository.split("/", 1)[1]

    def delete_from_registry(self, digest):
        answer = requests.delete("http://%s/v2/%s/manifests/%s" % (self.registry["host"], self.path, digest),
                                 auth=(USER, self.registry["password"]), timeout=10)
        assert answer.status_code == 202, answer.text

    def remove_locally(self, ref):
        """Untag (and, with its last tag, delete) an image on this host; one already gone is fine."""
        try:
            self.client.images.remove(ref, force=True)
        except docker.errors.ImageNotFound:
            pass

    def present(self, image_id):
        try:
            self.client.images.get(image_id)
            return True
        except Exception:  # pylint: disable=broad-except
            return False

    def cleanup(self):
        for image_id in reversed(self.made):
            try:
                self.client.images.remove(image_id, force=True)
            except Exception:  # pylint: disable=broad-except
                pass


@pytest.fixture
def builds(docker_client, registry, prefix):
    made = Builds(docker_client, registry, prefix + uuid.uuid4().hex[:4])
    yield made
    made.cleanup()


def released(builds, engines, named, prefix, tmp_path):
    """2.3.1 and 2.4.0 in the registry, an Engine on 2.3.1 from it with history, 2.4.0 not on the host."""
    production = builds.build("2.3.1", "2.3.1")
    digest = builds.push("2.3.1")
    builds.build("2.4.0", "2.4.0")
    builds.push("2.4.0")
    builds.remove_locally(builds.repository + ":2.4.0")  # the upgrade must pull it
    members, inventory, work = fleet(engines, named, prefix, tmp_path, backends=("sqlite",),
                                     image=builds.repository + ":2.3.1")
    return members[0], inventory, work, production, builds.repository + "@" + digest


def playbook(name, inventory, registry, *args, config=None):
    return run_playbook("playbooks/%s.yml" % name, inventory, *args,
                        env={"DOCKER_CONFIG": config or registry["config"]})


def image_of(docker_client, engine):
    container = docker_client.containers.get(engine.name)
    return container.image.id, container.attrs["Config"]["Image"]


@pytest.mark.parametrize("since", ["pruned", "moved_and_pruned"])
def test_the_rollback_lands_on_the_recorded_build_pulled_by_its_digest(
        since, builds, registry, engines, named, prefix, tmp_path, docker_client):
    engine, inventory, work, production, production_digest = released(builds, engines, named, prefix, tmp_path)
    repo = ["-e", "engine_image_repository=" + builds.repository]
    rc, report = playbook("upgrade", inventory, registry, "-e", "version=2.4.0", *repo)
    assert rc == 0 and not failures(report), (failed_messages(report), report["stats"])
    upgraded, dummy = image_of(docker_client, engine)
    assert upgraded != production and builds.present(upgraded)  # pulled with the logged-in credentials
    [entry] = [e for e in ledger(work) if e["operation"] == "upgrade"]
    replaced = entry["result"]["from_image"]
    assert replaced["id"] == production and replaced["digests"] == [production_digest]
    for rid in ("bad-0", "bad-1"):
        assert engine.execute(rid, request_id=rid)[0] == 200

    if since == "moved_and_pruned":  # someone pushed another build as 2.3.1, and the host pulled it
        other = builds.build("2.3.1", "2.3.1")
        assert builds.push("2.3.1") != production_digest.split("@")[1]
    else:
        builds.remove_locally(builds.repository + ":2.3.1")
    builds.remove_locally(production)  # pruned: only the registry has it now
    assert not builds.present(production)

    rc, report = playbook("rollback", inventory, registry, "-e", "version=v2.3.1", "-e", "reason=registry test", *repo)
    assert rc == 0 and not failures(report), (failed_messages(report), report["stats"])
    plan = [m for p in report["plays"] for t in p["tasks"] if t["task"]["name"].endswith("Show the rollback plan")
            for h in t["hosts"].values() for m in h.get("msg") or []]
    assert any(production_digest in line and "pulled by its recorded digest" in line for line in plan), plan
    image_id, reference = image_of(docker_client, engine)
    assert image_id == production and reference == production_digest
    if since == "moved_and_pruned":
        assert docker_client.images.get(builds.repository + ":2.3.1").id == other  # the tag was left as it is
    engine.wait_healthy()
    assert engine.health()[1]["version"] == "2.3.1"
    assert sorted(r[1] for r in engine.rows("episodes")) == sorted(engine.kept)
    rollback = [e for e in ledger(work) if e["operation"] == "rollback"][-1]
    assert rollback["result"]["to_image"]["pinned"]["digest"] == production_digest


def test_a_build_gone_from_host_and_registry_is_refused_before_anything_changes(
        builds, registry, engines, named, prefix, tmp_path, docker_client):
    engine, inventory, work, production, production_digest = released(builds, engines, named, prefix, tmp_path)
    repo = ["-e", "engine_image_repository=" + builds.repository]
    rc, report = playbook("upgrade", inventory, registry, "-e", "version=2.4.0", *repo)
    assert rc == 0 and not failures(report), (failed_messages(report), report["stats"])
    engine.execute("bad-0", request_id="bad-0")
    builds.delete_from_registry(production_digest.split("@")[1])
    builds.remove_locally(builds.repository + ":2.3.1")
    builds.remove_locally(production)
    container = docker_client.containers.get(engine.name)
    before = (container.id, container.image.id, container.attrs["State"]["StartedAt"],
              engine.brain.checksum(docker_client))

    rc, report = playbook("rollback", inventory, registry, "-e", "version=v2.3.1", "-e", "reason=registry test", *repo)
    assert rc != 0
    messages = " ".join(failed_messages(report))
    assert builds.repository + ":2.3.1" in messages and production_digest in messages, messages
    assert "git tag" in messages and "nothing was changed" in messages, messages
    container = docker_client.containers.get(engine.name)
    assert (container.id, container.image.id, container.attrs["State"]["StartedAt"],
            engine.brain.checksum(docker_client)) == before
    engine.wait_healthy()


def test_pull_credentials_missing_wrong_or_given(builds, registry, engines, named, prefix, tmp_path, docker_client):
    engine, inventory, work, production, dummy = released(builds, engines, named, prefix, tmp_path)
    repo = ["-e", "engine_image_repository=" + builds.repository]
    container = docker_client.containers.get(engine.name)
    before = (container.id, container.image.id, container.attrs["State"]["StartedAt"])

    def unchanged():  # the same container, never restarted, and no snapshot taken yet
        now = docker_client.containers.get(engine.name)
        snapshots = os.listdir(str(work / "store")) if os.path.isdir(str(work / "store")) else []
        return (now.id, now.image.id, now.attrs["State"]["StartedAt"]) == before and snapshots == []

    rc, report = playbook("upgrade", inventory, registry, "-e", "version=2.4.0", *repo, config=registry["no_login"])
    messages = " ".join(failed_messages(report))
    assert rc != 0 and "the registry refused" in messages and "no credentials" in messages, messages
    assert "nothing was changed" in messages and unchanged()

    wrong = secrets.token_hex(6)
    rc, report = playbook("upgrade", inventory, registry, "-e", "version=2.4.0", *repo, "-e",
                          "engine_registry_username=" + USER, "-e", "engine_registry_password=" + wrong,
                          config=registry["no_login"])
    messages = " ".join(failed_messages(report))
    assert rc != 0 and "the registry refused" in messages and "registry_username" in messages, messages
    assert wrong not in json.dumps(report) and unchanged()

    unknown = "127.0.0.1:%d/engine" % free_port()  # nothing listens there
    rc, report = playbook("upgrade", inventory, registry, "-e", "version=2.4.0", "-e", "engine_image_repository="
                          + unknown, config=registry["no_login"])
    messages = " ".join(failed_messages(report))
    assert rc != 0 and unknown + ":2.4.0" in messages and "connection refused" in messages, messages
    assert unchanged()

    nowhere = builds.repository + "@sha256:" + "0" * 64  # a digest the registry never had
    result = run_module("engine_image", {"container": engine.name, "image": nowhere, "registry_username": USER,
                                         "registry_password": registry["password"], "health_url": engine.url + "/health",
                                         "state_dir": str(work / "state")})
    assert result.get("failed") and not result["changed"], result
    assert "the registry has no image " + nowhere in result["msg"] and result["msg"].endswith("nothing was changed")
    assert registry["password"] not in json.dumps(result) and unchanged()

    rc, report = playbook("upgrade", inventory, registry, "-e", "version=2.4.0", *repo, "-e",
                          "engine_registry_username=" + USER, "-e", "engine_registry_password=" + registry["password"],
                          config=registry["no_login"])
    assert rc == 0 and not failures(report), (failed_messages(report), report["stats"])
    assert registry["password"] not in json.dumps(report)
    assert image_of(docker_client, engine)[1] == builds.repository + ":2.4.0"
    engine.wait_healthy()
