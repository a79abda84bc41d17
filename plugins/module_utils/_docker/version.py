# -*- coding: utf-8 -*-
# Copyright: (c) 2026, engine_ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Engine versions and image references: parsed strictly, `latest` refused."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

SEMVER = re.compile(
    r"^[vV]?(?P<core>(?:0|[1-9][0-9]*)\.(?:0|[1-9][0-9]*)\.(?:0|[1-9][0-9]*))"
    r"(?:-(?P<pre>[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+(?P<build>[0-9A-Za-z.-]+))?$"
)
TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


class TargetError(ValueError):
    """The requested target can't be used; the message names the problem."""


def parse_version(text):
    """Return the version without a leading v ('v2.3.1' -> '2.3.1'), or raise TargetError."""
    if not isinstance(text, str) or not text.strip():
        raise TargetError("version is empty: name the exact version to run, for example 2.3.1")
    value = text.strip()
    if value.lower().lstrip("v") == "latest":
        raise TargetError("'latest' is never a valid rollback target: name the exact version, for example 2.3.1")
    match = SEMVER.match(value)
    if not match:
        raise TargetError("version %r is not a semantic version (MAJOR.MINOR.PATCH with an optional leading v, "
                          "for example v2.3.1 or 2.3.1)" % value)
    if match.group("build"):
        raise TargetError("version %r carries build metadata ('+'), which a Docker tag can't hold" % value)
    return value[1:] if value[0] in "vV" else value


def split_reference(ref):
    """Split 'registry:5000/repo/name:tag@sha256:...' into repository, tag and digest."""
    if not isinstance(ref, str) or not ref.strip() or any(c.isspace() for c in ref.strip()):
        raise TargetError("image reference %r is empty or contains white space" % (ref,))
    rest, digest = ref.strip(), None
    if "@" in rest:
        rest, digest = rest.split("@", 1)
        if not DIGEST.match(digest):
            raise TargetError("image reference %r has a malformed digest %r (expected sha256:<64 hex>)" % (ref, digest))
    tag = None
    slash, colon = rest.rfind("/"), rest.rfind(":")
    if colon > slash:
        rest, tag = rest[:colon], rest[colon + 1:]
        if not TAG.match(tag):
            raise TargetError("image reference %r has an invalid tag %r" % (ref, tag))
    if not rest:
        raise TargetError("image reference %r has no repository" % ref)
    return {"repository": rest, "tag": tag, "digest": digest}


def join_reference(repository, tag=None, digest=None):
    ref = repository
    if tag:
        ref += ":" + tag
    if digest:
        ref += "@" + digest
    return ref


def target_reference(version=None, repository=None, image=None):
    """The image reference a rollback or upgrade should run, refusing anything that floats.

    Either `version` (with `repository`) or a full `image` reference (tag or digest) is given.
    """
    if (version is None) == (image is None):
        raise TargetError("give exactly one of version (with repository) or image")
    if version is not None:
        if not repository:
            raise TargetError("version %r needs a repository to name an image" % version)
        repo = split_reference(repository)
        if repo["tag"] or repo["digest"]:
            raise TargetError("repository %r must not carry a tag or digest; the version is the tag" % repository)
        return join_reference(repo["repository"], parse_version(version))
    parts = split_reference(image)
    if parts["digest"]:
        return image.strip()
    if not parts["tag"]:
        raise TargetError("image %r has no tag, which means 'latest': name an exact version or digest" % image)
    if parts["tag"].lower() == "latest":
        raise TargetError("'latest' is never a valid rollback target (image %r): name an exact version or digest" % image)
    return image.strip()
