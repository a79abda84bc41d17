import pytest

from ansible_collections.engine_ops.lifecycle.plugins.module_utils._docker.version import (
    TargetError, parse_version, split_reference, target_reference)


@pytest.mark.parametrize("given, expected", [
    ("v2.3.1", "2.3.1"), ("2.3.1", "2.3.1"), ("V2.3.1", "2.3.1"), (" 2.4.0 ", "2.4.0"),
    ("2.4.0-broken-health", "2.4.0-broken-health"), ("10.0.0-rc.1", "10.0.0-rc.1"),
])
def test_versions_with_or_without_v(given, expected):
    assert parse_version(given) == expected


@pytest.mark.parametrize("given, message", [
    ("latest", "'latest' is never a valid rollback target"), ("vlatest", "'latest' is never"),
    ("LATEST", "'latest' is never"), ("", "version is empty"), (None, "version is empty"),
    ("2.3", "not a semantic version"), ("v2.3.1.4", "not a semantic version"), ("02.3.1", "not a semantic version"),
    ("2.3.1;rm -rf /", "not a semantic version"), ("2.3.1+build.5", "build metadata"),
])
def test_bad_versions_are_refused_with_the_reason(given, message):
    with pytest.raises(TargetError, match=message):
        parse_version(given)


@pytest.mark.parametrize("ref, expected", [
    ("engine:2.3.1", ("engine", "2.3.1", None)),
    ("september-engine:2.3.1", ("september-engine", "2.3.1", None)),
    ("registry.example.com/september-engine:2.3.1", ("registry.example.com/september-engine", "2.3.1", None)),
    ("registry:5000/team/engine:v2", ("registry:5000/team/engine", "v2", None)),
    ("registry:5000/team/engine", ("registry:5000/team/engine", None, None)),
    ("engine@sha256:" + "a" * 64, ("engine", None, "sha256:" + "a" * 64)),
    ("engine:2.3.1@sha256:" + "b" * 64, ("engine", "2.3.1", "sha256:" + "b" * 64)),
])
def test_split_reference(ref, expected):
    parts = split_reference(ref)
    assert (parts["repository"], parts["tag"], parts["digest"]) == expected


@pytest.mark.parametrize("kwargs, expected", [
    ({"version": "v2.3.1", "repository": "engine"}, "engine:2.3.1"),
    ({"version": "2.3.1", "repository": "registry.example.com/september-engine"},
     "registry.example.com/september-engine:2.3.1"),
    ({"image": "engine:2.4.0"}, "engine:2.4.0"),
    ({"image": "engine@sha256:" + "c" * 64}, "engine@sha256:" + "c" * 64),
])
def test_target_reference(kwargs, expected):
    assert target_reference(**kwargs) == expected


@pytest.mark.parametrize("kwargs, message", [
    ({"image": "engine:latest"}, "'latest' is never"),
    ({"image": "engine"}, "no tag, which means 'latest'"),
    ({"version": "latest", "repository": "engine"}, "'latest' is never"),
    ({"version": "2.3.1"}, "needs a repository"),
    ({"version": "2.3.1", "repository": "engine:2.4.0"}, "must not carry a tag"),
    ({"image": "engine@sha256:abc"}, "malformed digest"),
    ({"image": "engine:bad tag"}, "white space"),
    ({}, "exactly one"),
    ({"version": "2.3.1", "repository": "engine", "image": "engine:2.3.1"}, "exactly one"),
])
def test_target_reference_refuses(kwargs, message):
    with pytest.raises(TargetError, match=message):
        target_reference(**kwargs)
