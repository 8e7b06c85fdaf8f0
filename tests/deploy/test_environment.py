"""Every server gets what it reads, and nothing it must never get.

What a server reads is declared (settings/processes.py, read through
support.code_env_vars): docker-compose.yml and deploy/k8s must set each of
those variables, never a variable declared ``never_deployed`` for that process
(test or demo switches, the page server's identity secret), and nothing no
process reads. Also: the servers run one profile, the compose stores are the
compose servers, deploy/compose.env.example lists compose's variables, and
the messaging channels are off unless configured.
"""

from __future__ import annotations

import copy
import re
from typing import Any, Dict, List, Mapping, Optional, Set
from urllib.parse import urlsplit

import pytest
import yaml

from settings.processes import PROCESSES
from tests.deploy.interpolation import (
    ENV_NAME,
    interpolate,
)
from tests.deploy.support import (
    ACTIONS_DEPLOYMENT,
    ACTIONS_SERVICES,
    CHANNEL_PREFIXES,
    COMPOSE_CODE,
    COMPOSE_ONLY_CODE,
    CREDENTIALS,
    IDENTITY_SECRET,
    K8S_ARG_REF,
    K8S_CODE,
    K8S_JOB_CODE,
    K8S_WORKLOADS,
    NEVER_DEPLOYED,
    OPTIONAL_SECRETS,
    PURGE_SERVICE,
    RASA_DEPLOYMENT,
    RASA_SERVICE,
    WEB_CHANNELS,
    WEB_SERVICE,
    WORKLOAD_KINDS,
    Manifest,
    all_k8s_manifests,
    channel_env_vars,
    code_env_vars,
    compose,
    compose_raw,
    compose_references,
    declared,
    deployed_env_vars,
    dummy_env,
    env_example_lines,
    k8s_container,
    k8s_container_env,
    k8s_manifests,
    k8s_object,
    never_deployed,
    pod_spec,
    service_env,
)


def test_every_server_is_mapped_to_its_code() -> None:
    """A new service or Deployment of our image must say which code it runs."""
    ours = {
        name
        for name, service in compose_raw()["services"].items()
        if "build" in service
    }
    assert ours == set(COMPOSE_CODE), "update COMPOSE_CODE"
    deployments = {
        m.doc["metadata"]["name"]
        for m in k8s_manifests()
        if m.doc["kind"] == "Deployment"
    }
    assert deployments == set(K8S_CODE), "update K8S_CODE"
    jobs = {
        m.doc["metadata"]["name"] for m in k8s_manifests() if m.doc["kind"] == "CronJob"
    }
    assert jobs == set(K8S_JOB_CODE), "update K8S_JOB_CODE"
    assert set(COMPOSE_CODE.values()) == set(PROCESSES), (
        "every process of settings.processes.PROCESSES runs in a compose service"
    )
    assert set(COMPOSE_ONLY_CODE) <= set(PROCESSES), "stale COMPOSE_ONLY_CODE"
    assert set(K8S_WORKLOADS.values()) == set(PROCESSES) - set(COMPOSE_ONLY_CODE), (
        "every process runs in a Deployment or CronJob, unless COMPOSE_ONLY_CODE "
        "says why not"
    )


def test_the_page_server_is_not_the_rasa_server() -> None:
    """The page server runs as its own process: what it reads is the web
    service's, not Rasa's; the identity secret is deployed to Rasa's channels
    (minting) and to the action server (verifying), never to the page server
    (it declares the secret for its demo login only)."""
    page_only = deployed_env_vars("web") - code_env_vars("rasa")
    assert page_only, "the page server reads nothing of its own"
    for code in ("rasa", "actions"):
        assert IDENTITY_SECRET in deployed_env_vars(code), code
        assert declared(code)[IDENTITY_SECRET].secret, code
    assert IDENTITY_SECRET in code_env_vars("web")
    assert IDENTITY_SECRET in never_deployed("web")


@pytest.mark.parametrize("service", list(COMPOSE_CODE))
def test_compose_sets_every_variable_the_service_reads(service: str) -> None:
    wanted = deployed_env_vars(COMPOSE_CODE[service])
    missing = wanted - set(service_env(compose()["services"][service]))
    assert not missing, (
        f"docker-compose.yml service {service} does not set {sorted(missing)}"
    )


@pytest.mark.parametrize("deployment", list(K8S_WORKLOADS))
def test_kubernetes_sets_every_variable_the_container_reads(deployment: str) -> None:
    wanted = deployed_env_vars(K8S_WORKLOADS[deployment])
    missing = wanted - k8s_container_env(k8s_container(deployment))
    assert not missing, f"deploy/k8s {deployment} does not set {sorted(missing)}"


def test_never_deployed_variables_are_not_set() -> None:
    """A variable declared never_deployed by every process that reads it is set
    in no deployment file; one never_deployed for some processes only (the page
    server's identity secret) is given to none of their servers."""
    assert NEVER_DEPLOYED, "no variable is declared never_deployed"
    raw = compose_raw()
    set_somewhere = {
        (f"docker-compose.yml {name}", key)
        for name, service in raw["services"].items()
        for key in service_env(service)
    }
    set_somewhere |= {
        ("deploy/compose.env.example", key) for key in env_example_lines()
    }
    for manifest in all_k8s_manifests():
        doc = manifest.doc
        keys = set(doc.get("data", {})) | set(doc.get("stringData", {}))
        if doc["kind"] in WORKLOAD_KINDS:
            for container in pod_spec(doc)["containers"]:
                keys |= {item["name"] for item in container.get("env", [])}
        set_somewhere |= {(manifest.id, key) for key in keys}
    wrong = sorted(
        f"{where}: {key}" for where, key in set_somewhere if key in NEVER_DEPLOYED
    )
    assert not wrong, f"never set these in a deployment ({NEVER_DEPLOYED}): {wrong}"
    assert never_deployed_problems() == []


def never_deployed_problems(
    raw_compose: Optional[Mapping[str, Any]] = None,
    containers: Optional[Mapping[str, Mapping[str, Any]]] = None,
) -> List[str]:
    """Variables a server gets that its process must never get (compose
    services; Kubernetes containers, ConfigMaps included)."""
    raw = compose_raw() if raw_compose is None else raw_compose
    given = [
        (
            f"docker-compose.yml {service}",
            code,
            set(service_env(raw["services"][service])),
        )
        for service, code in COMPOSE_CODE.items()
    ]
    given += [
        (
            f"deploy/k8s {deployment}",
            code,
            k8s_container_env(
                (containers or {}).get(deployment) or k8s_container(deployment)
            ),
        )
        for deployment, code in K8S_WORKLOADS.items()
    ]
    return sorted(
        f"{where}: {name}: {reason}"
        for where, code, names in given
        for name, reason in never_deployed(code).items()
        if name in names
    )


def test_never_deployed_check_can_fail() -> None:
    raw = compose_raw()
    raw["services"][WEB_SERVICE]["environment"][IDENTITY_SECRET] = "x" * 64
    container = copy.deepcopy(k8s_container(RASA_DEPLOYMENT))
    container["env"].append({"name": "ALLOW_INTENT_SYNTAX", "value": "1"})
    problems = never_deployed_problems(raw, {RASA_DEPLOYMENT: container})
    for expected in (
        f"docker-compose.yml {WEB_SERVICE}: {IDENTITY_SECRET}:",
        f"deploy/k8s {RASA_DEPLOYMENT}: ALLOW_INTENT_SYNTAX:",
    ):
        assert any(problem.startswith(expected) for problem in problems), problems


def unread_settings_problems(
    raw_compose: Optional[Mapping[str, Any]] = None,
    manifests: Optional[List[Manifest]] = None,
) -> List[str]:
    """Variables a deployment file sets that no process given them reads: a
    setting renamed or dropped in the code but left in the files (compose's bot
    services; the Deployments' env, their commands' $(VAR) included; the keys of
    a ConfigMap, read by some Deployment that loads it)."""
    raw = compose_raw() if raw_compose is None else raw_compose
    problems = [
        f"docker-compose.yml {service}: {name} is not read there"
        for service, code in COMPOSE_CODE.items()
        for name in service_env(raw["services"][service])
        if name not in code_env_vars(code)
    ]
    manifests = all_k8s_manifests() if manifests is None else manifests
    readers: Dict[str, Set[str]] = {}
    for manifest in manifests:
        doc = manifest.doc
        if doc["kind"] not in WORKLOAD_KINDS:
            continue
        code = K8S_WORKLOADS[doc["metadata"]["name"]]
        for container in pod_spec(doc)["containers"]:
            args = container.get("command", []) + container.get("args", [])
            reads = set(code_env_vars(code)) | {
                name for arg in args for name in K8S_ARG_REF.findall(str(arg))
            }
            problems += [
                f"{manifest.id}: {item['name']} is not read there"
                for item in container.get("env", [])
                if item["name"] not in reads
            ]
            for source in container.get("envFrom", []):
                if "configMapRef" in source:
                    prefix = source.get("prefix", "")
                    readers.setdefault(source["configMapRef"]["name"], set()).update(
                        name.removeprefix(prefix)
                        for name in reads
                        if name.startswith(prefix)
                    )
    for manifest in manifests:
        doc = manifest.doc
        if doc["kind"] == "ConfigMap":
            read = readers.get(doc["metadata"]["name"], set())
            problems += [
                f"{manifest.id}: {key} is read by no Deployment that loads it"
                for key in doc.get("data", {})
                if key not in read
            ]
    return sorted(problems)


def test_servers_are_given_only_what_they_read() -> None:
    assert unread_settings_problems() == []


def test_unread_settings_check_can_fail() -> None:
    raw = compose_raw()
    raw["services"]["demo-seed"]["environment"] = {
        **raw["services"]["demo-seed"]["environment"],
        "ACTION_SERVER_HOST": "0.0.0.0",
    }
    manifests = all_k8s_manifests()
    for manifest in manifests:
        if manifest.doc["kind"] == "ConfigMap":
            manifest.doc["data"]["ACCOUNT_LOOKUP_SECONDS"] = "2"
        if manifest.id.endswith(f"Deployment/{ACTIONS_DEPLOYMENT}"):
            container = manifest.doc["spec"]["template"]["spec"]["containers"][0]
            # the Rasa server's setting, given to the action server
            container["env"].append({"name": "RATE_LIMIT", "value": "20/minute"})
    problems = " ".join(unread_settings_problems(raw, manifests))
    for expected in (
        "docker-compose.yml demo-seed: ACTION_SERVER_HOST ",
        "ConfigMap/jiebei-config: ACCOUNT_LOOKUP_SECONDS ",
        f"Deployment/{ACTIONS_DEPLOYMENT}: RATE_LIMIT ",
    ):
        assert expected in problems, problems


@pytest.mark.parametrize("deployment", list(K8S_WORKLOADS))
def test_kubernetes_references_resolve(deployment: str) -> None:
    container = k8s_container(deployment)
    for item in container.get("env", []):
        ref = item.get("valueFrom", {})
        if "secretKeyRef" in ref:
            secret = k8s_object("Secret", ref["secretKeyRef"]["name"])
            assert ref["secretKeyRef"]["key"] in secret.get("stringData", {}), item
        if "configMapKeyRef" in ref:
            config_map = k8s_object("ConfigMap", ref["configMapKeyRef"]["name"])
            assert ref["configMapKeyRef"]["key"] in config_map.get("data", {}), item
    defined = k8s_container_env(container)
    for arg in container.get("args", []) + container.get("command", []):
        for name in re.findall(r"\$\((" + ENV_NAME + r")\)", arg):
            assert name in defined, (
                f"{deployment}: $({name}) in args is not in the container's env"
            )


def test_page_and_action_server_run_the_same_profile() -> None:
    """The page's demo switch (demo profile) only makes sense with the action
    server's demo profile; the page's own default is demo, so it must be set."""
    for env in ({}, {"BOT_PROFILE": "demo"}):
        services = compose({**dummy_env(), **env})["services"]
        profiles = {
            service_env(services[name]).get("BOT_PROFILE")
            for name, code in COMPOSE_CODE.items()
            if "BOT_PROFILE" in code_env_vars(code)
        }
        assert profiles == {env.get("BOT_PROFILE", "prod")}, profiles
    sources = {
        deployment: [
            source["configMapRef"]["name"]
            for source in k8s_container(deployment).get("envFrom", [])
            if "configMapRef" in source
        ]
        for deployment, code in K8S_CODE.items()
        if "BOT_PROFILE" in code_env_vars(code)
    }
    assert len({tuple(names) for names in sources.values()}) == 1, sources
    assert not any(
        item["name"] == "BOT_PROFILE"
        for deployment in sources
        for item in k8s_container(deployment).get("env", [])
    ), "BOT_PROFILE comes from the shared ConfigMap only"


def test_compose_store_settings_point_at_the_compose_servers() -> None:
    services = compose()["services"]
    rasa_env = service_env(services[RASA_SERVICE])
    postgres = services[rasa_env["TRACKER_DB_HOST"]]
    redis = services[rasa_env["LOCK_REDIS_HOST"]]
    assert (
        postgres["image"].startswith("postgres:")
        and rasa_env["TRACKER_DB_PORT"] == "5432"
    )
    assert redis["image"].startswith("redis:") and rasa_env["LOCK_REDIS_PORT"] == "6379"
    postgres_env = service_env(postgres)
    assert rasa_env["TRACKER_DB_USER"] == postgres_env["POSTGRES_USER"]
    assert rasa_env["TRACKER_DB_PASSWORD"] == postgres_env["POSTGRES_PASSWORD"]
    purge_env = service_env(services[PURGE_SERVICE])
    for name in ("HOST", "PORT", "NAME", "USER", "PASSWORD"):
        assert purge_env[f"TRACKER_DB_{name}"] == rasa_env[f"TRACKER_DB_{name}"], (
            f"{PURGE_SERVICE}: the tracker store is Rasa's"
        )
    for service in (*ACTIONS_SERVICES, PURGE_SERVICE):
        for name in ("ACCOUNT_DB_URL", "CASE_DB_URL"):
            url = urlsplit(service_env(services[service])[name])
            assert (url.hostname, url.port or 5432) == (
                rasa_env["TRACKER_DB_HOST"],
                5432,
            ), name
            assert (url.username, url.password) == (
                postgres_env["POSTGRES_USER"],
                postgres_env["POSTGRES_PASSWORD"],
            ), name
            # The case store does not create its database: the server must.
            assert url.path.lstrip("/") == postgres_env["POSTGRES_DB"], name


def test_compose_env_example_lists_every_variable_with_its_default() -> None:
    listed = env_example_lines()
    used = {ref.name for ref in compose_references()}
    assert used - set(listed) == set(), "deploy/compose.env.example misses these"
    assert set(listed) - used == set(), "deploy/compose.env.example: unused"
    for name, (value, commented) in listed.items():
        defaults = {
            interpolate(ref.arg, {})
            for ref in compose_references()
            if ref.name == name and ref.op in (":-", "-")
        }
        assert len(defaults) <= 1, f"{name} has different defaults: {defaults}"
        if commented:
            assert defaults == {value}, (
                f"the example shows {name}={value}, compose's default is {defaults}"
            )


def test_messaging_channels_are_off_unless_configured() -> None:
    """No channel setting is required, and every one is empty (= off) unless
    given, but the API bases, which default to the platforms' official ones.
    The channels are credentials.yml's, but its web channels: one declared
    variable prefix each."""
    credentials = yaml.safe_load(CREDENTIALS.read_text(encoding="utf-8")) or {}
    assert WEB_CHANNELS <= set(credentials), "stale WEB_CHANNELS"
    assert len(set(credentials) - WEB_CHANNELS) == len(CHANNEL_PREFIXES), (
        "a messaging channel was added or removed: update CHANNEL_PREFIXES"
    )
    channel = channel_env_vars()
    for prefix in CHANNEL_PREFIXES:
        assert any(name.startswith(prefix) for name in channel), f"stale {prefix}"
    defaults = {name: declared("rasa")[name].default for name in channel}
    api_bases = {name for name in channel if name.endswith("_API_BASE")}
    assert api_bases, "the channels declare no *_API_BASE"
    official = {name: str(defaults[name]) for name in api_bases}
    assert {name for name, value in defaults.items() if value is not None} == set(
        official
    ), "a channel setting other than the API bases has a default"
    assert all(urlsplit(url).scheme == "https" for url in official.values())

    rasa_env = service_env(compose()["services"][RASA_SERVICE])
    config = {
        key: value
        for m in k8s_manifests()
        if m.doc["kind"] == "ConfigMap"
        for key, value in m.doc.get("data", {}).items()
    }
    env_items = {
        item["name"]: item for item in k8s_container(RASA_DEPLOYMENT).get("env", [])
    }
    for name in sorted(channel):
        expected = official.get(name, "")
        assert rasa_env[name] == expected, f"compose: {name}={rasa_env[name]!r}"
        if name in OPTIONAL_SECRETS:
            ref = env_items[name]["valueFrom"]["secretKeyRef"]
            assert ref.get("optional") is True, f"k8s {name}: optional: true"
        else:
            assert config.get(name) == expected, (
                f"ConfigMap {name}={config.get(name)!r}"
            )
