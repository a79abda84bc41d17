"""The per-Engine lock, phase checkpoints and the ledger: pure file logic, time injected."""

import json
import os
import threading

import pytest

from ansible_collections.engine_ops.lifecycle.plugins.module_utils._state import checkpoint as cp
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._state.ledger import append, read
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._state.lock import (
    LockError, LockHeld, acquire, inspect, lock_path, release)

ALICE = {"run_id": "ctl:100:5", "user": "alice", "controller": "ctl", "pid": 100}
BOB = {"run_id": "ctl:200:7", "user": "bob", "controller": "ctl", "pid": 200}


def clock(value):
    return lambda: value


def test_a_free_lock_is_taken_and_a_second_run_is_refused_with_the_holder_named(tmp_path):
    path = lock_path(str(tmp_path / "state"), "engine-1")
    holder, taken_over, changed = acquire(path, dict(ALICE, operation="rollback", target="v2.3.1"), 60, now=clock(1000))
    assert changed and taken_over is None and holder["expires"] == 1060
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    with pytest.raises(LockHeld) as refused:
        acquire(path, BOB, 60, now=clock(1010))
    assert refused.value.holder["user"] == "alice"
    assert "rollback to v2.3.1 by alice on ctl (pid 100)" in str(refused.value)
    assert inspect(path)["run_id"] == ALICE["run_id"]  # the refusal changed nothing


@pytest.mark.parametrize("when, break_run_id, force, takes", [
    (1061, None, False, True),          # the lease expired
    (1010, "ctl:100:5", False, True),   # the controller proved the holder dead
    (1010, "ctl:999:1", False, False),  # proof about another run does not count
    (1010, None, True, True),           # forced by the operator
])
def test_taking_over_a_lock(tmp_path, when, break_run_id, force, takes):
    path = lock_path(str(tmp_path), "engine-1")
    acquire(path, ALICE, 60, now=clock(1000))
    if not takes:
        with pytest.raises(LockHeld):
            acquire(path, BOB, 60, break_run_id=break_run_id, force=force, now=clock(when))
        return
    holder, taken_over, dummy = acquire(path, BOB, 60, break_run_id=break_run_id, force=force, now=clock(when))
    assert holder["user"] == "bob" and taken_over["user"] == "alice"


def test_the_same_run_takes_the_lock_again_and_keeps_its_start(tmp_path):
    path = lock_path(str(tmp_path), "engine-1")
    acquire(path, ALICE, 60, now=clock(1000))
    holder, taken_over, dummy = acquire(path, ALICE, 60, now=clock(1030))
    assert taken_over is None and holder["since"] == 1000 and holder["expires"] == 1090


def test_release_frees_only_the_holders_lock_and_keeps_the_file(tmp_path):
    path = lock_path(str(tmp_path), "engine-1")
    acquire(path, ALICE, 60, now=clock(1000))
    assert release(path, BOB["run_id"]) == (False, inspect(path))
    assert release(path, ALICE["run_id"]) == (True, None)
    assert os.path.exists(path) and inspect(path) is None
    assert release(path, ALICE["run_id"]) == (False, None)
    assert acquire(path, BOB, 60, now=clock(1001))[0]["user"] == "bob"


def test_check_mode_inspects_without_creating_anything(tmp_path):
    path = lock_path(str(tmp_path / "state"), "engine-1")
    holder, dummy, dummy2 = acquire(path, ALICE, 60, check_mode=True, now=clock(1000))
    assert holder["user"] == "alice" and not os.path.exists(path)


def test_a_corrupt_lock_file_is_an_error_not_a_free_lock(tmp_path):
    path = lock_path(str(tmp_path), "engine-1")
    with open(path, "w") as handle:
        handle.write("{not json")
    with pytest.raises(LockError, match="not JSON"):
        acquire(path, ALICE, 60)


def test_concurrent_acquires_let_exactly_one_run_win(tmp_path):
    path = lock_path(str(tmp_path), "engine-1")
    winners, barrier = [], threading.Barrier(8)

    def contender(n):
        barrier.wait()
        try:
            acquire(path, {"run_id": "run-%d" % n}, 60)
            winners.append(n)
        except LockHeld:
            pass

    threads = [threading.Thread(target=contender, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(winners) == 1 and inspect(path)["run_id"] == "run-%d" % winners[0]


def test_a_checkpoint_resumes_only_an_unfinished_run_to_the_same_target(tmp_path):
    path = cp.checkpoint_path(str(tmp_path), "engine-1", "rollback")
    record, resumed, superseded = cp.open_run(cp.load(path), "rollback", "engine:2.3.1", "run-1", 100.0)
    assert not resumed and superseded is None
    record = cp.record_phase(record, "planned", {"snapshot": "S1", "data_rollback": True}, 101.0)
    record = cp.record_phase(record, "staged", {"export_dir": "/x"}, 104.5)
    cp.save(path, record)
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"

    again, resumed, dummy = cp.open_run(cp.load(path), "rollback", "engine:2.3.1", "run-2", 200.0)
    assert resumed and again["run_ids"] == ["run-1", "run-2"] and again["data"]["snapshot"] == "S1"
    assert cp.phases_done(again) == ["planned", "staged"]
    assert cp.timings(again) == {"planned": 1.0, "staged": 3.5}

    other, resumed, superseded = cp.open_run(cp.load(path), "rollback", "engine:2.3.2", "run-3", 300.0)
    assert not resumed and superseded["target"] == "engine:2.3.1" and other["phases"] == []

    finished = cp.record_phase(again, "done", {}, 210.0)
    assert finished["status"] == "done" and not cp.resumable(finished, "engine:2.3.1")


def test_initial_data_starts_a_new_record_and_a_resumed_one_keeps_its_own(tmp_path):
    path = cp.checkpoint_path(str(tmp_path), "engine-1", "upgrade")
    record, resumed, dummy = cp.open_run(cp.load(path), "upgrade", "engine:2.4.0", "run-1", 100.0,
                                         {"snapshot_planned": "S1"})
    assert not resumed and record["data"] == {"snapshot_planned": "S1"}
    cp.save(path, cp.record_phase(record, "planned", {}, 101.0))
    again, resumed, dummy = cp.open_run(cp.load(path), "upgrade", "engine:2.4.0", "run-2", 200.0,
                                        {"snapshot_planned": "S2"})
    assert resumed and again["data"] == {"snapshot_planned": "S1"}


def test_a_corrupt_checkpoint_is_reported(tmp_path):
    path = str(tmp_path / "engine-1.rollback.json")
    with open(path, "w") as handle:
        handle.write("{")
    with pytest.raises(cp.CheckpointError, match="not JSON"):
        cp.load(path)


def test_the_ledger_appends_whole_lines_from_parallel_writers_and_skips_a_torn_tail(tmp_path):
    path = str(tmp_path / "ledger" / "engine_ops.jsonl")
    threads = [threading.Thread(target=lambda n=n: [append(path, {"n": n, "i": i, "pad": "x" * 5000}) for i in range(20)])
               for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with open(path, "a") as handle:
        handle.write('{"torn": ')
    entries = read(path)
    assert len(entries) == 80 and sorted((e["n"], e["i"]) for e in entries) == [(n, i) for n in range(4) for i in range(20)]
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    assert oct(os.stat(os.path.dirname(path)).st_mode & 0o777) == "0o700"
    assert json.loads(open(path).readline())["pad"] == "x" * 5000


def test_external_calls_are_bad_window_rows_naming_a_registered_mcp_server(tmp_path):
    from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain.restore import external_calls
    export = tmp_path / "export"
    export.mkdir()
    (export / "observability_events.jsonl").write_text(
        '{"kind": "tool.call", "payload": "{\\"server\\": \\"mcp-files\\", \\"tool\\": \\"read_file\\"}"}\n'
        '{"kind": "turn.completed", "payload": "{}"}\n')
    (export / "trajectories.jsonl").write_text('{"steps": "[{\\"server\\": \\"mcp-search\\"}, {\\"server\\": \\"mcp-files\\"}]"}\n')
    (export / "server_registry.jsonl").write_text('{"name": "mcp-files"}\n')  # the registry itself is no call
    found = external_calls(str(export), ["mcp-files", "mcp-search"])
    assert found["total"] == 2 and found["by_server"] == {"mcp-files": 2, "mcp-search": 1}
    assert [r["table"] for r in found["rows"]] == ["observability_events", "trajectories"]
    assert external_calls(str(export), [])["total"] == 0
