"""One error base: every error the collection raises carries `changed` and its partial result to fail_action."""

import pytest

from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain.base import BrainError
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._module import EngineOpsModule
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._errors import EngineDockerError, EngineOpsError, HostError
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._docker.image_switch import SwitchError
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._state.lock import LockError
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain.restore import RestoreError
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain.store import StoreError


class Failed(Exception):
    pass


class Recorder:
    """What fail_action needs of a module: its action name and fail_json."""
    action = "brain_restore"
    fail_action = EngineOpsModule.fail_action

    def fail_json(self, **kwargs):
        raise Failed(kwargs)


@pytest.mark.parametrize("error", [BrainError, EngineDockerError, SwitchError, RestoreError, StoreError, LockError,
                                   HostError])
def test_every_error_is_an_engine_ops_error(error):
    assert issubclass(error, EngineOpsError)
    assert error("x").changed is False and error("x").result == {}


def test_an_error_brings_its_own_changed_and_partial_result():
    with pytest.raises(Failed) as info:
        Recorder().fail_action("swap", RestoreError("verify failed", changed=True, result={"aside": "b.pre", "msg": "x"}))
    sent = info.value.args[0]
    assert sent == {"msg": "brain_restore: swap: verify failed", "changed": True, "aside": "b.pre"}


def test_given_values_win_and_nothing_changed_is_said():
    with pytest.raises(Failed) as info:
        Recorder().fail_action("plan", StoreError("no such snapshot"), plan=["stage"])
    assert info.value.args[0] == {"msg": "brain_restore: plan: no such snapshot; nothing was changed", "changed": False,
                                  "plan": ["stage"]}
    with pytest.raises(Failed) as info:
        Recorder().fail_action("swap", RestoreError("x", changed=True, result={"plan": ["old"]}), changed=False,
                               plan=["new"])
    assert info.value.args[0]["changed"] is False and info.value.args[0]["plan"] == ["new"]


def test_run_turns_any_escaped_error_into_one_failure(monkeypatch):
    from ansible_collections.engine_ops.lifecycle.plugins.module_utils import _module as _common

    module = Recorder()
    monkeypatch.setattr(_common.EngineOpsModule, "current", module)

    def converted():
        raise HostError("freezing /srv/brain failed: fsfreeze: Operation not supported")

    with pytest.raises(Failed) as info:
        _common.run(converted)
    assert info.value.args[0]["msg"] == ("brain_restore: stopped: freezing /srv/brain failed: fsfreeze: Operation not "
                                         "supported; nothing was changed")

    def unconverted():
        raise KeyError("volume_snapshot")

    with pytest.raises(Failed) as info:
        _common.run(unconverted)
    sent = info.value.args[0]
    assert sent["msg"].startswith("brain_restore: unexpected KeyError: 'volume_snapshot'; this step may have changed")
    assert "Traceback" in sent["exception"]

    def exits():
        raise SystemExit(0)  # exit_json and fail_json end the process this way: never caught

    with pytest.raises(SystemExit):
        _common.run(exits)
