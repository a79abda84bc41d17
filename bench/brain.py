"""Benchmark: brain snapshots and data rollback against the manual runbook and community modules.

    python bench/brain.py [--sizes 100,1000] [--pg-size 1000] [--rounds 3] [--skip-pg] [--out bench/results]

SQLite, for each size (MB) of a generated brain with the contract's tables:
  snapshot: brain_snapshot (copy + integrity check + checksums + manifest) vs `sqlite3 .backup` alone
            vs `cp` + fsync (the physical limit); peak RSS of the module process.
  downtime: data rollback (brain_restore, staged, O(1) swap) vs an image-only rollback of the same
            Engine vs the naive runbook (stop, copy the snapshot over the brain, start).
PostgreSQL (one size): brain_snapshot vs community.postgresql.postgresql_db state=dump (custom
format); data-rollback downtime vs state=restore of a plain SQL dump with the Engine stopped.
Every comparison runs side by side in the same run; results are medians of the rounds.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import (ENGINE_API_KEY, ENGINE_KEY_HASH, REPO, Downtime, ansible_module, module_process, sh, timed,  # noqa: E402
                     wait_healthy)
from _plot import bars, write  # noqa: E402

CACHE = os.path.join(os.path.expanduser("~"), ".cache", "engine_ops", "bench")
EPISODES_PER_MB = 220  # measured: 50,000 episodes of the seed generator make a 229 MB brain
PORT = 18921


def generate_sqlite(size_mb, version="2.3.2"):
    """A brain of about `size_mb` written by the Engine image itself (its own schema), cached."""
    path = os.path.join(CACHE, "brain-%s-%dmb.sqlite" % (version, size_mb))
    if not os.path.exists(path):
        scratch = os.path.join(CACHE, "scratch-%s" % uuid.uuid4().hex[:6])
        os.makedirs(scratch)
        os.chown(scratch, 10001, 10001)
        sh(["docker", "run", "--rm", "--network", "none", "-v", "%s:/data" % scratch, "engine:%s" % version,
            "python3", "-m", "engine", "seed", "--episodes", str(size_mb * EPISODES_PER_MB), "--days", "365"])
        os.rename(os.path.join(scratch, "brain.sqlite"), path)
        shutil.rmtree(scratch)
    return path


def fsync_copy(src, dst):
    shutil.copyfile(src, dst)
    with open(dst, "rb") as handle:
        os.fsync(handle.fileno())


def median(values):
    return round(statistics.median(values), 3)


def sqlite_snapshot(size_mb, rounds, work):
    source = generate_sqlite(size_mb)
    rows = {"ours": [], "ours_core": [], "backup": [], "cp_fsync": [], "rss": []}
    for index in range(rounds):
        store = os.path.join(work, "store-%d" % index)
        seconds, rss, result = module_process("brain_snapshot", {"engine": "bench", "store": store,
                                                                 "sqlite_path": source})
        rows["ours"].append(seconds)
        rows["rss"].append(rss)
        rows["ours_core"].append(result["snapshot"]["duration_seconds"])
        shutil.rmtree(store)
        out = os.path.join(work, "backup.sqlite")
        rows["backup"].append(timed(sh, ["sqlite3", source, ".backup %s" % out])[0])
        os.unlink(out)
        rows["cp_fsync"].append(timed(fsync_copy, source, out)[0])
        os.unlink(out)
    report = dict((k, median(v)) for k, v in rows.items())
    report["size_bytes"] = os.path.getsize(source)
    report["ratio_vs_backup"] = round(report["ours"] / report["backup"], 2)
    report["ratio_vs_cp_fsync"] = round(report["ours"] / report["cp_fsync"], 2)
    return report


def engine_on(brain_dir, version, name):
    sh(["docker", "run", "-d", "--name", name, "--network", "host", "--restart", "unless-stopped",
        "-e", "ENGINE_PORT=%d" % PORT, "-e", "ENGINE_BIND=127.0.0.1", "-e", "ENGINE_STARTUP_SECONDS=1",
        "-e", "ENGINE_KEY_HASH=" + ENGINE_KEY_HASH,
        "-v", "%s:/data" % brain_dir, "engine:%s" % version])
    return wait_healthy("http://127.0.0.1:%d/health" % PORT, 120, "Engine %s to be healthy" % name)


def image_only_downtime(name, url, state, work):
    """Downtime of an image-only rollback (2.3.2 -> 2.3.1) of the same Engine; then back to 2.3.2."""
    with Downtime(url, work) as probe:
        ansible_module("engine_image", {"container": name, "version": "2.3.1", "health_url": url, "state_dir": state})
    ansible_module("engine_image", {"container": name, "version": "2.3.2", "health_url": url, "state_dir": state})
    return probe.seconds


def bad_window(count=3):
    for n in range(count):
        sh(["curl", "-fsS", "-m", "10", "-X", "POST", "-H", "X-Engine-Key: " + ENGINE_API_KEY,
            "http://127.0.0.1:%d/execute" % PORT, "-d",
            json.dumps({"message": "bad window %d" % n, "duration_seconds": 0})])


def sqlite_downtime(size_mb, rounds, work):
    brain_dir = os.path.join(work, "brain-%d" % size_mb)
    os.makedirs(brain_dir)
    shutil.copyfile(generate_sqlite(size_mb), os.path.join(brain_dir, "brain.sqlite"))
    sh(["chown", "-R", "10001:10001", brain_dir])
    name = "bench-%s" % uuid.uuid4().hex[:6]
    store, state = os.path.join(work, "store"), os.path.join(work, "state")
    result = {"image_only": [], "data_rollback": [], "naive": [], "swap_seconds": [], "restore_rss": []}
    try:
        url = engine_on(brain_dir, "2.3.2", name)
        snap = ansible_module("brain_snapshot", {"container": name, "store": store})["snapshot"]
        snap_file = os.path.join(store, name, snap["id"], "brain.sqlite")
        for dummy in range(rounds):
            result["image_only"].append(image_only_downtime(name, url, state, work))
            bad_window()
            with Downtime(url, work) as probe:
                restored = ansible_module("brain_restore", {"container": name, "store": store, "id": snap["id"],
                                                            "health_url": url})
            result["data_rollback"].append(probe.seconds)
            result["swap_seconds"].append(restored["swap_seconds"])
            os.unlink(restored["aside"])
            bad_window()
            with Downtime(url, work) as probe:
                sh(["docker", "stop", "-t", "30", name])
                # a new file (not an in-place overwrite): the next round's restore must not take the
                # copy for the brain its previous swap put in place (same inode)
                os.unlink(os.path.join(brain_dir, "brain.sqlite"))
                shutil.copyfile(snap_file, os.path.join(brain_dir, "brain.sqlite"))
                for suffix in ("-wal", "-shm"):
                    if os.path.exists(os.path.join(brain_dir, "brain.sqlite" + suffix)):
                        os.unlink(os.path.join(brain_dir, "brain.sqlite" + suffix))
                sh(["chown", "10001:10001", os.path.join(brain_dir, "brain.sqlite")])
                sh(["docker", "start", name])
                while subprocess.run(["curl", "-fsS", "-m", "1", url], capture_output=True,
                                     check=False).returncode != 0:
                    time.sleep(0.05)
            result["naive"].append(probe.seconds)
        bad_window()
        sh(["docker", "stop", "-t", "30", name])
        seconds, rss, dummy = module_process("brain_restore", {"engine": name, "store": store, "id": snap["id"],
                                                               "sqlite_path": os.path.join(brain_dir, "brain.sqlite")})
        result["restore_rss"].append(rss)
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)
    report = dict((k, median(v)) for k, v in result.items())
    report["data_minus_image_seconds"] = round(report["data_rollback"] - report["image_only"], 3)
    report["ratio_data_vs_naive"] = round(report["data_rollback"] / report["naive"], 2)
    return report


def pg_params():
    return {"host": os.environ.get("ENGINE_OPS_PG_HOST", "127.0.0.1"), "port": int(os.environ.get("ENGINE_OPS_PG_PORT", 5432)),
            "user": os.environ.get("ENGINE_OPS_PG_USER", "engine_ops"), "password": os.environ["ENGINE_OPS_PG_PASSWORD"]}


def psql(sql, db="postgres"):
    p = pg_params()
    env = dict(os.environ, PGPASSWORD=p["password"])
    return sh(["psql", "-h", p["host"], "-p", str(p["port"]), "-U", p["user"], "-d", db, "-Atqc", sql], env=env).stdout


def postgres(size_mb, rounds, work):
    p = pg_params()
    db = "bench_brain_%d" % size_mb
    url = "postgresql://%s:%s@%s:%d/%s" % (p["user"], p["password"], p["host"], p["port"], db)
    if psql("SELECT 1 FROM pg_database WHERE datname = '%s'" % db).strip() != "1":
        psql("CREATE DATABASE %s" % db)
        sh(["docker", "run", "--rm", "--network", "host", "-e", "DATABASE_URL=" + url, "engine:2.3.2",
            "python3", "-m", "engine", "seed", "--episodes", str(size_mb * EPISODES_PER_MB), "--days", "365"])
    size = int(psql("SELECT pg_database_size('%s')" % db))
    name = "bench-pg-%s" % uuid.uuid4().hex[:6]
    store = os.path.join(work, "pgstore")
    conn = {"backend": "postgres", "pg_host": p["host"], "pg_port": p["port"], "pg_user": p["user"],
            "pg_password": p["password"], "pg_database": db}
    community = {"name": db, "login_host": p["host"], "login_port": p["port"], "login_user": p["user"],
                 "login_password": p["password"]}
    result = {"ours_snapshot": [], "community_dump": [], "snapshot_rss": [], "data_rollback": [],
              "community_restore": [], "image_only": []}
    for index in range(rounds):
        seconds, rss, dummy = module_process("brain_snapshot", dict(conn, engine="bench-pg", store=store + str(index)))
        result["ours_snapshot"].append(seconds)
        result["snapshot_rss"].append(rss)
        target = os.path.join(work, "dump-%d.pgc" % index)
        result["community_dump"].append(timed(community_module, dict(community, state="dump", target=target))[0])
        os.unlink(target)
    plain = os.path.join(work, "plain.sql")
    community_module(dict(community, state="dump", target=plain))
    try:
        url_health = engine_on_pg(url, name)
        snap = ansible_module("brain_snapshot", dict(conn, container=name, store=store))["snapshot"]
        state = os.path.join(work, "pgstate")
        for dummy in range(rounds):
            result["image_only"].append(image_only_downtime(name, url_health, state, work))
            bad_window()
            with Downtime(url_health, work) as probe:
                restored = ansible_module("brain_restore", dict(conn, container=name, store=store, id=snap["id"],
                                                                health_url=url_health))
            result["data_rollback"].append(probe.seconds)
            psql('DROP DATABASE "%s"' % restored["aside"])
            bad_window()
            with Downtime(url_health, work) as probe:
                sh(["docker", "stop", "-t", "30", name])
                psql("DROP DATABASE %s WITH (FORCE)" % db)
                psql("CREATE DATABASE %s" % db)
                community_module(dict(community, state="restore", target=plain))
                sh(["docker", "start", name])
                while subprocess.run(["curl", "-fsS", "-m", "1", url_health], capture_output=True,
                                     check=False).returncode != 0:
                    time.sleep(0.05)
            result["community_restore"].append(probe.seconds)
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)
    report = dict((k, median(v)) for k, v in result.items())
    report["size_bytes"] = size
    report["ratio_snapshot_vs_community_dump"] = round(report["ours_snapshot"] / report["community_dump"], 3)
    report["ratio_downtime_vs_community_restore"] = round(report["data_rollback"] / report["community_restore"], 3)
    report["data_minus_image_seconds"] = round(report["data_rollback"] - report["image_only"], 3)
    # What the brain adds to the downtime, beyond the drain and start-up any rollback pays.
    report["ratio_brain_part_vs_community"] = round(
        report["data_minus_image_seconds"] / (report["community_restore"] - report["image_only"]), 3)
    return report


def engine_on_pg(url, name):
    sh(["docker", "run", "-d", "--name", name, "--network", "host", "-e", "ENGINE_PORT=%d" % PORT,
        "-e", "ENGINE_KEY_HASH=" + ENGINE_KEY_HASH,
        "-e", "ENGINE_BIND=127.0.0.1", "-e", "ENGINE_STARTUP_SECONDS=1", "-e", "DATABASE_URL=" + url, "engine:2.3.2"])
    return wait_healthy("http://127.0.0.1:%d/health" % PORT, 120, "Engine %s to be healthy" % name)


def community_module(args):
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"))
    sh(["ansible", "localhost", "-m", "community.postgresql.postgresql_db", "-a", json.dumps(args)], env=env)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000", help="SQLite brain sizes in MB")
    parser.add_argument("--pg-size", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--skip-pg", action="store_true")
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results"))
    args = parser.parse_args(argv)
    work = os.path.join("/var/tmp", "engine_ops-bench-%s" % uuid.uuid4().hex[:6])
    os.makedirs(work)
    report = {"measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "rounds": args.rounds,
              "sqlite": {}, "postgres": None}
    try:
        for size in ([] if args.skip_sqlite else [int(s) for s in args.sizes.split(",")]):
            report["sqlite"]["%dMB" % size] = {"snapshot": sqlite_snapshot(size, args.rounds, work),
                                               "downtime": sqlite_downtime(size, args.rounds, work)}
            print(json.dumps({"%dMB" % size: report["sqlite"]["%dMB" % size]}, indent=2), flush=True)
        if not args.skip_pg:
            report["postgres"] = postgres(args.pg_size, args.rounds, work)
            print(json.dumps({"postgres": report["postgres"]}, indent=2), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "brain.json"), "w", encoding="utf-8") as handle:
        json.dump(report, handle, indent=2)
    plot(report, args.out)
    return 0


def plot(report, out):
    """SVG plots of this run: snapshot time and downtime by brain size, PostgreSQL, peak memory."""
    sizes = list(report["sqlite"])
    if sizes:
        snap = dict((name, dict((s, report["sqlite"][s]["snapshot"][key]) for s in sizes))
                    for name, key in (("brain_snapshot", "ours"), ("sqlite3 .backup", "backup"), ("cp + fsync", "cp_fsync")))
        write(os.path.join(out, "brain-snapshot.svg"), bars("SQLite snapshot time by brain size", "seconds", sizes,
                                                            list(snap), snap))
        down = dict((name, dict((s, report["sqlite"][s]["downtime"][key]) for s in sizes))
                    for name, key in (("data rollback (brain_restore)", "data_rollback"), ("image-only", "image_only"),
                                      ("naive stop/copy/start", "naive")))
        write(os.path.join(out, "brain-downtime.svg"), bars("Downtime of a rollback by brain size", "seconds", sizes,
                                                            list(down), down))
    memory = {"brain_snapshot": {}, "brain_restore": {}}
    for s in sizes:
        memory["brain_snapshot"]["SQLite " + s] = report["sqlite"][s]["snapshot"]["rss"]
        memory["brain_restore"]["SQLite " + s] = report["sqlite"][s]["downtime"]["restore_rss"]
    pg = report.get("postgres")
    if pg:
        label = "PostgreSQL %dMB" % (pg["size_bytes"] // 1000000)
        memory["brain_snapshot"][label], memory["brain_restore"][label] = pg["snapshot_rss"], None
        compare = {"engine_ops": {"snapshot": pg["ours_snapshot"], "rollback downtime": pg["data_rollback"]},
                   "community.postgresql": {"snapshot": pg["community_dump"],
                                            "rollback downtime": pg["community_restore"]}}
        write(os.path.join(out, "postgres.svg"), bars("PostgreSQL brain (%s): engine_ops vs community.postgresql_db" % label,
                                                      "seconds", ["snapshot", "rollback downtime"], list(compare), compare))
    groups = list(memory["brain_snapshot"])
    if groups:
        write(os.path.join(out, "memory.svg"), bars("Peak memory of the module process (RSS)", "MiB", groups,
                                                    list(memory), memory))


if __name__ == "__main__":
    sys.exit(main())
