"""Commands, ports, probes and resources: each server runs the same command in
docker-compose.yml and deploy/k8s, listens where the published ports, health
checks, probes and Services look for it, reaches the others at the right
address, starts in order, and gets the memory it was measured to need.
"""

from __future__ import annotations

import re
from typing import Any, List, Mapping
from urllib.parse import urlsplit

import pytest
import yaml

from tests.deploy.support import (
    ACTION_SERVER_MODULE,
    ACTIONS_DEPLOYMENT,
    ENDPOINTS_PROD,
    K8S_CODE,
    PAGE_SERVER_MODULE,
    RASA_DEPLOYMENT,
    RASA_SERVICE,
    WEB_DEPLOYMENT,
    WEB_SERVICE,
    command_list,
    compose,
    declared_value,
    dummy_env,
    k8s_container,
    k8s_manifests,
    k8s_object,
    option,
    page_server_module,
    published_ports,
    service_env,
)

# Measured RSS (README, issue 5): Rasa server with this model, action server;
# the chat page server: about 48 MB (idle).
RASA_RSS_MIB = (1024, 1536)
ACTIONS_RSS_MIB = 150
WEB_RSS_MIB = 50

K8S_MEMORY_UNITS = {
    "": 2**-20,
    "Ki": 2**-10,
    "Mi": 1,
    "Gi": 2**10,
    "k": 1e3 / 2**20,
    "M": 1e6 / 2**20,
    "G": 1e9 / 2**20,
}
# Docker's units are binary: 1k = 1024 bytes.
COMPOSE_MEMORY_UNITS = {
    "": 2**-20,
    "b": 2**-20,
    "k": 2**-10,
    "kb": 2**-10,
    "m": 1,
    "mb": 1,
    "g": 2**10,
    "gb": 2**10,
}


def memory_mib(quantity: Any, units: Mapping[str, float] = K8S_MEMORY_UNITS) -> float:
    match = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", str(quantity))
    assert match and match.group(2) in units, f"not a memory quantity: {quantity!r}"
    return float(match.group(1)) * units[match.group(2)]


def resolve_port(container: Mapping[str, Any], port: Any) -> int:
    """A probe's or Service's port (number or name) as the container's port number."""
    for declared in container.get("ports", []):
        if port in (declared.get("name"), declared["containerPort"]):
            return int(declared["containerPort"])
    raise AssertionError(
        f"port {port!r} is not declared by container {container['name']}"
    )


def default_port(code: str) -> str:
    """The port a server listens on when its command names none."""
    page_port = page_server_module().DEFAULT_PORT
    return {"rasa": "5005", "actions": "5055", "web": str(page_port)}[code]


def _port(args: List[str], default: str) -> int:
    return int(option(args, "-p", "--port", default=default) or default)


def test_rasa_commands_are_the_production_profile_in_compose_and_kubernetes() -> None:
    compose_args = command_list(compose()["services"][RASA_SERVICE])
    k8s_args = list(k8s_container(RASA_DEPLOYMENT)["args"])
    for args in (compose_args, k8s_args):
        assert args[:2] == ["rasa", "run"] and "--enable-api" in args
        assert option(args, "-i", "--interface") == "0.0.0.0", (
            "must listen on all interfaces in a container"
        )
        assert option(args, "--endpoints") == "endpoints.prod.yml"
        assert option(args, "--credentials") == "credentials.yml"
        assert option(args, "--model", "-m") == "models/jiebei.tar.gz"
        assert option(args, "--auth-token"), "the HTTP API must require a token"
    token = compose_args.index("--auth-token") + 1
    assert (
        compose_args[:token] + compose_args[token + 1 :]
        == k8s_args[:token] + k8s_args[token + 1 :]
    )


def test_actions_commands_match_in_compose_and_kubernetes() -> None:
    compose_args = command_list(compose()["services"]["actions"])
    assert compose_args[:3] == ["python", "-m", ACTION_SERVER_MODULE], (
        "rasa_sdk's server behind the token check, not `rasa run actions`"
    )
    assert compose_args == list(k8s_container(ACTIONS_DEPLOYMENT)["args"])


def test_web_commands_match_in_compose_and_kubernetes() -> None:
    compose_args = command_list(compose()["services"][WEB_SERVICE])
    assert compose_args[:3] == ["python", "-m", PAGE_SERVER_MODULE]
    assert option(compose_args, "--host") == "0.0.0.0", (
        f"the page server listens on {page_server_module().DEFAULT_HOST} unless told: "
        "unreachable in a container"
    )
    assert compose_args == list(k8s_container(WEB_DEPLOYMENT)["args"])


def test_compose_ports_match_the_commands() -> None:
    services = compose()["services"]
    rasa_port = _port(command_list(services[RASA_SERVICE]), default_port("rasa"))
    actions_port = _port(command_list(services["actions"]), default_port("actions"))
    web_port = _port(command_list(services[WEB_SERVICE]), default_port("web"))

    for service, port in ((RASA_SERVICE, rasa_port), (WEB_SERVICE, web_port)):
        published = [inside for _, _, inside in published_ports(services[service])]
        assert published == [str(port)], service
    assert str(actions_port) in [str(p) for p in services["actions"].get("expose", [])]

    for service, port, path in (
        (RASA_SERVICE, rasa_port, "/"),
        ("actions", actions_port, "/health"),
        (WEB_SERVICE, web_port, "/"),
    ):
        probe = " ".join(services[service]["healthcheck"]["test"])
        url = re.search(r"https?://[^'\"\s]+", probe)
        assert url, f"{service}: the healthcheck requests no URL"
        parts = urlsplit(url.group(0))
        assert (parts.port, parts.path) == (port, path), (
            f"{service} healthcheck: {url.group(0)}"
        )

    action_url = urlsplit(service_env(services[RASA_SERVICE])["ACTION_ENDPOINT_URL"])
    assert (action_url.hostname, action_url.port, action_url.path) == (
        "actions",
        actions_port,
        "/webhook",
    )


def test_compose_publishes_only_rasa_and_the_page_on_loopback() -> None:
    services = compose()["services"]
    publishing = {name for name, service in services.items() if service.get("ports")}
    assert publishing == {RASA_SERVICE, WEB_SERVICE}
    for name in publishing:
        for address, _, _ in published_ports(services[name]):
            assert address == "127.0.0.1", f"{name} is published on {address}"
    other = compose({**dummy_env(), "WEB_PORT": "9090", "WEB_BIND": "0.0.0.0"})
    assert published_ports(other["services"][WEB_SERVICE])[0][:2] == ("0.0.0.0", "9090")


def test_compose_page_points_the_browser_at_the_published_rasa_port() -> None:
    """RASA_PUBLIC_URL is what the BROWSER uses: by default Rasa's published
    port on the host, following RASA_PORT; behind a proxy, its public origin."""
    for env in ({}, {"RASA_PORT": "6000"}):
        services = compose({**dummy_env(), **env})["services"]
        ((address, host_port, _),) = published_ports(services[RASA_SERVICE])
        url = service_env(services[WEB_SERVICE])["RASA_PUBLIC_URL"]
        assert url == f"http://{address}:{host_port}", env
        assert declared_value("web", "RASA_PUBLIC_URL", url) == url
    public = "https://bot.example.com"
    services = compose({**dummy_env(), "RASA_PUBLIC_URL": public})["services"]
    assert service_env(services[WEB_SERVICE])["RASA_PUBLIC_URL"] == public


def test_kubernetes_page_points_the_browser_at_a_public_origin() -> None:
    container = k8s_container(WEB_DEPLOYMENT)
    values = [
        cm["data"]["RASA_PUBLIC_URL"]
        for source in container.get("envFrom", [])
        if "configMapRef" in source
        for cm in [k8s_object("ConfigMap", source["configMapRef"]["name"])]
        if "RASA_PUBLIC_URL" in cm.get("data", {})
    ]
    assert len(values) == 1, "RASA_PUBLIC_URL must come from the ConfigMap"
    url = values[0]
    assert declared_value("web", "RASA_PUBLIC_URL", url) == url, (
        "scheme://host[:port] only"
    )
    host = urlsplit(url).hostname or ""
    services = {
        m.doc["metadata"]["name"] for m in k8s_manifests() if m.doc["kind"] == "Service"
    }
    assert host not in services and ".svc" not in host and "." in host, (
        f"{url}: the browser cannot reach an in-cluster name"
    )


@pytest.mark.parametrize("deployment", list(K8S_CODE))
def test_kubernetes_ports_match_the_commands(deployment: str) -> None:
    container = k8s_container(deployment)
    port = _port(list(container["args"]), default_port(K8S_CODE[deployment]))
    assert [p["containerPort"] for p in container["ports"]] == [port]
    for probe in ("readinessProbe", "livenessProbe"):
        assert resolve_port(container, container[probe]["httpGet"]["port"]) == port, (
            probe
        )
    service = k8s_object("Service", deployment)
    pod_labels = k8s_object("Deployment", deployment)["spec"]["template"]["metadata"][
        "labels"
    ]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert [
        resolve_port(container, p["targetPort"]) for p in service["spec"]["ports"]
    ] == [port]


def test_kubernetes_action_endpoint_is_the_actions_service() -> None:
    config_maps = [m.doc for m in k8s_manifests() if m.doc["kind"] == "ConfigMap"]
    urls = [
        cm["data"]["ACTION_ENDPOINT_URL"]
        for cm in config_maps
        if "ACTION_ENDPOINT_URL" in cm.get("data", {})
    ]
    assert len(urls) == 1
    url = urlsplit(urls[0])
    service = k8s_object("Service", ACTIONS_DEPLOYMENT)
    assert url.hostname == service["metadata"]["name"] and url.path == "/webhook"
    assert url.port in [p["port"] for p in service["spec"]["ports"]]


def test_compose_health_checks_and_start_order() -> None:
    services = compose()["services"]
    for name in (RASA_SERVICE, "actions", WEB_SERVICE, "postgres", "redis"):
        assert services[name].get("healthcheck", {}).get("test"), (
            f"{name} has no healthcheck"
        )
    assert "/status" not in " ".join(services[RASA_SERVICE]["healthcheck"]["test"]), (
        "/status needs the API token"
    )
    for name, needs in (
        (RASA_SERVICE, {"postgres", "redis", "actions"}),
        ("actions", {"postgres"}),
        ("demo-seed", {"postgres"}),
        # The page loads without Rasa; the browser's socket.io client
        # reconnects until Rasa answers. The agent desk checks the case store
        # at start (no demo passwords in prod).
        (WEB_SERVICE, {"postgres"}),
    ):
        depends = services[name].get("depends_on", {})
        assert set(depends) == needs, name
        assert all(d["condition"] == "service_healthy" for d in depends.values()), name
    postgres_volumes = [str(v).split(":")[0] for v in services["postgres"]["volumes"]]
    assert postgres_volumes and set(postgres_volumes) <= set(compose()["volumes"]), (
        "postgres needs a named volume"
    )
    assert services["demo-seed"]["profiles"] == ["demo"], (
        "fixture accounts only in a demo deployment"
    )


def test_kubernetes_probes_and_resources() -> None:
    for deployment, path in (
        (RASA_DEPLOYMENT, "/"),
        (ACTIONS_DEPLOYMENT, "/health"),
        (WEB_DEPLOYMENT, "/"),
    ):
        container = k8s_container(deployment)
        for probe in ("readinessProbe", "livenessProbe"):
            assert container[probe]["httpGet"]["path"] == path, f"{deployment} {probe}"
        resources = container["resources"]
        for section in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(resources[section]), (
                f"{deployment} {section}"
            )
    rasa = k8s_container(RASA_DEPLOYMENT)["resources"]
    assert memory_mib(rasa["requests"]["memory"]) >= RASA_RSS_MIB[0]
    assert memory_mib(rasa["limits"]["memory"]) > RASA_RSS_MIB[1]
    actions = k8s_container(ACTIONS_DEPLOYMENT)["resources"]
    assert memory_mib(actions["requests"]["memory"]) >= ACTIONS_RSS_MIB
    assert memory_mib(actions["limits"]["memory"]) >= 2 * ACTIONS_RSS_MIB
    web = k8s_container(WEB_DEPLOYMENT)["resources"]
    assert memory_mib(web["requests"]["memory"]) >= WEB_RSS_MIB
    assert memory_mib(web["limits"]["memory"]) >= 2 * WEB_RSS_MIB

    def compose_limit(service: str) -> float:
        limits = compose()["services"][service]["deploy"]["resources"]["limits"]
        return memory_mib(limits["memory"], COMPOSE_MEMORY_UNITS)

    assert compose_limit(RASA_SERVICE) > RASA_RSS_MIB[1]
    assert compose_limit("actions") >= 2 * ACTIONS_RSS_MIB
    assert compose_limit(WEB_SERVICE) >= 2 * WEB_RSS_MIB


def _store_class(store: Mapping[str, Any], builtin: Mapping[str, str]) -> type:
    """The class Rasa loads for a tracker/lock store entry of endpoints.yml."""
    import importlib

    kind = str(store.get("type", ""))
    path = builtin.get(kind.lower(), kind)
    module, _, name = path.rpartition(".")
    loaded = getattr(importlib.import_module(module), name)
    assert isinstance(loaded, type)
    return loaded


def test_several_rasa_replicas_share_their_state() -> None:
    """More than one Rasa replica (the autoscaler's minimum) is only right with
    shared tracker and lock stores."""
    from rasa.core.lock_store import RedisLockStore
    from rasa.core.tracker_store import SQLTrackerStore

    autoscalers = [
        m.doc["spec"]
        for m in k8s_manifests()
        if m.doc["kind"] == "HorizontalPodAutoscaler"
        and m.doc["spec"]["scaleTargetRef"]["name"] == RASA_DEPLOYMENT
    ]
    spec = k8s_object("Deployment", RASA_DEPLOYMENT)["spec"]
    replicas = autoscalers[0]["minReplicas"] if autoscalers else spec.get("replicas", 1)
    assert replicas >= 2
    endpoints = yaml.safe_load(ENDPOINTS_PROD.read_text(encoding="utf-8"))
    lock = _store_class(
        endpoints["lock_store"], {"redis": "rasa.core.lock_store.RedisLockStore"}
    )
    assert issubclass(lock, RedisLockStore), lock
    tracker_store = endpoints["tracker_store"]
    tracker = _store_class(
        tracker_store, {"sql": "rasa.core.tracker_store.SQLTrackerStore"}
    )
    assert (
        issubclass(tracker, SQLTrackerStore)
        and tracker_store.get("dialect") != "sqlite"
    ), tracker
