"""private_file's work (module and in-process action share it): private modes, atomic writes, refusals."""

import os
import stat

import pytest

from ansible_collections.engine_ops.lifecycle.plugins.module_utils._state.private_file import PrivateFileError, apply


def params(path, **kwargs):
    return dict({"path": str(path), "state": "file", "content": None, "mode": None}, **kwargs)


def mode(path):
    return stat.S_IMODE(os.lstat(str(path)).st_mode)


def test_writes_private_files_in_private_new_directories_and_only_when_content_differs(tmp_path):
    target = tmp_path / "reports" / "postmortems" / "engine-1.md"
    planned = apply(params(target, content="# draft\n"), check_mode=True)
    assert planned["changed"] and not target.exists() and not (tmp_path / "reports").exists()
    written = apply(params(target, content="# draft\n"), check_mode=False)
    assert written["changed"] and "diff" not in written  # the diff only when asked
    assert target.read_text() == "# draft\n" and mode(target) == 0o600
    assert mode(tmp_path / "reports") == 0o700 and mode(tmp_path / "reports" / "postmortems") == 0o700
    assert not apply(params(target, content="# draft\n"), check_mode=False)["changed"]
    assert apply(params(target, content="# second\n"), check_mode=False)["changed"]
    assert target.read_text() == "# second\n"


def test_makes_an_existing_file_or_directory_private(tmp_path):
    archive = tmp_path / "engine-1.tar.gz"
    archive.write_bytes(b"x")
    os.chmod(str(archive), 0o644)
    result = apply(params(archive), check_mode=False, diff=True)
    assert result["changed"] and mode(archive) == 0o600
    assert result["diff"]["before"]["mode"] == "0644" and result["diff"]["after"]["mode"] == "0600"
    directory = tmp_path / "diagnostics"
    assert apply(params(directory, state="directory"), check_mode=False)["changed"] and mode(directory) == 0o700
    assert not apply(params(directory, state="directory"), check_mode=False)["changed"]


@pytest.mark.parametrize("setup, kwargs, message", [
    ("link", {}, "is a symbolic link; it is not followed"),
    ("dir", {"content": "x"}, "is a directory, not a file"),
    (None, {}, "does not exist"),
    (None, {"content": "x", "mode": "0644"}, "gives other users access"),
    (None, {"content": "x", "mode": "rw"}, "not an octal mode"),
])
def test_refusals_change_nothing(tmp_path, setup, kwargs, message):
    path = tmp_path / "target"
    outside = tmp_path / "outside"
    outside.write_text("keep")
    os.chmod(str(outside), 0o644)
    if setup == "link":
        os.symlink(str(outside), str(path))
    elif setup == "dir":
        path.mkdir()
    with pytest.raises(PrivateFileError, match=message):
        apply(params(path, **kwargs), check_mode=False)
    assert outside.read_text() == "keep" and mode(outside) == 0o644
    assert setup is not None or not path.exists()
