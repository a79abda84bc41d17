"""Faults outside the tool during a rollback or a snapshot: the Docker daemon restarted, the PostgreSQL
connection dropped, the disk full. Each run fails naming the cause (or is refused before it starts), a partial
result never counts, and the same command run again converges."""

import os
import shutil
import subprocess
import threading
import time
import uuid

import psycopg
import pytest

from ansible_run import failed_messages, failures, run_module, run_playbook
from fleet import fleet, report_rows, spawn_playbook, upgraded_by_hand
from rollback_state import ROLLBACK, Upgraded, add_ballast, exported, request_ids, sqlite_rows
from services import admin_params, docker_info_answers, restart_docker_daemon, wait_for


@pytest.mark.serial  # restarts the Docker daemon under every other test's Engines
def test_the_docker_daemon_restarted_mid_rollback(engines, named, prefix, tmp_path, docker_client):
    upgraded = Upgraded(engines, named, prefix, tmp_path, docker_client)
    engine = upgraded.engine
    # a turn longer than the plan takes: the swap's drain waits for it, and the daemon goes away meanwhile
    thread, dummy = engine.execute_in_background(message="long", duration=45, request_id="in-flight")
    engine.wait_log("turn started", request_id="in-flight")  # in flight before the run begins
    proc = spawn_playbook(upgraded.inventory, *ROLLBACK)
    try:
        wait_for(lambda: engine.health()[1].get("status") == "draining", 180, "the swap to drain the Engine",
                 interval=0.05)
        restart_docker_daemon()  # the swap is waiting on the daemon for the Engine to exit
    finally:
        if not docker_info_answers():
            pytest.fail("dockerd did not come back")
    output = proc.communicate(timeout=600)[0].decode()
    thread.join(timeout=120)
    assert proc.returncode != 0, output[-3000:]
    assert "restore snapshot %s" % upgraded.snapshot_id in output, output[-3000:]  # the failure names the step
    assert upgraded.set_aside() == [], "the brain was swapped although the Engine's stop was not confirmed"
    assert upgraded.container().image.id == docker_client.images.get("engine:2.4.0").id
    # The failure says what became of the Engine the restore had stopped, and what it says is true.
    running = upgraded.container().attrs["State"]["Running"]
    started, left = "; the Engine was started again", "; the Engine is left stopped ("
    assert (started in output, left in output) == (running, not running), (running, output[-3000:])

    rc, report = run_playbook("playbooks/rollback.yml", upgraded.inventory, *ROLLBACK)
    assert rc == 0 and not failures(report), (failed_messages(report), report["stats"])
    row = report_rows(upgraded.work, "rollback")[engine.name]
    upgraded.assert_rolled_back_once(row["export_dir"])


def test_the_postgresql_connection_dropped_mid_restore(engines, named, prefix, tmp_path, docker_client, pg_params):
    members, inventory, work = fleet(engines, named, prefix, tmp_path, backends=("postgres",))
    [engine] = members
    with psycopg.connect(engine.brain.dsn(), autocommit=True) as conn:  # old history: a restore that takes a while
        conn.execute("INSERT INTO ingestion_chunks (source, chunk, created_at) SELECT 'ballast', "
                     "md5(random()::text), '2026-01-01T00:00:00Z' FROM generate_series(1, 400000)")
    engine, dummy = upgraded_by_hand(engines, engine, work)
    engine.execute("bad", request_id="bad-1")
    dropped = []

    def drop():  # every session that loads the staged schema, as a failover or a DBA would
        with psycopg.connect(dbname="postgres", autocommit=True, **admin_params(pg_params)) as conn:
            deadline = time.monotonic() + 240
            while time.monotonic() < deadline and not dropped:
                rows = conn.execute("SELECT pid, datname FROM pg_stat_activity WHERE datname = %s AND "
                                    "application_name = 'engine_ops restore'", (engine.brain.database,)).fetchall()
                for pid, datname in rows:
                    if conn.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()[0]:
                        dropped.append(datname)
                time.sleep(0.005)

    dropper = threading.Thread(target=drop, daemon=True)
    dropper.start()
    rc, report = run_playbook("playbooks/rollback.yml", inventory, *ROLLBACK)
    dropper.join(timeout=60)
    assert dropped, "no restore connection was seen to drop"
    assert rc != 0
    messages = failed_messages(report)
    assert any("restoring the" in m and "the live brain was not touched" in m for m in messages), messages
    left = engine.brain.query(docker_client, "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'engine_ops%%'")
    assert left == [], "the half-restored schema was left behind"
    assert sorted(r[1] for r in engine.rows("episodes")) == sorted(engine.kept + ["bad-1"])  # untouched, serving
    engine.wait_healthy()

    rc, report = run_playbook("playbooks/rollback.yml", inventory, *ROLLBACK)
    assert rc == 0 and not failures(report), (failed_messages(report), report["stats"])
    engine.wait_healthy()
    assert sorted(r[1] for r in engine.rows("episodes")) == sorted(engine.kept)
    row = report_rows(work, "rollback")[engine.name]
    assert exported(row["export_dir"]) == ["bad-1"]
    assert docker_client.containers.get(engine.name).image.id == docker_client.images.get("engine:2.3.1").id


@pytest.fixture
def small_disk(tmp_path):
    """A 64 MiB tmpfs: the snapshot store's own filesystem, which the test can fill."""
    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m,mode=0700", "tmpfs", str(mount)], check=True)
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.mark.serial  # mounts a filesystem
def test_a_snapshot_that_does_not_fit_is_refused_before_it_starts(engines, named, prefix, tmp_path, small_disk):
    members, inventory, work = fleet(engines, named, prefix, tmp_path, backends=("sqlite",))
    [engine] = members
    add_ballast(engine, 80)  # 80 MiB of old rows: more than the 64 MiB filesystem
    store = str(small_disk / "store")
    taken = run_module("brain_snapshot", {"container": engine.name, "store": store})
    assert taken.get("failed") and "not enough free space in %s" % store in taken["msg"], taken.get("msg")
    assert "nothing was changed" in taken["msg"]
    assert os.listdir(str(small_disk)) in ([], ["store"]) and not [
        n for d, dummy, files in os.walk(store) for n in files]
    rc, report = run_playbook("playbooks/upgrade.yml", inventory, "-e", "version=2.4.0",
                              "-e", "engine_snapshot_store=%s" % store)
    assert rc != 0
    assert any("not enough free space" in m for m in failed_messages(report)), failed_messages(report)
    client = engines.client
    assert client.containers.get(engine.name).image.id == client.images.get("engine:2.3.1").id  # never upgraded
    engine.wait_healthy()


@pytest.mark.serial  # mounts a filesystem and fills it
def test_the_disk_filling_up_during_a_snapshot_leaves_no_valid_snapshot(engines, named, prefix, tmp_path, small_disk):
    members, inventory, work = fleet(engines, named, prefix, tmp_path, backends=("sqlite",))
    [engine] = members
    store = str(small_disk / "store")
    first = run_module("brain_snapshot", {"container": engine.name, "store": store, "rollback_target": True})
    assert not first.get("failed"), first.get("msg")
    add_ballast(engine, 24)  # fits the free space with room to spare; the preflight lets it start
    base = os.path.join(store, engine.name)
    filled = []

    def fill():  # another process takes all the space the moment the snapshot starts writing
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            partial = [n for n in os.listdir(base) if n.startswith(".partial-")]
            if partial:
                with open(str(small_disk / ("filler-%s" % uuid.uuid4().hex)), "wb") as handle:
                    try:
                        while True:
                            handle.write(b"\0" * (1 << 20))
                    except OSError:
                        filled.append(partial[0])
                return
            time.sleep(0.001)

    filler = threading.Thread(target=fill, daemon=True)
    filler.start()
    taken = run_module("brain_snapshot", {"container": engine.name, "store": store, "rollback_target": True})
    filler.join(timeout=120)
    assert filled, "the filler never saw the snapshot start"
    assert taken.get("failed"), "the snapshot succeeded on a full disk"
    assert "the partial snapshot was removed and nothing was recorded" in taken["msg"], taken["msg"]
    assert [n for n in os.listdir(base) if n.startswith(".partial-")] == []
    info = run_module("brain_snapshot_info", {"container": engine.name, "store": store})
    assert [m["id"] for m in info["snapshots"]] == [first["snapshot"]["id"]] and info["snapshots"][0]["valid"]
    assert info["rollback_target"] == first["snapshot"]["id"]
    for name in os.listdir(str(small_disk)):
        if name.startswith("filler-"):
            os.unlink(str(small_disk / name))
    again = run_module("brain_snapshot", {"container": engine.name, "store": store, "rollback_target": True})
    assert not again.get("failed"), again.get("msg")  # with space again, the same command works
    assert request_ids(sqlite_rows(os.path.join(base, again["snapshot"]["id"], "brain.sqlite"))) == sorted(engine.kept)
    engine.wait_healthy()
    shutil.rmtree(base)
