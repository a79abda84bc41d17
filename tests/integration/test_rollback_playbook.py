"""playbooks/rollback.yml against real reference Engines: image-only and image-plus-data, --check."""

import json
import os
import uuid

from ansible_run import changed_tasks, failures, run_module, run_playbook, write_inventory
from conftest import BOTH_BACKENDS, ENGINE_API_KEY


def prepare(engines, named, prefix, backend, tmp_path, version_after="2.4.0"):
    """An Engine on 2.3.1 with history, a pinned pre-upgrade snapshot, then upgraded and written to."""
    engine = engines.start("2.3.1", engines.brain(backend))
    engine.name = "%s-%s" % (prefix, uuid.uuid4().hex[:6])
    engine.container.rename(engine.name)
    named(engine.name)
    engine.wait_healthy()
    store, state = str(tmp_path / "store"), str(tmp_path / "state")
    kept = ["kept-%d" % n for n in range(3)]
    for rid in kept:
        engine.execute(rid, request_id=rid)
    snap = run_module("brain_snapshot", {"container": engine.name, "backend": backend, "store": store,
                                         "pinned": True, "rollback_target": True, "reason": "pre-upgrade"})
    assert not snap.get("failed"), snap.get("msg")
    up = run_module("engine_image", {"container": engine.name, "version": version_after, "state_dir": state,
                                     "health_url": engine.url + "/health"})
    assert up["changed"] and not up.get("failed"), up.get("msg")
    bad = ["bad-%d" % n for n in range(2)]
    for rid in bad:
        engine.execute(rid, request_id=rid)
    inventory = write_inventory(tmp_path, "engines", {engine.name: {
        "engine_container": engine.name, "engine_url": engine.url, "engine_api_key": ENGINE_API_KEY, "brain_backend": backend,
        "engine_snapshot_store": store, "engine_state_dir": state}})
    return engine, inventory, kept, bad, snap["snapshot"]


@BOTH_BACKENDS
def test_rollback_after_a_forward_only_migration_restores_image_and_brain(engines, named, prefix, backend, tmp_path,
                                                                          docker_client):
    engine, inventory, kept, bad, snap = prepare(engines, named, prefix, backend, tmp_path)
    upgraded = docker_client.containers.get(engine.name)

    rc, report = run_playbook("playbooks/rollback.yml", inventory, "-e", "version=v2.3.1", check=True)
    assert rc == 0 and not failures(report)
    assert docker_client.containers.get(engine.name).id == upgraded.id  # --check changed nothing
    assert sorted(r[1] for r in engine.rows("episodes")) == sorted(kept + bad)
    plan = [t for p in report["plays"] for t in p["tasks"] if t["task"]["name"].endswith("Show the rollback plan")]
    lines = plan[0]["hosts"][engine.name]["msg"]
    assert "data rollback: yes" in lines and any("rows to export" in line for line in lines)

    rc, report = run_playbook("playbooks/rollback.yml", inventory, "-e", "version=v2.3.1", "-e", "reason=test")
    assert rc == 0 and not failures(report), report["stats"]
    now = docker_client.containers.get(engine.name)
    assert now.image.id == docker_client.images.get("engine:2.3.1").id
    engine.wait_healthy()
    assert engine.health()[1]["version"] == "2.3.1"
    assert sorted(r[1] for r in engine.rows("episodes")) == sorted(kept)
    exports = os.path.join(str(tmp_path / "store"), engine.name, snap["id"], "exports")
    [export_dir] = os.listdir(exports)
    with open(os.path.join(exports, export_dir, "episodes.jsonl")) as handle:
        assert len(handle.readlines()) == len(bad)
    with open(os.path.join(exports, export_dir, "summary.json")) as handle:
        # settled from the replaced brain once the Engine served again (not in the downtime)
        assert json.load(handle)["settled"] is True
    settle = [t for p in report["plays"] for t in p["tasks"] if "Settle the bad window" in t["task"]["name"]]
    assert settle and settle[0]["hosts"][engine.name]["changed"]

    rc, report = run_playbook("playbooks/rollback.yml", inventory, "-e", "version=v2.3.1")
    assert rc == 0 and changed_tasks(report, engine.name) == []  # a second run changes nothing


def test_broken_build_without_schema_change_is_rolled_back_image_only(engines, named, prefix, tmp_path,
                                                                      docker_client):
    engine = engines.start("2.3.1", engines.brain("sqlite"))
    engine.wait_healthy()
    engine.execute("history", request_id="h1")
    store = str(tmp_path / "store")
    broken_name = "%s-%s" % (prefix, uuid.uuid4().hex[:6])
    # the store is per Engine name: file the snapshot under the name the broken container will have
    snap = run_module("brain_snapshot", {"container": engine.container.name, "engine": broken_name, "store": store,
                                         "pinned": True, "rollback_target": True})
    assert not snap.get("failed"), snap.get("msg")
    engine.container.stop(timeout=30)
    broken = engines.start("2.3.2-broken-noschema", engine.brain, port=engine.port)
    broken.name = broken_name
    broken.container.rename(broken.name)
    named(broken.name)
    broken.wait_log("engine ready")
    engine.container.remove(force=True)
    inventory = write_inventory(tmp_path, "engines", {broken.name: {
        "engine_container": broken.name, "engine_url": broken.url, "engine_api_key": ENGINE_API_KEY, "engine_snapshot_store": store,
        "engine_state_dir": str(tmp_path / "state")}})
    rc, report = run_playbook("playbooks/rollback.yml", inventory, "-e", "version=2.3.1")
    assert rc == 0 and not failures(report), [r.get("msg") for p in report["plays"] for t in p["tasks"]
                                              for r in t["hosts"].values() if r.get("failed")]
    changed = changed_tasks(report, broken.name)
    assert "Switch the Engine to 2.3.1" in changed
    assert not [t for t in changed if "brain" in t.lower() or "Drain" in t]
    assert docker_client.containers.get(broken.name).image.id == docker_client.images.get("engine:2.3.1").id
    broken.wait_healthy()
    assert [r[1] for r in broken.rows("episodes")] == ["h1"]
