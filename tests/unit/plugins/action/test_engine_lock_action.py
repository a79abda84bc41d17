"""The controller side of engine_lock: who is asking, and when a holder is provably gone."""

import os
import socket
import subprocess

from ansible_collections.engine_ops.lifecycle.plugins.action.engine_lock import controller_owner, holder_is_dead


def test_the_owner_is_this_controller_process_and_names_the_awx_job():
    owner = controller_owner({"awx_job_id": 42, "awx_user_name": "oncall"})
    assert owner["pid"] == os.getppid() and owner["controller"] == socket.gethostname()
    assert owner["run_id"] == "%s:%d:%s" % (owner["controller"], owner["pid"], owner["pid_start"])
    assert (owner["user"], owner["awx_job_id"]) == ("oncall", "42")


def test_a_holder_is_dead_only_when_provably_gone_from_this_controller():
    host = socket.gethostname()
    me = controller_owner({})
    assert not holder_is_dead(me, host)                              # alive
    assert not holder_is_dead(dict(me, controller="elsewhere"), host)  # cannot tell: another controller
    assert holder_is_dead(dict(me, pid_start="1"), host)             # pid reused by another process
    gone = subprocess.Popen(["true"])
    gone.wait()
    assert holder_is_dead(dict(me, pid=gone.pid), host)
    assert not holder_is_dead({}, host)
