"""Secrets never leave the places they belong, and everything the tool writes is private.

One fleet (a SQLite and a PostgreSQL Engine) whose containers carry an encryption key and an LLM API key, whose
PostgreSQL brain is reached with a password, is snapshotted, upgraded and rolled back at -vvv with notifications
to webhook URLs that hold tokens and a postmortem webhook. Then every byte the runs printed and every file they
left (ledger, manifests, state, summaries, exports, the diagnostics archive's members, postmortems) is searched
for each secret, and every file and folder is checked for its mode and owner.
"""

import gzip
import io
import json
import os
import shutil
import stat
import tarfile
import uuid

import pytest

from ansible_run import run_module, run_playbook
from fleet import fleet, recreated, report_rows, spawn_playbook
from services import ENGINE_API_KEY, EngineFactory, Names, Receiver

TOKEN = "hooktoken-" + uuid.uuid4().hex
ENCRYPTION_KEY = "adkey-" + uuid.uuid4().hex
LLM_KEY = "sk-llm-" + uuid.uuid4().hex
SECRET_ENV = {"AD_ENCRYPTION_KEY": ENCRYPTION_KEY, "LLM_API_KEY": LLM_KEY}


def verbose_run(inventory, playbook, *args):
    """The playbook as an operator runs it: default output, -vvv (and --diff where given); returns (rc, output)."""
    proc = spawn_playbook(inventory, "-vvv", *args, playbook=playbook)
    output = proc.communicate(timeout=900)[0].decode(errors="replace")
    assert "ESTABLISH LOCAL CONNECTION" in output  # really verbose
    return proc.returncode, output


def readable_texts(root):
    """(path, text) of every file under root; compressed archives are opened and their members read too."""
    for directory, dummy, files in os.walk(root):
        for name in files:
            path = os.path.join(directory, name)
            with open(path, "rb") as handle:
                data = handle.read()
            yield path, data.decode("utf-8", errors="replace")
            if name.endswith((".tar.gz", ".tgz")):
                with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
                    for member in archive.getmembers():
                        if member.isfile():
                            text = archive.extractfile(member).read().decode("utf-8", errors="replace")
                            yield "%s!%s" % (path, member.name), text
            elif name.endswith(".gz"):
                yield path + "!", gzip.decompress(data).decode("utf-8", errors="replace")


@pytest.fixture(scope="module")
def operated(docker_client, pg_params, tmp_path_factory):
    prefix = "eo-" + uuid.uuid4().hex[:8]
    engines, names, receiver = EngineFactory(docker_client, pg_params, prefix), Names(docker_client), Receiver()
    tmp_path = tmp_path_factory.mktemp("secrets")
    try:
        members, inventory, work = fleet(engines, names, prefix, tmp_path, backends=("sqlite", "postgres"))
        members = [recreated(engines, engine, SECRET_ENV) for engine in members]  # now with secrets in their env
        for engine in members:
            engine.wait_healthy()
        secrets = {"database password": pg_params["password"], "webhook token": TOKEN,
                   "encryption key": ENCRYPTION_KEY, "LLM API key": LLM_KEY, "Engine API key": ENGINE_API_KEY}
        evals = tmp_path / "evals.sh"  # evals that call the Engine API with the key they are given
        evals.write_text("#!/bin/sh\nexec curl -fsS -o /dev/null -H \"X-Engine-Key: $(cat \"$ENGINE_API_KEY_FILE\")\" "
                         "\"$ENGINE_URL/memory/export?tables=server_registry\"\n")
        evals.chmod(0o755)
        extra = json.dumps({
            "reason": "reliability", "rollback_all_clear_seconds": 1,
            "notify_slack_webhook_url": "%s/slack/%s" % (receiver.url, TOKEN),
            "notify_webhook_url": "%s/hook/%s" % (receiver.url, TOKEN),
            "notify_webhook_headers": {"Authorization": "Bearer " + TOKEN},
            "notify_postmortem_webhook_url": "%s/postmortem/%s" % (receiver.url, TOKEN),
            "brain_options": {"pg_password": pg_params["password"]},
            "upgrade_eval_command": str(evals), "rollback_eval_command": str(evals)})
        outputs = []
        rc, out = verbose_run(inventory, "playbooks/snapshot.yml", "-e", extra)
        outputs.append(out)
        assert rc == 0, out[-3000:]
        rc, out = verbose_run(inventory, "playbooks/upgrade.yml", "--diff", "-e", "version=2.4.0", "-e", extra)
        outputs.append(out)
        assert rc == 0, out[-3000:]
        for engine in members:
            engine.execute("bad", request_id="bad-" + engine.name[-6:])
        rc, out = verbose_run(inventory, "playbooks/rollback.yml", "--diff", "-e", "version=2.3.1", "-e", extra)
        outputs.append(out)
        assert rc == 0, out[-3000:]
        yield {"members": members, "work": work, "outputs": outputs, "secrets": secrets, "receiver": receiver,
               "inventory": inventory}
    finally:
        receiver.server.shutdown()
        names.cleanup()
        engines.cleanup()


def test_the_secrets_reach_only_their_receivers(operated, docker_client):
    receiver, secrets = operated["receiver"], operated["secrets"]
    assert any(TOKEN in path for dummy, path, dummy2, dummy3 in receiver.calls)  # the webhooks were really called
    assert any(path.startswith("/postmortem/") for dummy, path, dummy2, dummy3 in receiver.calls)
    container = docker_client.containers.get(operated["members"][0].name)
    assert "AD_ENCRYPTION_KEY=" + ENCRYPTION_KEY in container.attrs["Config"]["Env"]  # kept through the switches
    for number, output in enumerate(operated["outputs"]):
        for what, secret in secrets.items():
            assert secret not in output, "the %s is in the -vvv output of run %d" % (what, number)


def test_no_file_the_tool_wrote_holds_a_secret(operated):
    work, secrets = str(operated["work"]), operated["secrets"]
    searched = dict(readable_texts(work))
    names = sorted(searched)
    assert any(n.endswith("ledger.jsonl") for n in names)
    assert any("/postmortems/" in n for n in names)
    assert any(n.endswith("manifest.json") for n in names)
    assert any("!inspect/" in n for n in names), "no diagnostics archive with the containers' inspect"
    assert any("/exports/" in n for n in names)
    for path, text in searched.items():
        for what, secret in secrets.items():
            assert secret not in text, "the %s is in %s" % (what, path)
    # the key's identity is recorded with the snapshot, never the key
    manifests = [json.loads(t) for n, t in searched.items() if n.endswith("manifest.json") and "!" not in n]
    assert manifests and all((m.get("encryption_key_fingerprint") or "").startswith("sha256:") for m in manifests), manifests[0]


def test_everything_written_is_private_and_owned_by_the_running_user(operated):
    work = str(operated["work"])
    checked = {"dirs": 0, "files": 0}
    for directory, dirs, files in os.walk(work):
        for name in dirs:
            info = os.lstat(os.path.join(directory, name))
            assert stat.S_IMODE(info.st_mode) == 0o700, "%s is %o" % (os.path.join(directory, name), info.st_mode)
            assert info.st_uid == os.getuid()
            checked["dirs"] += 1
        for name in files:
            path = os.path.join(directory, name)
            info = os.lstat(path)
            assert stat.S_ISREG(info.st_mode), "%s is not a regular file" % path
            assert stat.S_IMODE(info.st_mode) & 0o077 == 0, "%s is %o" % (path, stat.S_IMODE(info.st_mode))
            assert info.st_uid == os.getuid(), path
            checked["files"] += 1
    row = list(report_rows(operated["work"], "rollback").values())[0]
    assert row["export_dir"].startswith(work) and os.path.isdir(row["export_dir"])
    assert checked["dirs"] > 10 and checked["files"] > 20, checked


def test_links_in_the_store_are_not_followed_out_of_it(operated, tmp_path):
    """A snapshot folder, a file in a snapshot and an exports folder that are links: refused, never followed."""
    engine = operated["members"][0]
    store = os.path.join(str(operated["work"]), "store")
    base = os.path.join(store, engine.name)
    target = open(os.path.join(base, "ROLLBACK_TARGET")).read().strip()
    outside = tmp_path / "outside"
    shutil.copytree(os.path.join(base, target), str(outside))  # a snapshot kept somewhere else
    shutil.rmtree(str(outside / "exports"), ignore_errors=True)
    (outside / "precious.txt").write_text("not the tool's to touch\n")
    kept = sorted(os.listdir(str(outside)))
    os.symlink(str(outside), os.path.join(base, "20990101T000000.000000Z"))  # a "snapshot" that leads out
    info = run_module("brain_snapshot_info", {"container": engine.name, "store": store})
    [linked] = [m for m in info["snapshots"] if m["id"] == "20990101T000000.000000Z"]
    assert not linked["valid"] and "symbolic link" in linked["problem"], linked
    exports = os.path.join(base, target, "exports")
    os.rename(exports, exports + ".real")
    os.symlink(str(outside), exports)  # an export would be written out of the store
    try:
        restored = run_module("brain_restore", {"container": engine.name, "store": store, "id": target})
        assert restored.get("failed") and "symbolic link" in restored["msg"] and "nothing was changed" in restored["msg"]
        rc, report = run_playbook("playbooks/snapshot.yml", operated["inventory"], "-e", "keep=1",
                                  "-e", "target=%s" % engine.name)
        assert rc == 0, [r.get("msg") for p in report["plays"] for t in p["tasks"] for r in t["hosts"].values()
                         if r.get("failed")]
    finally:
        os.unlink(exports)
        os.rename(exports + ".real", exports)
    assert sorted(os.listdir(str(outside))) == kept
    assert (outside / "precious.txt").read_text() == "not the tool's to touch\n"
