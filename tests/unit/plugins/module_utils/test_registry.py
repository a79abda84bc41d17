"""Registry credentials as the docker CLI finds them, and going back to a recorded build by ID or digest."""

import base64
import json
import subprocess

import pytest

from ansible_collections.engine_ops.lifecycle.plugins.module_utils._docker.image_switch import (
    SwitchError, image_record, recorded_build, resolve_target, run_reference)
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._docker.registry_auth import (
    RegistryAuthError, credentials, header, registry_of)

from fake_docker import FakeDocker

REG = "127.0.0.1:5999"
REPO = REG + "/engine"
OLD_DIGEST = REPO + "@sha256:" + "a" * 64


def write_config(tmp_path, config):
    (tmp_path / "config.json").write_text(json.dumps(config) if not isinstance(config, str) else config)
    return {"DOCKER_CONFIG": str(tmp_path)}


@pytest.mark.parametrize("repository, registry", [
    ("engine", "docker.io"), ("library/engine", "docker.io"), ("ops/engine", "docker.io"),
    ("127.0.0.1:5999/engine", "127.0.0.1:5999"), ("registry.example.com/team/engine", "registry.example.com"),
    ("localhost/engine", "localhost"),
])
def test_the_registry_of_a_repository(repository, registry):
    assert registry_of(repository) == registry


def test_credentials_from_the_auths_docker_login_writes(tmp_path):
    environ = write_config(tmp_path, {"auths": {
        "https://" + REG + "/v1/": {"auth": base64.b64encode(b"ops:s3:cret").decode()},
        "https://index.docker.io/v1/": {"auth": base64.b64encode(b"hub:pw").decode()}}})
    found, source = credentials(REG, environ=environ)
    assert found == {"username": "ops", "password": "s3:cret", "serveraddress": REG}
    assert "config.json" in source and REG in source
    assert credentials("docker.io", environ=environ)[0]["username"] == "hub"
    assert credentials("other.example:5000", environ=environ)[0] is None


def test_options_win_over_the_config_and_no_config_means_no_credentials(tmp_path):
    environ = write_config(tmp_path, {"auths": {REG: {"auth": base64.b64encode(b"ops:x").decode()}}})
    assert credentials(REG, "me", "pw", environ=environ) == (
        {"username": "me", "password": "pw", "serveraddress": REG}, "registry_username")
    found, source = credentials(REG, environ={"DOCKER_CONFIG": str(tmp_path / "none")})
    assert found is None and "no credentials" in source


def test_a_credential_helper_is_asked_for_its_registry(tmp_path):
    environ = write_config(tmp_path, {"credHelpers": {REG: "pass"}, "credsStore": "desktop"})
    asked = []

    def run(argv, **kwargs):
        asked.append((argv, kwargs["input"]))
        return subprocess.CompletedProcess(argv, 0, json.dumps({"Username": "<token>", "Secret": "tok"}), "")

    found, source = credentials(REG, environ=environ, run=run)
    assert asked == [(["docker-credential-pass", "get"], REG)]
    assert found == {"identitytoken": "tok", "serveraddress": REG} and source == "credential helper pass"


def test_a_broken_config_or_helper_is_an_error_naming_it(tmp_path):
    with pytest.raises(RegistryAuthError, match="config.json is not valid JSON"):
        credentials(REG, environ=write_config(tmp_path, "{not json"))
    environ = write_config(tmp_path, {"credsStore": "gone"})

    def missing(argv, **kwargs):
        raise OSError(2, "No such file or directory")

    with pytest.raises(RegistryAuthError, match="docker-credential-gone"):
        credentials(REG, environ=environ, run=missing)


def test_the_header_is_urlsafe_base64_json():
    auth = {"username": "ops", "password": "??>>", "serveraddress": REG}
    assert json.loads(base64.urlsafe_b64decode(header(auth))) == auth


# -- the recorded build ------------------------------------------------------------------------------
@pytest.fixture
def fake():
    docker = FakeDocker()
    docker.add_image(REPO + ":2.4.0", "sha256:" + "b" * 64)
    return docker


def old_build():
    return {"Id": "sha256:" + "1" * 64, "RepoDigests": [OLD_DIGEST], "Config": {}}


def engine_after_upgrade(fake, record=None):
    labels = {}
    if record:
        labels = {"engine_ops.lifecycle.previous_image": record["reference"],
                  "engine_ops.lifecycle.previous_image_id": record["id"],
                  "engine_ops.lifecycle.previous_image_digests": json.dumps(record["digests"])}
    return fake.add_container("engine", REPO + ":2.4.0", config={"Labels": labels})


def auth(repository):
    return "HEADER-FOR-" + repository, "test credentials"


def test_a_pruned_build_is_pulled_back_by_its_recorded_digest(fake):
    record = image_record(old_build(), REPO + ":2.3.1")
    engine = engine_after_upgrade(fake, record)
    fake.registry[OLD_DIGEST] = old_build()
    fake.registry[REPO + ":2.3.1"] = {"Id": "sha256:" + "9" * 64, "RepoDigests": [], "Config": {}}  # the moved tag
    target = resolve_target(fake, engine, fake.images[REPO + ":2.4.0"], version="2.3.1", auth=auth,
                            resolve="recorded")
    assert fake.calls == [("pull", OLD_DIGEST)] and fake.pull_auth == ["HEADER-FOR-" + REPO]
    assert target["id"] == record["id"] and target["reference"] == REPO + ":2.3.1"
    assert target["pinned"] == {"id": record["id"], "digest": OLD_DIGEST, "how": "pulled by its recorded digest"}
    assert run_reference(fake, target) == OLD_DIGEST  # the tag is not on the host: run the digest


def test_resolve_tag_ignores_the_record_and_runs_what_the_tag_names(fake):
    engine = engine_after_upgrade(fake, image_record(old_build(), REPO + ":2.3.1"))
    fake.registry[REPO + ":2.3.1"] = {"Id": "sha256:" + "9" * 64, "RepoDigests": [], "Config": {}}
    target = resolve_target(fake, engine, fake.images[REPO + ":2.4.0"], version="2.3.1", auth=auth)
    assert target["id"] == "sha256:" + "9" * 64 and "pinned" not in target


def test_a_recorded_build_still_on_the_host_is_used_even_when_the_tag_moved(fake):
    fake.add_image(REPO + ":2.3.1", "sha256:" + "1" * 64)
    record = image_record(fake.images[REPO + ":2.3.1"], REPO + ":2.3.1")
    fake.add_image(REPO + ":2.3.1", "sha256:" + "9" * 64)  # re-pulled: the tag names another build now
    engine = engine_after_upgrade(fake)
    state = {"history": [{"image": record, "replaced_by": {}, "container_id": "x", "replaced_at": "t"}]}
    assert recorded_build(REPO + ":2.3.1", engine, state) == record
    target = resolve_target(fake, engine, fake.images[REPO + ":2.4.0"], version="v2.3.1", state=state,
                            resolve="recorded")
    assert target["id"] == "sha256:" + "1" * 64 and target["pinned"]["how"] == "present on this host"
    assert fake.calls == []


def test_a_build_gone_from_host_and_registry_is_refused_naming_it(fake):
    record = image_record(old_build(), REPO + ":2.3.1")
    engine = engine_after_upgrade(fake, record)
    fake.pull_error = "manifest for %s not found: manifest unknown: manifest unknown" % OLD_DIGEST
    with pytest.raises(SwitchError) as info:
        resolve_target(fake, engine, fake.images[REPO + ":2.4.0"], version="2.3.1", auth=auth, resolve="recorded")
    text = str(info.value)
    assert REPO + ":2.3.1" in text and OLD_DIGEST in text and "git tag" in text and "nothing was changed" in text
    assert [c[0] for c in fake.calls] == ["pull"]


def test_a_build_never_pushed_and_pruned_is_refused(fake):
    record = dict(image_record(old_build(), REPO + ":2.3.1"), digests=[])
    engine = engine_after_upgrade(fake, record)
    with pytest.raises(SwitchError, match="no repository digest was recorded.*nothing was changed"):
        resolve_target(fake, engine, fake.images[REPO + ":2.4.0"], version="2.3.1", resolve="recorded")
    assert fake.calls == []


@pytest.mark.parametrize("daemon_says, expected", [
    ('Head "http://%s/v2/engine/manifests/2.3.1": no basic auth credentials' % REG, "the registry refused"),
    ("unauthorized: authentication required", "the registry refused"),
    ("manifest for %s:2.3.1 not found: manifest unknown" % REPO, "the registry has no image"),
    ('Get "http://127.0.0.1:5998/v2/": dial tcp 127.0.0.1:5998: connect: connection refused', "could not be pulled"),
])
def test_a_failed_pull_says_why_and_that_nothing_changed(fake, daemon_says, expected):
    engine = engine_after_upgrade(fake)
    fake.pull_error = daemon_says
    with pytest.raises(SwitchError) as info:
        resolve_target(fake, engine, fake.images[REPO + ":2.4.0"], version="2.3.1", auth=auth)
    assert expected in str(info.value) and daemon_says in str(info.value)
    assert str(info.value).endswith("nothing was changed")
    assert fake.pull_auth == ["HEADER-FOR-" + REPO]
