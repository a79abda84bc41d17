"""Snapshots taken by hand, as the Engine's documented manual upgrade leaves them, adopted and rolled back to.

The manual upgrade: an online `sqlite3 .backup` of the brain, the image tag changed, the new version started.
No manifest exists; `brain_snapshot import_from=<file>` adopts the file, and `rollback.yml -e version=v2.3.1`
restores it. Files that are not a brain, are cut off, or are another Engine's are refused and nothing changes.
"""

import os
import shutil
import subprocess
import uuid

import pytest

from ansible_run import failures, run_module, run_playbook, write_inventory
from conftest import ENGINE_API_KEY


def manual_backup(engine, name):
    """`sqlite3 /data/brain.sqlite ".backup /data/<name>"` inside the running Engine, as its upgrade page says."""
    code, output = engine.container.exec_run(["sqlite3", "/data/brain.sqlite", ".backup /data/%s" % name])
    assert code == 0, output
    return os.path.join(os.path.dirname(engine.brain.sqlite_path(engine.client)), name)


def manual_upgrade(docker_client, engine, version):
    """Change the tag by hand: stop the Engine (drain window 30 s), remove it, start the new image with the same settings."""
    attrs = engine.container.attrs
    env = dict(e.split("=", 1) for e in attrs["Config"]["Env"] if not e.startswith(("ENGINE_VERSION=", "ENGINE_FAULT=")))
    engine.container.stop(timeout=30)
    engine.container.remove()
    engine.container = docker_client.containers.run(
        "engine:%s" % version, detach=True, network_mode="host", name=engine.name, environment=env,
        volumes={engine.brain.volume: {"bind": "/data", "mode": "rw"}}, labels=attrs["Config"]["Labels"])
    engine.wait_healthy()


def manual_pg_dump(engine, path, kind):
    """`pg_dump` of the brain as the Engine's own role, in one of its three formats, while the Engine serves."""
    flags = {"custom": ["--format=custom"], "directory": ["--format=directory"], "plain": []}[kind]
    subprocess.run(["pg_dump"] + flags + ["--file=%s" % path, "--dbname=%s" % engine.brain.dsn()], check=True)
    return path


def hand_made(engines, named, prefix, backend="sqlite"):
    engine = engines.start("2.3.1", engines.brain(backend))
    engine.name = "%s-%s" % (prefix, uuid.uuid4().hex[:6])
    engine.container.rename(engine.name)
    named(engine.name)
    engine.wait_healthy()
    engine.kept = ["kept-%d" % n for n in range(4)]
    for rid in engine.kept:
        assert engine.execute(rid, request_id=rid)[0] == 200
    return engine


def rolled_back_to(engine, tmp_path, store, manifest, bad, backend):
    """`rollback.yml -e version=v2.3.1` restores the adopted snapshot: 2.3.1 serving the kept turns, the bad ones
    exported."""
    inventory = write_inventory(tmp_path, "engines", {engine.name: {
        "engine_container": engine.name, "engine_url": engine.url, "engine_api_key": ENGINE_API_KEY,
        "brain_backend": backend, "engine_snapshot_store": store, "engine_state_dir": str(tmp_path / "state"),
        "engine_ledger_path": str(tmp_path / "ledger.jsonl"), "engine_report_dir": str(tmp_path / "reports")}})
    rc, report = run_playbook("playbooks/rollback.yml", inventory, "-e", "version=v2.3.1", "-e", "reason=manual upgrade")
    assert rc == 0 and not failures(report), report["stats"]
    engine.wait_healthy()
    assert engine.health()[1]["version"] == "2.3.1"
    assert sorted(r[1] for r in engine.rows("episodes")) == sorted(engine.kept)
    exports = os.path.join(store, engine.name, manifest["id"], "exports")
    [stamp] = os.listdir(exports)
    with open(os.path.join(exports, stamp, "episodes.jsonl")) as handle:
        assert len(handle.readlines()) == len(bad)


def test_the_documented_manual_upgrade_is_rolled_back_to_its_backup_file(engines, named, prefix, tmp_path,
                                                                         docker_client):
    engine = hand_made(engines, named, prefix)
    backup = manual_backup(engine, "brain-pre-2.4.0.sqlite")  # while the Engine serves
    manual_upgrade(docker_client, engine, "2.4.0")
    bad = ["bad-%d" % n for n in range(3)]
    for rid in bad:
        assert engine.execute(rid, request_id=rid)[0] == 200
    store = str(tmp_path / "store")
    args = {"container": engine.name, "store": store, "import_from": backup, "rollback_target": True}

    planned = run_module("brain_snapshot", args, check=True)
    assert planned["changed"] and not os.path.exists(os.path.join(store, engine.name, planned["snapshot"]["id"]))
    adopted = run_module("brain_snapshot", args)
    assert adopted["changed"] and not adopted.get("failed"), adopted.get("msg")
    manifest = adopted["snapshot"]
    assert manifest["id"].startswith("adopted-") and manifest["adopted_from"]["path"] == backup
    assert manifest["row_counts"]["episodes"] == len(engine.kept) and manifest["row_counts"]["episodes_vec"] == 4
    assert manifest["schema_fingerprint"].startswith("sha256:") and manifest["files"][0]["sha256"]
    assert run_module("brain_snapshot", args)["changed"] is False  # the same file again: nothing to do
    info = run_module("brain_snapshot_info", {"container": engine.name, "store": store, "compare_live": True,
                                              "verify": True})
    assert info["rollback_target"] == manifest["id"]
    assert [s["data_rollback_required"] for s in info["snapshots"]] == [True]  # 2.4.0 migrated the brain

    rolled_back_to(engine, tmp_path, store, manifest, bad, "sqlite")


def _not_a_brain(path, engine, engines, docker_client):
    with open(path, "w") as handle:
        handle.write("episodes,conversations\n1,2\n")


def _truncated(path, engine, engines, docker_client):
    whole = manual_backup(engine, "whole.sqlite")
    with open(whole, "rb") as src, open(path, "wb") as dst:
        dst.write(src.read()[:-8192])


def _another_engines(path, engine, engines, docker_client):
    other = engines.start("2.3.1", engines.brain("sqlite"))
    other.wait_healthy()
    for n in range(3):
        other.execute("someone else %d" % n, request_id="other-%d" % n)
    shutil.copyfile(manual_backup(other, "other.sqlite"), path)


def _not_an_engine_brain(path, engine, engines, docker_client):
    import sqlite3  # pylint: disable=import-outside-toplevel
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)")
    conn.commit()
    conn.close()


@pytest.mark.parametrize("make, expected", [
    (_not_a_brain, "is not a SQLite database"),
    (_truncated, "is truncated"),
    (_not_an_engine_brain, "is not an Engine brain: it has no episodes, conversations"),
    (_another_engines, "it is another Engine's brain"),
])
def test_a_file_that_is_not_this_engines_whole_brain_is_refused(engines, named, prefix, tmp_path, docker_client,
                                                                make, expected):
    engine = hand_made(engines, named, prefix)
    path = str(tmp_path / "pre-upgrade.sqlite")
    make(path, engine, engines, docker_client)
    store = str(tmp_path / "store")
    result = run_module("brain_snapshot", {"container": engine.name, "store": store, "import_from": path,
                                           "rollback_target": True})
    assert result.get("failed") and not result["changed"], result
    assert expected in result["msg"] and result["msg"].endswith("nothing was changed"), result["msg"]
    assert not os.path.exists(os.path.join(store, engine.name)) or os.listdir(os.path.join(store, engine.name)) == []


@pytest.mark.parametrize("kind", ["custom", "directory", "plain"])
def test_a_pg_dump_taken_by_hand_is_adopted_and_rolled_back_to(engines, named, prefix, tmp_path, docker_client, kind):
    """The PostgreSQL manual upgrade: pg_dump (any format) as the Engine's role, the tag changed, then rollback.yml."""
    engine = hand_made(engines, named, prefix, "postgres")
    dump = manual_pg_dump(engine, str(tmp_path / ("brain-pre-2.4.0." + kind)), kind)
    manual_upgrade(docker_client, engine, "2.4.0")
    bad = ["bad-%d" % n for n in range(3)]
    for rid in bad:
        assert engine.execute(rid, request_id=rid)[0] == 200
    store = str(tmp_path / "store")
    args = {"container": engine.name, "store": store, "backend": "postgres", "import_from": dump,
            "rollback_target": True}
    adopted = run_module("brain_snapshot", args)
    assert adopted["changed"] and not adopted.get("failed"), adopted.get("msg")
    manifest = adopted["snapshot"]
    assert manifest["id"].startswith("adopted-") and manifest["adopted_from"]["path"] == dump
    assert manifest["row_counts"]["episodes"] == len(engine.kept) and manifest["backend"] == "postgres"
    assert run_module("brain_snapshot", args)["changed"] is False  # the same dump again: nothing to do
    assert scratch_schemas(engine, docker_client) == []
    info = run_module("brain_snapshot_info", {"container": engine.name, "store": store, "backend": "postgres",
                                              "compare_live": True, "verify": True})
    assert info["rollback_target"] == manifest["id"]
    assert [s["data_rollback_required"] for s in info["snapshots"]] == [True]  # 2.4.0 migrated the brain

    rolled_back_to(engine, tmp_path, store, manifest, bad, "postgres")


def scratch_schemas(engine, docker_client):
    return engine.brain.query(docker_client, "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'engine_ops%%'")


def _cut_custom_dump(path, engine, engines):
    whole = manual_pg_dump(engine, path + ".whole", "custom")
    with open(whole, "rb") as src, open(path, "wb") as dst:
        dst.write(src.read()[:-4096])


def _cut_plain_dump(path, engine, engines):
    whole = manual_pg_dump(engine, path + ".whole", "plain")
    with open(whole, "rb") as src, open(path, "wb") as dst:
        dst.write(src.read()[:-400])


def _another_engines_dump(path, engine, engines):
    other = engines.start("2.3.1", engines.brain("postgres"))
    other.wait_healthy()
    for n in range(3):
        other.execute("someone else %d" % n, request_id="other-%d" % n)
    manual_pg_dump(other, path, "custom")


def _not_a_dump(path, engine, engines):
    with open(path, "w") as handle:
        handle.write("-- just notes about the upgrade\n")


@pytest.mark.parametrize("make, expected", [
    (_not_a_dump, "is not a pg_dump output"),
    (_cut_custom_dump, "is not whole: pg_restore could not read all of it"),
    (_cut_plain_dump, "is cut off"),
    (_another_engines_dump, "it is another Engine's brain"),
])
def test_a_dump_that_is_not_this_engines_whole_brain_is_refused(engines, named, prefix, tmp_path, docker_client,
                                                                make, expected):
    engine = hand_made(engines, named, prefix, "postgres")
    path = str(tmp_path / "pre-upgrade.dump")
    make(path, engine, engines)
    before = engine.brain.checksum(docker_client)
    store = str(tmp_path / "store")
    result = run_module("brain_snapshot", {"container": engine.name, "store": store, "backend": "postgres",
                                           "import_from": path, "rollback_target": True})
    assert result.get("failed") and not result["changed"], result
    assert expected in result["msg"] and result["msg"].endswith("nothing was changed"), result["msg"]
    assert not os.path.exists(os.path.join(store, engine.name)) or os.listdir(os.path.join(store, engine.name)) == []
    assert scratch_schemas(engine, docker_client) == [] and engine.brain.checksum(docker_client) == before
