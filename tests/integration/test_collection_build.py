"""`ansible-galaxy collection build` ships only runtime content, and the tarball installs offline."""

import os
import subprocess
import tarfile

from ansible_run import REPO

RUNTIME_TOP_LEVEL = {"MANIFEST.json", "FILES.json", "README.md", "COPYING", "CHANGELOG.rst", "requirements.txt",
                     "meta", "plugins", "roles", "playbooks", "docs", "changelogs",
                     "extensions", "bindep.txt"}  # extensions/awx: the AWX objects; bindep.txt: for EE introspection


def test_build_ships_only_runtime_content_and_installs(tmp_path):
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(tmp_path / "installed"))
    subprocess.run(["ansible-galaxy", "collection", "build", "--output-path", str(tmp_path), REPO],
                   check=True, env=env, capture_output=True)
    tarball = tmp_path / "engine_ops-lifecycle-0.1.0.tar.gz"
    with tarfile.open(tarball) as archive:
        names = archive.getnames()
    top = {name.split("/", 1)[0] for name in names}
    assert top <= RUNTIME_TOP_LEVEL, top - RUNTIME_TOP_LEVEL
    assert {"README.md", "meta/runtime.yml", "COPYING"} <= set(names)
    assert not [n for n in names if n.startswith("changelogs/fragments")]

    subprocess.run(["ansible-galaxy", "collection", "install", "--offline", str(tarball),
                    "-p", str(tmp_path / "installed")], check=True, env=env, capture_output=True)
    listed = subprocess.run(["ansible-galaxy", "collection", "list", "engine_ops.lifecycle", "--format", "json"],
                            check=True, env=env, capture_output=True, text=True).stdout
    assert '"engine_ops.lifecycle": {"version": "0.1.0"}' in listed
