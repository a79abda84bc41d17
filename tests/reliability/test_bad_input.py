"""Bad input to rollback.yml: each refused before anything changes, with a message that names the problem.

One SQLite and one PostgreSQL Engine, upgraded 2.3.1 -> 2.4.0 by upgrade.yml (snapshot taken) with turns in the
bad window, shared by every case of this module. Each case runs the real playbook once and then proves that
nothing changed: the container's ID, image and start time (uptime), the brain's content, the snapshot store,
and that the run's lock was released.
"""

import json
import os
import shutil
import time
import uuid
from contextlib import contextmanager

import psycopg
import pytest
from psycopg import sql

from ansible_run import run_module, run_playbook, write_inventory
from rollback_state import Upgraded
from services import ENGINE_API_KEY, EngineFactory, Names, admin_params

ROLLBACK = ("-e", "version=2.3.1", "-e", "reason=reliability")


@pytest.fixture(scope="module")
def victims(docker_client, pg_params, tmp_path_factory):
    prefix = "eo-" + uuid.uuid4().hex[:8]
    engines, names = EngineFactory(docker_client, pg_params, prefix), Names(docker_client)
    try:
        found = {"sqlite": Upgraded(engines, names, prefix, tmp_path_factory.mktemp("sqlite"), docker_client),
                 "postgres": Upgraded(engines, names, prefix, tmp_path_factory.mktemp("postgres"), docker_client,
                                      backend="postgres")}
        other = engines.start("2.3.1", engines.brain("sqlite"))  # a bystander with a snapshot of its own
        other.wait_healthy()
        other.store = str(tmp_path_factory.mktemp("other") / "store")
        taken = run_module("brain_snapshot", {"container": other.container.name, "store": other.store})
        assert not taken.get("failed"), taken.get("msg")
        other.snapshot_id = taken["snapshot"]["id"]
        found["other"] = other
        yield found
    finally:
        names.cleanup()
        engines.cleanup()


def store_files(store):
    listing = {}
    for root, dummy, files in os.walk(str(store)):
        for name in files:
            path = os.path.join(root, name)
            with open(path, "rb") as handle:
                listing[os.path.relpath(path, str(store))] = hash(handle.read())
    return listing


@contextmanager
def kept_store(victim):
    """Cases that damage the store on purpose get it back afterwards."""
    saved = str(victim.store) + ".saved"
    shutil.copytree(str(victim.store), saved, symlinks=True)
    try:
        yield
    finally:
        shutil.rmtree(str(victim.store))
        shutil.move(saved, str(victim.store))


def refused(victim, *args, words):
    """Run the rollback with bad input; assert it failed naming the problem and that nothing changed."""
    before, store_before = victim.fingerprint(), store_files(victim.store)
    rc, report = run_playbook("playbooks/rollback.yml", victim.inventory, *args)
    assert rc != 0
    messages = [r["msg"] for p in report["plays"] for t in p["tasks"] for r in t["hosts"].values()
                if r.get("failed") and r.get("msg")]
    assert messages, report["stats"]
    assert any(all(w in m for w in words) for m in messages), messages
    assert any("nothing was changed" in m for m in messages), messages
    assert victim.fingerprint() == before, "something changed although the run was refused"
    assert store_files(victim.store) == store_before
    lock = str(victim.work / "state" / ("%s.lock" % victim.engine.name))
    assert not os.path.exists(lock) or not open(lock).read().strip(), "the lock was kept"
    return messages


@pytest.mark.parametrize("version, words", [
    ("9.9.9", ["engine:9.9.9 is not present on this host"]),
    ("latest", ["'latest' is never"]),
    ("2.3", ["not a semantic version"]),
    ("2.3.1;rm -rf /", ["2.3.1;rm -rf /"]),
    ("", ["version"]),
])
def test_a_bad_version_is_refused(victims, version, words):
    refused(victims["sqlite"], "-e", json.dumps({"version": version, "reason": "reliability"}), words=words)


def test_a_missing_snapshot_is_refused(victims):
    victim = victims["sqlite"]
    refused(victim, *ROLLBACK, "-e", "rollback_snapshot_id=20250101T000000Z", words=["20250101T000000Z",
                                                                                     "missing or invalid"])


def test_a_corrupted_snapshot_is_refused(victims):
    victim = victims["sqlite"]
    with kept_store(victim):
        with open(victim.snapshot_file, "r+b") as handle:  # one flipped page in the middle, size unchanged
            handle.seek(os.path.getsize(victim.snapshot_file) // 2)
            handle.write(b"\xff" * 512)
        refused(victim, *ROLLBACK, words=[victim.snapshot_id, "does not match its manifest (corrupted)"])


def test_a_corrupted_manifest_is_refused(victims):
    victim = victims["sqlite"]
    with kept_store(victim):
        with open(str(victim.store / victim.snapshot_id / "manifest.json"), "w") as handle:
            handle.write('{"id": "%s", "engine": ' % victim.snapshot_id)  # cut off mid-write
        refused(victim, *ROLLBACK, words=[victim.snapshot_id, "manifest"])


def test_another_engines_snapshot_is_refused(victims):
    victim, other = victims["sqlite"], victims["other"]
    with kept_store(victim):
        shutil.copytree(os.path.join(other.store, other.container.name, other.snapshot_id),
                        str(victim.store / other.snapshot_id))
        refused(victim, *ROLLBACK, "-e", "rollback_snapshot_id=%s" % other.snapshot_id,
                words=[other.snapshot_id, other.container.name])


@pytest.mark.parametrize("snapshot_id", ["../../../../etc", "..", "a/../../b", "/etc/passwd"])
def test_a_snapshot_id_with_a_path_is_refused(victims, snapshot_id):
    refused(victims["sqlite"], *ROLLBACK, "-e", "rollback_snapshot_id=%s" % snapshot_id,
            words=[snapshot_id, "not a valid name"])


def test_hostile_database_table_and_role_names_that_exist_are_quoted_not_executed(
        engines, named, prefix, tmp_path, docker_client, pg_params):
    """A brain whose database, owner role, table and column are named like SQL injections, all of them real: the
    Engine runs on it, upgrade.yml snapshots it and rollback.yml restores it. Every statement the collection builds
    meets these names, so only quoting keeps them names: the brain comes back whole (the hostile table included),
    and the database, table and role the names try to drop are still there."""
    tag = uuid.uuid4().hex[:6]
    role = {"user": "eo_%s'; DROP ROLE %s; --" % (tag, pg_params["user"]), "password": "pw'\"; --%s" % tag}
    database = 'eo_%s"; DROP DATABASE postgres; --' % tag
    table, column = 'notes"; DROP TABLE episodes; --', "body'); DELETE FROM episodes; --"
    with psycopg.connect(dbname="postgres", autocommit=True, **admin_params(pg_params)) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(role["user"]),
                                                                        sql.Literal(role["password"])))
    try:
        brain = engines.brain("postgres", database=database, role=role)
        engine = engines.start("2.3.1", brain)
        engine.name = "%s-%s" % (prefix, tag)
        engine.container.rename(engine.name)
        named(engine.name)
        engine.wait_healthy()
        with psycopg.connect(dbname=database, autocommit=True, **dict(pg_params, **role)) as conn:
            conn.execute(sql.SQL("CREATE TABLE {} (id integer PRIMARY KEY, {} text)").format(
                sql.Identifier(table), sql.Identifier(column)))
            conn.execute(sql.SQL("INSERT INTO {} VALUES (1, %s), (2, %s)").format(sql.Identifier(table)),
                         ("x'; DROP TABLE episodes; --", 'y"; --'))
        for n in range(3):
            engine.execute("kept %d" % n, request_id="kept-%d" % n)
        work = tmp_path / "work"
        inventory = write_inventory(tmp_path, "engines", {engine.name: {
            "engine_container": engine.name, "engine_url": engine.url, "engine_api_key": ENGINE_API_KEY,
            "brain_backend": "postgres"}}, group_vars={
            "engine_snapshot_store": str(work / "store"), "engine_state_dir": str(work / "state"),
            "engine_ledger_path": str(work / "ledger.jsonl"), "engine_report_dir": str(work / "reports"),
            "upgrade_watch_seconds": 2, "upgrade_window_seconds": 1})
        rc, report = run_playbook("playbooks/upgrade.yml", inventory, "-e", "version=2.4.0")
        assert rc == 0, [r.get("msg") for p in report["plays"] for t in p["tasks"] for r in t["hosts"].values()
                         if r.get("failed")]
        engine.execute("bad", request_id="bad-0")
        rc, report = run_playbook("playbooks/rollback.yml", inventory, *ROLLBACK)
        assert rc == 0, [r.get("msg") for p in report["plays"] for t in p["tasks"] for r in t["hosts"].values()
                         if r.get("failed")]
        engine.wait_healthy()
        with psycopg.connect(dbname=database, autocommit=True, **dict(pg_params, **role)) as conn:
            assert conn.execute(sql.SQL("SELECT id, {} FROM {} ORDER BY id").format(
                sql.Identifier(column), sql.Identifier(table))).fetchall() == [
                    (1, "x'; DROP TABLE episodes; --"), (2, 'y"; --')]
            assert sorted(r[0] for r in conn.execute("SELECT request_id FROM episodes")) == [
                "kept-0", "kept-1", "kept-2"]
        with psycopg.connect(dbname="postgres", autocommit=True, **admin_params(pg_params)) as conn:
            assert conn.execute("SELECT 1 FROM pg_database WHERE datname = 'postgres'").fetchone()
            assert conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (pg_params["user"],)).fetchone()
            assert conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone()
    finally:  # the database goes before the role that owns it; the switch's containers before the brain's volume
        named.cleanup()
        engines.cleanup()
        with psycopg.connect(dbname="postgres", autocommit=True, **admin_params(pg_params)) as conn:
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role["user"])))


def test_a_health_url_of_another_engine_is_refused(victims):
    victim, other = victims["sqlite"], victims["other"]
    refused(victim, *ROLLBACK, "-e", "rollback_health_url=%s/health" % other.url,
            words=[other.url, "another Engine's health URL"])
    before = victim.fingerprint()
    rc, report = run_playbook("playbooks/rollback.yml", victim.inventory, *ROLLBACK, "-e",
                              "rollback_health_url=%s/health" % other.url, "-e", "rollback_verify_health_url=false",
                              check=True)
    assert rc == 0, report["stats"]  # the operator's way out, for an Engine whose /health cannot be checked
    assert victim.fingerprint() == before


def test_a_health_url_where_nothing_answers_is_refused(victims):
    victim = victims["sqlite"]
    started = victim.container().attrs["State"]["StartedAt"]
    up = time.time() - time.mktime(time.strptime(started[:19], "%Y-%m-%dT%H:%M:%S")) + time.timezone
    time.sleep(max(0, 31 - up))  # a running Engine gets 30 s to start listening before its silence counts
    refused(victim, *ROLLBACK, "-e", "rollback_health_url=http://127.0.0.1:9/health",
            words=["nothing answers at http://127.0.0.1:9/health"])


def test_an_engine_container_that_does_not_exist_is_refused(victims):
    victim = victims["sqlite"]
    gone = "%s-gone" % victim.engine.name
    refused(victim, *ROLLBACK, "-e", "engine_container=%s" % gone, words=[gone])


def test_a_brain_that_is_not_sqlite_is_refused(victims, tmp_path):
    victim = victims["sqlite"]
    impostor = tmp_path / "brain.sqlite"
    impostor.write_text("this is a text file, not a database\n")
    refused(victim, *ROLLBACK, "-e", json.dumps({"brain_options": {"sqlite_path": str(impostor)}}),
            words=[str(impostor)])
    assert impostor.read_text() == "this is a text file, not a database\n"
