"""What a data rollback of one SQLite Engine leaves behind, read the way an operator would check it by hand.

The reliability tests interrupt or break a rollback and then compare the Engine, its brain, the snapshot,
the export, the set-aside brains and the switch history with what one clean rollback leaves.
"""

import hashlib
import json
import os
import signal
import sqlite3

import psycopg
from psycopg import sql

from ansible_run import failed_messages, failures, run_playbook
from fleet import fleet, ledger, report_rows, spawn_playbook, task_results, upgraded_by_hand
from services import sqlite_copy

HERE = os.path.dirname(os.path.abspath(__file__))
ROLLBACK = ("-e", "version=2.3.1", "-e", "reason=reliability")
FINISHED = ("rolled_back", "resumed_and_finished")  # the latter when the killed run had switched the image


def sqlite_rows(path):
    """Every row of every ordinary table of a SQLite file (read from a copy: the live -shm is never touched).

    vec0 and FTS5 virtual tables need their modules; their data is all in their shadow tables, which are compared.
    """
    with sqlite_copy(path) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                             "AND name NOT LIKE 'sqlite_%' AND sql NOT LIKE 'CREATE VIRTUAL TABLE%' "
                                             "ORDER BY name")]
        return dict((t, sorted(conn.execute('SELECT * FROM "%s"' % t).fetchall(), key=repr)) for t in tables)


def request_ids(rows):
    return sorted(r[1] for r in rows.get("episodes", []))


class Upgraded:
    """One Engine with history, its pinned pre-upgrade snapshot, upgraded to 2.4.0, turns in the bad window.

    The state upgrade.yml leaves, built directly as bench/fleet.py builds it (the snapshot module, then docker rm and
    docker run on 2.4.0, whose start-up migrates the brain forward): upgrade.yml itself is tested by its own tests,
    and these cases are about what comes after it.
    """

    def __init__(self, engines, named, prefix, tmp_path, docker_client, env=None, ballast_mb=0, backend="sqlite"):
        self.client = docker_client
        members, self.inventory, self.work = fleet(engines, named, prefix, tmp_path, backends=(backend,))
        [engine] = members
        if ballast_mb:
            add_ballast(engine, ballast_mb)
        self.engine, taken = upgraded_by_hand(engines, engine, self.work, env=env)
        self.engine.bad = ["bad-%d" % n for n in range(3)]
        for rid in self.engine.bad:
            self.engine.execute(rid, request_id=rid)
        self.store = self.work / "store" / self.engine.name
        self.snapshot_id = open(str(self.store / "ROLLBACK_TARGET")).read().strip()
        assert self.snapshot_id == taken
        self.snapshot_file = str(self.store / self.snapshot_id / "brain.sqlite")
        self.brain_path = self.engine.brain.sqlite_path(docker_client) if backend == "sqlite" else None

    # -- what a test checks ------------------------------------------------------------------------
    def container(self):
        return self.client.containers.get(self.engine.name)

    def fingerprint(self):
        """Container ID, image, start time and brain checksum: unchanged by anything refused."""
        container = self.container()
        if self.brain_path:  # content, not bytes: the Engine may checkpoint its WAL into the file at any time
            brain = hashlib.sha256(repr(sqlite_rows(self.brain_path)).encode()).hexdigest()
        else:
            brain = self.engine.brain.checksum(self.client)
        return {"id": container.id, "image": container.image.id, "started": container.attrs["State"]["StartedAt"],
                "brain": brain}

    def set_aside(self):
        """The replaced brains a swap kept: files beside a SQLite brain; (kind, name) of PostgreSQL schemas or
        databases beside a PostgreSQL one."""
        if self.brain_path:
            return set_aside_brains(self.brain_path)
        return set_aside_postgres(self.engine.brain)

    def switches_to(self, image):
        return switches_to(self.work, self.engine.name, image)

    def assert_finished(self, row):
        self.assert_rolled_back_once(row["export_dir"])

    def assert_rolled_back_once(self, export_dir):
        """The end state of exactly one data rollback, however many runs it took."""
        container = self.container()
        assert container.image.id == self.client.images.get("engine:2.3.1").id
        assert container.attrs["State"]["Running"]
        self.engine.wait_healthy()
        assert self.engine.health()[1]["version"] == "2.3.1"
        [aside] = self.set_aside()  # swapped once: one replaced brain, and it is the bad-window brain
        if self.brain_path:
            live, snapshot = sqlite_rows(self.brain_path), sqlite_rows(self.snapshot_file)
            assert live == snapshot, "the live brain is not the snapshot"
            replaced, in_snapshot = request_ids(sqlite_rows(aside)), set(request_ids(snapshot))
        else:  # a pg_dump is not read here: the snapshot holds the turns the Engine had before the upgrade
            live = sorted(r[1] for r in self.engine.rows("episodes"))
            assert live == sorted(self.engine.kept), "the live brain is not the snapshot"
            replaced, in_snapshot = episodes_of_aside(self.engine.brain, aside), set(live)
        assert set(self.engine.kept + self.engine.bad) <= set(replaced)
        assert sorted(exported(export_dir)) == sorted(r for r in replaced if r not in in_snapshot), (
            "export incomplete or doubled")
        assert len(self.switches_to("engine:2.3.1")) == 1, "the image was switched more than once"
        previous = self.client.containers.get(self.engine.name + "-engine_ops-previous")
        assert previous.image.id == self.client.images.get("engine:2.4.0").id
        results = [e["result"]["result"] for e in ledger(self.work) if e["operation"] == "rollback"]
        assert results and results[-1] in FINISHED, results


def switches_to(work, name, image):
    """The image switches of Engine `name` to `image`, from its switch history."""
    with open(str(work / "state" / ("%s.json" % name))) as handle:
        history = json.load(handle)["history"]
    return [h for h in history if h["replaced_by"]["reference"] == image]


def run_again_and_check(upgraded, resumed=True):
    """Run the rollback again after a kill; it must say whether it resumed and end as one clean rollback does
    (`upgraded.assert_finished(row)`: Upgraded's or another starting state's own end-state check).
    Returns the Engine's summary row and the plan's lines."""
    rc, report = run_playbook("playbooks/rollback.yml", upgraded.inventory, *ROLLBACK)
    assert rc == 0 and not failures(report), (report["stats"], failed_messages(report), report["_stderr"][-2000:])
    plan = task_results(report, "Show the rollback plan")[0]["msg"]
    # the plan's one line that says it: "new run", or "resuming an interrupted run; phases already done: ..."
    said = [line for line in plan if line == "new run" or line.startswith("resuming an interrupted run")]
    assert len(said) == 1 and said[0].startswith("resuming") == resumed, plan
    row = report_rows(upgraded.work, "rollback")[upgraded.engine.name]
    assert row["result"] in FINISHED, row
    upgraded.assert_finished(row)
    return row, plan


def set_aside_postgres(brain):
    """The replaced brains a PostgreSQL swap kept: schemas beside `public`, or databases beside the brain's."""
    with psycopg.connect(brain.dsn(), autocommit=True) as conn:
        schemas = [r[0] for r in conn.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE %s",
                                              ("engine\\_ops\\_pre\\_restore\\_%",))]
    with psycopg.connect(autocommit=True, **dict(brain.pg_params, dbname="postgres")) as conn:
        databases = [r[0] for r in conn.execute("SELECT datname FROM pg_database WHERE datname LIKE %s",
                                                (brain.database[:34] + "\\_\\_pre\\_restore\\_%",))]
    return [("schema", s) for s in schemas] + [("database", d) for d in databases]


def episodes_of_aside(brain, aside):
    """Request ids of the episodes in a replaced PostgreSQL brain (kind, name) of set_aside_postgres."""
    kind, name = aside
    if kind == "schema":
        with psycopg.connect(brain.dsn(), autocommit=True) as conn:
            return sorted(r[0] for r in conn.execute(sql.SQL("SELECT request_id FROM {}.episodes").format(
                sql.Identifier(name))))
    with psycopg.connect(autocommit=True, **dict(brain.pg_params, dbname=name)) as conn:
        return sorted(r[0] for r in conn.execute("SELECT request_id FROM episodes"))


def set_aside_brains(brain_path):
    """The brains a swap set aside beside the live SQLite brain (its -wal and -shm files not counted)."""
    directory, base = os.path.split(brain_path)
    return sorted(os.path.join(directory, n) for n in os.listdir(directory)
                  if n.startswith(base + ".pre-restore-") and not n.endswith(("-wal", "-shm")))


def spawn_killable(inventory, args, mark, kill_at=None, playbook="playbooks/rollback.yml"):
    """Start a playbook (a rollback) with the kill_at callback armed (callback_plugins/kill_at.py); return the process."""
    env = {"ANSIBLE_CALLBACK_PLUGINS": os.path.join(HERE, "callback_plugins"), "ENGINE_OPS_KILL_MARK": mark,
           "ENGINE_OPS_KILL_AT": kill_at or ""}
    return spawn_playbook(inventory, *args, env=env, playbook=playbook)


def wait_killed(proc, mark, words):
    """The run ended by SIGKILL, at the task whose name holds `words` (the mark the callback wrote first)."""
    output = proc.communicate(timeout=300)[0].decode()
    assert proc.returncode == -signal.SIGKILL, "the run was not killed (rc %s):\n%s" % (proc.returncode, output[-3000:])
    with open(mark) as handle:
        assert words in handle.read()


def exported(export_dir, table="episodes"):
    """Request ids of the exported rows of a table, in file order."""
    with open(os.path.join(export_dir, "%s.jsonl" % table)) as handle:
        return [json.loads(line)["request_id"] for line in handle]


def add_ballast(engine, megabytes):
    """Old rows (before any snapshot) that make a SQLite brain big enough for a copy to take a while."""
    conn = sqlite3.connect(engine.brain.sqlite_path(engine.client), timeout=30)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        with conn:
            # an ordinary table: the vec0 tables need the sqlite-vec extension, which this Python cannot load
            conn.executemany("INSERT INTO ingestion_chunks (source, chunk, created_at) "
                             "VALUES ('ballast', randomblob(1048576), '2026-01-01T00:00:00Z')", [()] * megabytes)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
