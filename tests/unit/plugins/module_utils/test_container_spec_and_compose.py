import pytest

from ansible_collections.engine_ops.lifecycle.plugins.module_utils._docker.compose import ComposeError, set_service_image
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._docker.container_spec import (
    own_config, recreate_spec, settings_view)

IMAGE = {"Id": "sha256:old", "Config": {
    "Env": ["PATH=/usr/bin", "ENGINE_VERSION=2.4.0", "ENGINE_PORT=8000"], "Cmd": ["python3", "-m", "engine"],
    "Entrypoint": None, "WorkingDir": "/app", "User": "engine", "Labels": {"org.opencontainers.image.version": "2.4.0"},
    "Healthcheck": {"Test": ["CMD", "true"]}, "StopSignal": "SIGTERM", "ExposedPorts": {"8000/tcp": {}},
    "Volumes": {"/data": {}}}}


def container(**config):
    cfg = dict(IMAGE["Config"], Hostname="0123456789ab", Image="engine:2.4.0")
    cfg.update(config)
    return {"Id": "0123456789abcdef", "Name": "/engine", "Image": "sha256:old", "Config": cfg,
            "State": {"Running": True, "StartedAt": "2026-11-28T10:00:00.5Z"},
            "HostConfig": {"NetworkMode": "app-net", "RestartPolicy": {"Name": "unless-stopped"},
                           "Binds": ["brain:/data"], "PortBindings": {"8000/tcp": [{"HostIp": "127.0.0.1",
                                                                                    "HostPort": "18000"}]},
                           "Memory": 1073741824, "LogConfig": {"Type": "json-file", "Config": {"max-size": "10m"}}},
            "Mounts": [{"Type": "volume", "Name": "brain", "Destination": "/data", "RW": True}],
            "NetworkSettings": {"Networks": {
                "app-net": {"Aliases": ["engine", "0123456789ab"], "IPAMConfig": None},
                "monitoring": {"Aliases": ["engine-metrics"], "IPAMConfig": {"IPv4Address": "10.9.0.5"}}}}}


def test_values_that_came_from_the_image_are_left_to_the_new_image():
    own = own_config(container(Env=IMAGE["Config"]["Env"] + ["LLM_API_KEY=secret", "ENGINE_PORT=9000"]), IMAGE)
    assert own["Env"] == ["LLM_API_KEY=secret", "ENGINE_PORT=9000"]
    for key in ("Cmd", "WorkingDir", "User", "Healthcheck", "StopSignal", "ExposedPorts", "Volumes", "Hostname"):
        assert key not in own, key


@pytest.mark.parametrize("key, value", [
    ("Cmd", ["python3", "-m", "engine", "--verbose"]), ("Entrypoint", ["/tini", "--"]), ("User", "1000:1000"),
    ("WorkingDir", "/srv"), ("Healthcheck", {"Test": ["CMD", "curl", "-f", "http://127.0.0.1:8000/health"]}),
    ("StopSignal", "SIGINT"), ("StopTimeout", 45), ("Hostname", "engine-prod"),
])
def test_settings_made_on_the_container_are_kept(key, value):
    assert own_config(container(**{key: value}), IMAGE)[key] == value


def test_labels_keep_compose_and_own_labels_but_not_image_or_bookkeeping_ones():
    labels = {"org.opencontainers.image.version": "2.4.0", "com.docker.compose.project": "support",
              "com.docker.compose.service": "engine", "team": "agents",
              "engine_ops.lifecycle.previous_image": "engine:2.3.1"}
    assert own_config(container(Labels=labels), IMAGE)["Labels"] == {
        "com.docker.compose.project": "support", "com.docker.compose.service": "engine", "team": "agents"}


def test_recreate_spec_keeps_host_config_networks_and_adds_labels():
    body, extra = recreate_spec(container(), IMAGE, "engine:2.3.1", {"engine_ops.lifecycle.previous_image": "x"})
    assert body["Image"] == "engine:2.3.1"
    assert body["HostConfig"]["RestartPolicy"] == {"Name": "unless-stopped"} and body["HostConfig"]["Memory"] == 1 << 30
    assert body["HostConfig"]["Binds"] == ["brain:/data"]
    assert body["NetworkingConfig"] == {"EndpointsConfig": {"app-net": {"Aliases": ["engine"]}}}
    assert extra == {"monitoring": {"Aliases": ["engine-metrics"], "IPAMConfig": {"IPv4Address": "10.9.0.5"}}}
    assert body["Labels"] == {"engine_ops.lifecycle.previous_image": "x"}


def test_anonymous_volume_is_carried_over_by_name():
    c = container()
    c["HostConfig"]["Binds"] = None
    c["Mounts"] = [{"Type": "volume", "Name": "3f9a" * 16, "Destination": "/data", "RW": True}]
    body, dummy = recreate_spec(c, IMAGE, "engine:2.3.1")
    assert body["HostConfig"]["Binds"] == ["%s:/data" % ("3f9a" * 16)]


def test_host_network_has_no_endpoints():
    c = container()
    c["HostConfig"]["NetworkMode"] = "host"
    body, extra = recreate_spec(c, IMAGE, "engine:2.3.1")
    assert "NetworkingConfig" not in body and extra == {}


def test_settings_view_ignores_bookkeeping_labels():
    plain = container()
    marked = container(Labels=dict(IMAGE["Config"]["Labels"], **{"engine_ops.lifecycle.replaced_at": "now"}))
    assert settings_view(plain, IMAGE) == settings_view(marked, IMAGE)


COMPOSE = """\
# Support agent stack
services:
  db:
    image: postgres:15   # keep in step with prod
  engine:
    # the agent runtime
    image: "registry.example.com/september-engine:2.4.0"  # bumped by CI
    environment:
      image: not-this-one
    ports:
      - "127.0.0.1:8000:8000"
volumes:
  brain: {}
"""


def test_compose_image_is_changed_and_everything_else_kept():
    text, old = set_service_image(COMPOSE, "engine", "registry.example.com/september-engine:2.3.1")
    assert old == "registry.example.com/september-engine:2.4.0"
    expected = COMPOSE.replace('"registry.example.com/september-engine:2.4.0"',
                               '"registry.example.com/september-engine:2.3.1"')
    assert text == expected


def test_compose_other_service_untouched_and_unquoted_stays_unquoted():
    text, old = set_service_image(COMPOSE, "db", "postgres:15.6")
    assert old == "postgres:15" and "    image: postgres:15.6   # keep in step with prod\n" in text


@pytest.mark.parametrize("text, service, message", [
    (COMPOSE, "worker", "not in the compose file"),
    ("services:\n  engine:\n    build: .\n", "engine", "no 'image:' key"),
    ("version: '3'\n", "engine", "no top-level 'services:'"),
])
def test_compose_errors(text, service, message):
    with pytest.raises(ComposeError, match=message):
        set_service_image(text, service, "engine:2.3.1")


def test_host_network_hostname_is_not_a_setting():
    c = container(Hostname="build-host")
    c["HostConfig"]["NetworkMode"] = "host"
    assert "Hostname" not in own_config(c, IMAGE)


@pytest.mark.parametrize("entry, shown", [
    ("LLM_API_KEY=sk-live-1", "LLM_API_KEY=<redacted>"), ("OPENAI_API_KEY=sk", "OPENAI_API_KEY=<redacted>"),
    ("AD_ENCRYPTION_KEY=k", "AD_ENCRYPTION_KEY=<redacted>"), ("ENGINE_KEY_HASH=ab12", "ENGINE_KEY_HASH=<redacted>"),
    ("SLACK_TOKEN=x", "SLACK_TOKEN=<redacted>"),
    ("DATABASE_URL=postgresql://engine:s3cret@db:5432/brain", "DATABASE_URL=postgresql://engine:<redacted>@db:5432/brain"),
    ("ENGINE_PORT=9000", "ENGINE_PORT=9000"), ("FLAG", "FLAG"),
])
def test_secrets_never_reach_the_diff(entry, shown):
    from ansible_collections.engine_ops.lifecycle.plugins.module_utils._docker.container_spec import redact_env
    assert redact_env([entry]) == [shown]
    view = settings_view(container(Env=[entry]), IMAGE)
    assert view["config"]["Env"] == [shown]


# -- round-trip edits: anchors, merge keys, flow style, variables ---------------------------------------------------
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._docker.compose import (  # noqa: E402
    plan_image_change, set_env_value)

SHAPES = """# the support agent
x-common: &common
  restart: unless-stopped
  image: engine:2.4.0
x-img: &img engine:2.4.0
services:
  merged:
    <<: *common
  own:
    <<: *common
    image: 'engine:2.4.0'   # wins over the merged one
  flow: {image: engine:2.4.0, restart: always}
  aliased:
    image: *img
  anchored:
    image: &mine engine:2.4.0
  tagged:
    image: "registry.example.com:5000/engine:${ENGINE_TAG:-2.4.0}"
  whole:
    image: ${ENGINE_IMAGE}
  two:
    image: ${REGISTRY}/engine:${ENGINE_TAG}
  plus:
    image: engine:${ENGINE_TAG:+2.4.0}
  dollars:
    image: engine:2.4.0$$x
"""


@pytest.mark.parametrize("service, line", [
    ("own", "    image: 'engine:2.3.1'   # wins over the merged one\n"),
    ("flow", "  flow: {image: engine:2.3.1, restart: always}\n"),
])
def test_only_the_services_own_value_changes_in_its_own_style(service, line):
    text, old = set_service_image(SHAPES, service, "engine:2.3.1")
    assert old == "engine:2.4.0" and line in text
    changed = [(a, b) for a, b in zip(SHAPES.splitlines(True), text.splitlines(True)) if a != b]
    assert len(changed) == 1 and changed[0][1] == line


@pytest.mark.parametrize("service, message", [
    ("merged", "takes its image from a merge key"),
    ("aliased", "written as a YAML alias"),
    ("anchored", "written as a YAML anchor"),
])
def test_shared_values_are_refused_naming_what_to_change(service, message):
    with pytest.raises(ComposeError, match=message):
        set_service_image(SHAPES, service, "engine:2.3.1")


def test_an_image_in_a_variable_is_changed_in_the_env_file():
    env = "# release pins\nENGINE_TAG=2.4.0   # set by the deploy job\nOTHER='x'\n"
    planned = plan_image_change(SHAPES, "tagged", "registry.example.com:5000/engine:2.3.1", env, "/srv/.env")
    assert planned["compose_text"] == SHAPES and planned["variable"] == "ENGINE_TAG"
    assert planned["env_text"] == "# release pins\nENGINE_TAG=2.3.1   # set by the deploy job\nOTHER='x'\n"
    whole = plan_image_change(SHAPES, "whole", "engine@sha256:" + "a" * 64, 'ENGINE_IMAGE="engine:2.4.0"\n')
    assert whole["env_text"] == 'ENGINE_IMAGE="engine@sha256:%s"\n' % ("a" * 64)


@pytest.mark.parametrize("service, target, env, message", [
    ("tagged", "registry.example.com:5000/engine:2.3.1", "OTHER=1\n", "which the env file /srv/.env does not set"),
    ("tagged", "registry.example.com:5000/engine:2.3.1", None, "there is no env file /srv/.env to set ENGINE_TAG in"),
    ("tagged", "registry.example.com:5000/engine@sha256:" + "b" * 64, "ENGINE_TAG=2.4.0\n",
     "no value of ENGINE_TAG makes it"),
    ("two", "registry/engine:2.3.1", "REGISTRY=r\nENGINE_TAG=t\n", "made of several variables"),
    ("plus", "engine:2.3.1", "ENGINE_TAG=1\n", "can't be set to engine:2.3.1"),
])
def test_variables_that_cannot_express_the_target_are_refused(service, target, env, message):
    with pytest.raises(ComposeError, match=message):
        plan_image_change(SHAPES, service, target, env, "/srv/.env")


def test_a_literal_dollar_is_not_a_variable():
    planned = plan_image_change(SHAPES, "dollars", "engine:2.3.1")
    assert planned["variable"] is None and "    image: engine:2.3.1\n" in planned["compose_text"]


def test_the_last_assignment_in_the_env_file_is_the_one_changed():
    assert set_env_value("A=1\nexport A=2\n", "A", "3") == "A=1\nexport A=3\n"


def test_invalid_yaml_is_named():
    with pytest.raises(ComposeError, match="not valid YAML"):
        set_service_image("services:\n  engine: [\n", "engine", "engine:2.3.1")
