"""Every relative link of the shipped docs resolves inside the collection tarball (bench/, tests/ are not shipped)."""

import os
import re
import subprocess
import tarfile

from ansible_run import REPO

LINK = re.compile(r"\]\(([^)\s#]+)(?:#[^)]*)?\)")


def test_every_relative_link_in_the_shipped_docs_resolves_in_the_tarball(tmp_path):
    subprocess.run(["ansible-galaxy", "collection", "build", "--output-path", str(tmp_path), REPO], check=True,
                   capture_output=True)
    [tarball] = [n for n in os.listdir(str(tmp_path)) if n.endswith(".tar.gz")]
    with tarfile.open(str(tmp_path / tarball)) as archive:
        shipped = set(os.path.normpath(m.name) for m in archive.getmembers())
    pages = [name for name in shipped if name.endswith(".md")]
    assert "README.md" in pages and "docs/performance.md" in pages
    broken = []
    for page in pages:
        with open(os.path.join(REPO, page), encoding="utf-8") as handle:
            text = handle.read()
        for target in LINK.findall(text):
            if re.match(r"^[a-z]+:", target):  # http:, https:, mailto:
                continue
            resolved = os.path.normpath(os.path.join(os.path.dirname(page), target))
            if resolved not in shipped:
                broken.append("%s -> %s" % (page, target))
    assert not broken, "links to files the tarball does not have: %s" % broken
