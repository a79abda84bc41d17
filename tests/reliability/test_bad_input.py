"""Bad input to rollback.yml: each refused before anything changes, with a message that names the problem.

One SQLite and one PostgreSQL Engine on 2.4.0 with a pinned pre-upgrade snapshot and turns in the bad window,
shared by every case of this module. Every bad input is a host of its own in one inventory (each an alias of one
of these two Engines, with its own state directory and, where a case damages it, its own copy of the store), so
one run of the real playbook refuses them all side by side. Each case then checks its own host: the failure names
the problem and says nothing was changed, its store is byte for byte as before and its lock was released; and
the Engines themselves (container ID, image, start time, brain content) are as they were before the run.
"""

import os
import shutil
import time
import uuid

import psycopg
import pytest
from psycopg import sql

from ansible_run import run_module, run_playbook, write_inventory
from rollback_state import ROLLBACK, Upgraded
from services import ENGINE_API_KEY, EngineFactory, Names, admin_params

SNAPSHOT_ID_PATHS = ["../../../../etc", "..", "a/../../b", "/etc/passwd"]
VERSIONS = [
    ("9.9.9", ["engine:9.9.9 is not present on this host"]),
    ("latest", ["'latest' is never"]),
    ("2.3", ["not a semantic version"]),
    ("2.3.1;rm -rf /", ["2.3.1;rm -rf /"]),
    ("", ["version"]),
]


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


def flip_a_page(path):
    """One damaged page in the middle of a file, its size unchanged (a bit rot the manifest's checksum must catch)."""
    with open(path, "r+b") as handle:
        handle.seek(os.path.getsize(path) // 2)
        handle.write(b"\xff" * 512)


def largest_file(directory):
    """The biggest file of a snapshot but its manifest (a pg_dump directory's table data, a SQLite file)."""
    found = [os.path.join(d, n) for d, dummy, names in os.walk(directory) for n in names if n != "manifest.json"]
    return max(found, key=os.path.getsize)


class Refusals:
    """Hosts of one inventory, each a bad input aimed at one of the victims, refused by one playbook run."""

    def __init__(self, victims, top):
        self.victims, self.top, self.hosts, self.cases = victims, top, {}, {}

    def add(self, case, backend="sqlite", words=(), damage=None, **variables):
        """A host for `case`; `damage(store, victim)` is given the host's own copy of the store to break."""
        victim = self.victims[backend]
        store = os.path.join(str(victim.work), "store")
        if damage:
            own = str(self.top / case / "store")
            shutil.copytree(store, own, symlinks=True)
            damage(os.path.join(own, victim.engine.name), victim)
            store = own
        host = {"engine_container": victim.engine.name, "engine_url": victim.engine.url,
                "engine_api_key": ENGINE_API_KEY, "brain_backend": backend, "version": "2.3.1",
                "engine_snapshot_store": store, "engine_state_dir": str(self.top / case / "state"),
                "engine_ledger_path": str(self.top / case / "ledger.jsonl")}
        host.update(variables)
        self.hosts[case] = host
        self.cases[case] = {"victim": victim, "words": list(words), "store": store,
                            "state": host["engine_state_dir"], "container": host["engine_container"]}

    def run(self):
        inventory = write_inventory(self.top, "engines", self.hosts, group_vars={
            "reason": "reliability", "engine_report_dir": str(self.top / "reports")})
        for case in self.cases.values():
            case["store_before"] = store_files(case["store"])
        before = dict((name, self.victims[name].fingerprint()) for name in ("sqlite", "postgres"))
        rc, report = run_playbook("playbooks/rollback.yml", inventory, "-f", str(len(self.hosts)))
        after = dict((name, self.victims[name].fingerprint()) for name in ("sqlite", "postgres"))
        return rc, report, before, after


@pytest.fixture(scope="module")
def refusals(victims, tmp_path_factory):
    """One rollback.yml run over every bad input below; its report, and the Engines before and after it."""
    other = victims["other"]
    bad = Refusals(victims, tmp_path_factory.mktemp("refusals"))
    for n, (version, words) in enumerate(VERSIONS):
        bad.add("version-%d" % n, words=words, version=version)
    bad.add("version-on-postgres", backend="postgres", words=VERSIONS[0][1], version=VERSIONS[0][0])
    bad.add("snapshot-missing", words=["20250101T000000Z", "missing or invalid"],
            rollback_snapshot_id="20250101T000000Z")
    bad.add("snapshot-missing-on-postgres", backend="postgres", words=["20250101T000000Z", "missing or invalid"],
            rollback_snapshot_id="20250101T000000Z")
    damaged = "does not match its manifest (corrupted)"
    bad.add("snapshot-corrupted", words=[victims["sqlite"].snapshot_id, damaged],
            damage=lambda store, v: flip_a_page(os.path.join(store, v.snapshot_id, "brain.sqlite")))
    bad.add("snapshot-corrupted-on-postgres", backend="postgres", words=[victims["postgres"].snapshot_id, damaged],
            damage=lambda store, v: flip_a_page(largest_file(os.path.join(store, v.snapshot_id))))

    def cut_manifest(store, victim):  # cut off mid-write
        with open(os.path.join(store, victim.snapshot_id, "manifest.json"), "w") as handle:
            handle.write('{"id": "%s", "engine": ' % victim.snapshot_id)
    bad.add("manifest-corrupted", words=[victims["sqlite"].snapshot_id, "manifest"], damage=cut_manifest)
    bad.add("snapshot-of-another-engine", words=[other.snapshot_id, other.container.name],
            damage=lambda store, v: shutil.copytree(os.path.join(other.store, other.container.name,
                                                                 other.snapshot_id),
                                                    os.path.join(store, other.snapshot_id)),
            rollback_snapshot_id=other.snapshot_id)
    for n, snapshot_id in enumerate(SNAPSHOT_ID_PATHS):
        bad.add("snapshot-id-path-%d" % n, words=[snapshot_id, "not a valid name"], rollback_snapshot_id=snapshot_id)
    bad.add("health-url-of-another-engine", words=[other.url, "another Engine's health URL"],
            rollback_health_url="%s/health" % other.url)
    bad.add("health-url-where-nothing-answers", words=["nothing answers at http://127.0.0.1:9/health"],
            rollback_health_url="http://127.0.0.1:9/health")
    gone = "%s-gone" % victims["sqlite"].engine.name
    bad.add("container-missing", words=[gone], engine_container=gone)
    impostor = bad.top / "impostor.sqlite"
    impostor.write_text("this is a text file, not a database\n")
    bad.add("brain-not-sqlite", words=[str(impostor)], brain_options={"sqlite_path": str(impostor)})
    # a running Engine gets 30 s to start listening before a health URL's silence counts
    started = victims["sqlite"].container().attrs["State"]["StartedAt"]
    up = time.time() - time.mktime(time.strptime(started[:19], "%Y-%m-%dT%H:%M:%S")) + time.timezone
    time.sleep(max(0, 31 - up))
    rc, report, before, after = bad.run()
    assert impostor.read_text() == "this is a text file, not a database\n"
    return {"rc": rc, "report": report, "before": before, "after": after, "cases": bad.cases}


def messages_of(report, host):
    return [t["hosts"][host]["msg"] for p in report["plays"] for t in p["tasks"]
            if host in t["hosts"] and t["hosts"][host].get("failed") and t["hosts"][host].get("msg")]


def assert_refused(refusals, case):
    """`case`'s host failed naming the problem, said nothing was changed, and left its store and lock as they were."""
    assert refusals["rc"] != 0
    spec, report = refusals["cases"][case], refusals["report"]
    assert report["stats"][case]["failures"] + report["stats"][case]["unreachable"] > 0, report["stats"][case]
    messages = messages_of(report, case)
    assert any(all(w in m for w in spec["words"]) for m in messages), messages
    assert any("nothing was changed" in m for m in messages), messages
    assert store_files(spec["store"]) == spec["store_before"]
    lock = os.path.join(spec["state"], "%s.lock" % spec["container"])
    assert not os.path.exists(lock) or not open(lock).read().strip(), "the lock was kept"


def test_every_bad_input_failed_and_nothing_changed(refusals):
    """The run as a whole: every host failed, none got as far as the plan's end, and neither Engine changed."""
    report = refusals["report"]
    assert sorted(h for h, s in report["stats"].items() if s["failures"] or s["unreachable"]) == sorted(
        refusals["cases"]), report["stats"]
    assert refusals["after"] == refusals["before"], "something changed although every run was refused"


@pytest.mark.parametrize("n", range(len(VERSIONS)), ids=[v or "empty" for v, dummy in VERSIONS])
def test_a_bad_version_is_refused(refusals, n):
    assert_refused(refusals, "version-%d" % n)


@pytest.mark.parametrize("case", ["version-on-postgres", "snapshot-missing-on-postgres",
                                  "snapshot-corrupted-on-postgres"])
def test_bad_input_is_refused_on_postgresql_too(refusals, case):
    assert_refused(refusals, case)


@pytest.mark.parametrize("case", ["snapshot-missing", "snapshot-corrupted", "manifest-corrupted",
                                  "snapshot-of-another-engine"])
def test_a_snapshot_that_cannot_be_restored_is_refused(refusals, case):
    assert_refused(refusals, case)


@pytest.mark.parametrize("n", range(len(SNAPSHOT_ID_PATHS)), ids=SNAPSHOT_ID_PATHS)
def test_a_snapshot_id_with_a_path_is_refused(refusals, n):
    assert_refused(refusals, "snapshot-id-path-%d" % n)


@pytest.mark.parametrize("case", ["health-url-of-another-engine", "health-url-where-nothing-answers",
                                  "container-missing", "brain-not-sqlite"])
def test_a_wrong_engine_or_brain_is_refused(refusals, case):
    assert_refused(refusals, case)


def test_the_operator_can_skip_the_health_url_check(victims):
    """The way out for an Engine whose /health cannot be checked: a dry run with the check off goes through."""
    victim, other = victims["sqlite"], victims["other"]
    before = victim.fingerprint()
    rc, report = run_playbook("playbooks/rollback.yml", victim.inventory, *ROLLBACK, "-e",
                              "rollback_health_url=%s/health" % other.url, "-e", "rollback_verify_health_url=false",
                              check=True)
    assert rc == 0, report["stats"]
    assert victim.fingerprint() == before


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
