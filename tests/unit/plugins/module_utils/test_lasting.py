"""Whether the controller's ledger, reports and drill history can be written and will outlive the run."""

import os

import pytest

from ansible_collections.engine_ops.lifecycle.plugins.module_utils._state.lasting import (
    check, mount_of, throwaway_reason, writable_problem)

EE_MOUNTS = """\
1046 985 0:52 / / rw,relatime - overlay overlay rw,lowerdir=/var/lib/containers/l/A,upperdir=/u,workdir=/w
1047 1046 0:55 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw
1050 1046 253:1 /srv/engine_ops /var/lib/engine_ops rw,relatime - ext4 /dev/mapper/data rw
1051 1046 0:60 / /run/secrets rw - tmpfs tmpfs rw
"""


@pytest.fixture
def mountinfo(tmp_path):
    path = tmp_path / "mountinfo"
    path.write_text(EE_MOUNTS)
    return str(path)


def test_the_mount_holding_a_path_is_the_longest_prefix(mountinfo):
    assert mount_of("/var/lib/engine_ops/ledger.jsonl", mountinfo) == ("/var/lib/engine_ops", "ext4")
    assert mount_of("/var/lib/engine_ops_other/x", mountinfo) == ("/", "overlay")  # a prefix, not a parent
    assert mount_of("/runner/.engine_ops", mountinfo) == ("/", "overlay")


@pytest.mark.parametrize("path, in_job, expected", [
    ("/runner/.engine_ops/ledger.jsonl", True, "the job's home directory /runner"),
    ("/tmp/engine_ops/ledger.jsonl", True, "under /tmp, which the job's container throws away"),
    ("/tmp/engine_ops/ledger.jsonl", False, "under /tmp, which a reboot or tmp cleaner empties"),
    ("/opt/engine_ops/ledger.jsonl", True, "the execution environment container's own filesystem (overlay on /)"),
    ("/var/lib/engine_ops/ledger.jsonl", True, None),  # a mounted volume lasts
    ("/runner/.engine_ops/ledger.jsonl", False, None),  # outside a job a home directory lasts
])
def test_what_a_job_throws_away(path, in_job, expected, mountinfo):
    reason = throwaway_reason(path, in_job, environ={"HOME": "/runner"}, mountinfo=mountinfo)
    if expected is None:
        assert reason is None
    else:
        assert expected in reason, reason


def test_writable_problems_are_named_and_nothing_is_created(tmp_path):
    afile = tmp_path / "a-file"
    afile.write_text("x")
    assert writable_problem(str(tmp_path / "new" / "deeper" / "ledger.jsonl"), "file") is None
    assert not (tmp_path / "new").exists()
    assert "is not a directory, so" in writable_problem(str(afile / "ledger.jsonl"), "file")
    assert "exists and is not a directory" in writable_problem(str(afile), "directory")
    assert "is a directory" in writable_problem(str(tmp_path), "file")
    if os.geteuid() != 0:  # root may write anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        assert "not writable" in writable_problem(str(locked / "ledger.jsonl"), "file")


def test_check_reports_each_path(tmp_path, mountinfo):
    afile = tmp_path / "a-file"
    afile.write_text("x")
    found = check({"ledger": ("/runner/.engine_ops/ledger.jsonl", "file"),
                   "reports": (str(afile / "reports"), "directory"), "drill_history": (None, "file")},
                  in_job=True, environ={"HOME": "/runner"}, mountinfo=mountinfo)
    assert not found["lasting"] and sorted(found["paths"]) == ["ledger", "reports"]
    assert found["problems"][0].startswith("the ledger (/runner/.engine_ops/ledger.jsonl) will not outlive this run")
    assert found["unwritable"] == ["the reports (%s) can't be written: %s is not a directory, so %s can't be made"
                                   % (afile / "reports", afile, afile / "reports")]
