"""The security settings as deployed: Rasa's HTTP API requires a token, the
action server listens for Rasa behind the shared secret, no unsafe value
(rate limit off, ``*`` origins) is set, socket.io accepts the chat page's
origin, the Rasa instances share the rate limit's counts, and the public
channels' limits are the declared defaults. Each check also runs against a
broken copy of the files, to show it can fail.
"""

from __future__ import annotations

import copy
import re
from dataclasses import replace
from typing import List, Mapping, Tuple
from urllib.parse import urlsplit

from settings.processes import PROCESSES, is_loopback
from tests.deploy.support import (
    ACTIONS_DEPLOYMENT,
    COMPOSE_ENV_EXAMPLE,
    NEVER_DEPLOYED_VALUES,
    RASA_DEPLOYMENT,
    RASA_SERVICE,
    WEB_DEPLOYMENT,
    WEB_SERVICE,
    Deployed,
    code_env_vars,
    compose,
    compose_deployed,
    compose_raw,
    declared,
    declared_value,
    deployed_settings,
    dummy_env,
    k8s_container,
    k8s_deployed,
    k8s_manifests,
    published_ports,
)


def api_token_problems(rasa: Deployed) -> List[str]:
    """Rasa's HTTP API requires ``--auth-token``, set from a required secret."""
    if "--auth-token" not in rasa.args[:-1]:
        return [
            f"{rasa.where}: no --auth-token: the HTTP API (trackers, model, "
            "handoff resume) answers anyone"
        ]
    index = rasa.args.index("--auth-token") + 1
    if rasa.arg_secrets[index] is None:
        return [
            f"{rasa.where}: --auth-token {rasa.args[index]!r} does not come from "
            "a required secret"
        ]
    return []


def test_the_rasa_api_requires_a_token_from_a_secret() -> None:
    for rasa in (compose_deployed(RASA_SERVICE), k8s_deployed(RASA_DEPLOYMENT)):
        assert api_token_problems(rasa) == []


def test_api_token_check_can_fail() -> None:
    raw = compose_raw()
    command = raw["services"][RASA_SERVICE]["command"]
    index = command.index("--auth-token")
    without, literal = copy.deepcopy(raw), copy.deepcopy(raw)
    del without["services"][RASA_SERVICE]["command"][index : index + 2]
    literal["services"][RASA_SERVICE]["command"][index + 1] = "a-token-in-the-file"
    plain_arg = copy.deepcopy(k8s_container(RASA_DEPLOYMENT))
    plain_arg["args"][plain_arg["args"].index("--auth-token") + 1] = (
        "$(LOCK_KEY_PREFIX)"
    )
    optional = copy.deepcopy(k8s_container(RASA_DEPLOYMENT))
    for item in optional["env"]:
        if item["name"] == "RASA_AUTH_TOKEN":
            item["valueFrom"]["secretKeyRef"]["optional"] = True
    for broken in (
        compose_deployed(RASA_SERVICE, without),
        compose_deployed(RASA_SERVICE, literal),
        k8s_deployed(RASA_DEPLOYMENT, plain_arg),
        k8s_deployed(RASA_DEPLOYMENT, optional),
    ):
        assert len(api_token_problems(broken)) == 1, broken


def action_server_problems(actions: Deployed, rasa: Deployed) -> List[str]:
    """The action server listens where Rasa's container reaches it (not on
    loopback), so only with ACTION_SERVER_TOKEN from a required secret; Rasa
    sends that same secret (endpoints.prod.yml)."""
    problems = []
    host = str(
        declared_value(
            "actions",
            "ACTION_SERVER_HOST",
            actions.values.get("ACTION_SERVER_HOST", ""),
        )
    )
    token = actions.secrets.get("ACTION_SERVER_TOKEN")
    if is_loopback(host):
        problems.append(
            f"{actions.where}: ACTION_SERVER_HOST={host}: the Rasa container "
            "cannot reach it (0.0.0.0)"
        )
    elif token is None:
        problems.append(
            f"{actions.where}: ACTION_SERVER_HOST={host} without ACTION_SERVER_TOKEN "
            "from a required secret: anyone on the network could call the actions"
        )
    if rasa.secrets.get("ACTION_SERVER_TOKEN") != token:
        problems.append(
            f"{rasa.where}: ACTION_SERVER_TOKEN is not the action server's secret "
            f"({rasa.secrets.get('ACTION_SERVER_TOKEN')} != {token})"
        )
    return problems


def test_the_action_server_listens_for_rasa_behind_the_shared_secret() -> None:
    pairs = (
        (compose_deployed("actions"), compose_deployed(RASA_SERVICE)),
        (k8s_deployed(ACTIONS_DEPLOYMENT), k8s_deployed(RASA_DEPLOYMENT)),
    )
    for actions, rasa in pairs:
        assert action_server_problems(actions, rasa) == []
        assert actions.values.get("ACTION_SERVER_HOST") == "0.0.0.0", actions.where


def test_action_server_check_can_fail() -> None:
    compose_actions = compose_deployed("actions")
    compose_rasa = compose_deployed(RASA_SERVICE)
    k8s_actions = k8s_deployed(ACTIONS_DEPLOYMENT)
    k8s_rasa = k8s_deployed(RASA_DEPLOYMENT)
    plain = compose_raw()
    plain["services"]["actions"]["environment"]["ACTION_SERVER_TOKEN"] = "x" * 64
    loopback = copy.deepcopy(k8s_container(ACTIONS_DEPLOYMENT))
    loopback["env"] = [
        {"name": "ACTION_SERVER_HOST", "value": "127.0.0.1"}
        if item["name"] == "ACTION_SERVER_HOST"
        else item
        for item in loopback["env"]
    ]
    other_key = copy.deepcopy(k8s_container(RASA_DEPLOYMENT))
    for item in other_key["env"]:
        if item["name"] == "ACTION_SERVER_TOKEN":
            item["valueFrom"]["secretKeyRef"]["key"] = "RASA_AUTH_TOKEN"
    without_token = dict(compose_actions.secrets)
    del without_token["ACTION_SERVER_TOKEN"]
    for actions, rasa in (
        # a token in the file: the action server is open; Rasa's differs
        (compose_deployed("actions", plain), compose_rasa),
        (replace(compose_actions, secrets=without_token), compose_rasa),
        (k8s_deployed(ACTIONS_DEPLOYMENT, loopback), k8s_rasa),
        (k8s_actions, k8s_deployed(RASA_DEPLOYMENT, other_key)),
    ):
        assert action_server_problems(actions, rasa), (actions, rasa)
    problems = action_server_problems(compose_deployed("actions", plain), compose_rasa)
    assert any("anyone on the network" in problem for problem in problems)


def never_deployed_value_problems(settings: List[Tuple[str, str, str]]) -> List[str]:
    return sorted(
        f"{where}: {name}={value!r} {NEVER_DEPLOYED_VALUES[name][1]}"
        for where, name, value in settings
        if name in NEVER_DEPLOYED_VALUES
        and re.fullmatch(NEVER_DEPLOYED_VALUES[name][0], value)
    )


def test_never_deployed_values_are_not_set() -> None:
    everything = set().union(*(code_env_vars(code) for code in PROCESSES))
    assert set(NEVER_DEPLOYED_VALUES) <= everything, "stale NEVER_DEPLOYED_VALUES"
    settings = deployed_settings()
    assert set(NEVER_DEPLOYED_VALUES) <= {name for _, name, _ in settings}
    assert never_deployed_value_problems(settings) == []


def test_never_deployed_value_check_can_fail() -> None:
    raw = compose_raw()
    raw["services"][RASA_SERVICE]["environment"]["RATE_LIMIT"] = "${RATE_LIMIT:-off}"
    manifests = k8s_manifests()
    for manifest in manifests:
        if "WEB_ALLOWED_ORIGINS" in manifest.doc.get("data", {}):
            manifest.doc["data"]["WEB_ALLOWED_ORIGINS"] = "https://bot.example.com, *"
    example = COMPOSE_ENV_EXAMPLE.read_text(encoding="utf-8") + "\nRATE_LIMIT=Off\n"
    problems = never_deployed_value_problems(deployed_settings(raw, manifests, example))
    assert len(problems) == 3, problems
    fine = [
        ("x", "RATE_LIMIT", "5/10 seconds"),
        ("x", "WEB_ALLOWED_ORIGINS", "https://a.example"),
    ]
    assert never_deployed_value_problems(fine) == []


def allowed_origin_problems(rasa: Deployed, page_origin: str) -> List[str]:
    """Rasa's socket.io channel accepts the chat page's origin; every entry is
    an origin (the browser's Origin header: scheme://host[:port]). The value is
    read as the Rasa server reads it (empty: its default)."""
    try:
        origins = list(
            declared_value(
                "rasa",
                "WEB_ALLOWED_ORIGINS",
                rasa.values.get("WEB_ALLOWED_ORIGINS", ""),
            )
        )
    except ValueError as error:
        return [f"{rasa.where}: WEB_ALLOWED_ORIGINS: {error}: Rasa would not start"]
    problems = []
    for origin in origins:
        parts = urlsplit(origin)
        if not (
            parts.scheme in ("http", "https")
            and parts.hostname
            and f"{parts.scheme}://{parts.netloc}" == origin
            and "@" not in parts.netloc
        ):
            problems.append(
                f"{rasa.where}: WEB_ALLOWED_ORIGINS: {origin!r} is not an origin"
            )
    if page_origin not in origins:
        problems.append(
            f"{rasa.where}: WEB_ALLOWED_ORIGINS {origins} lacks the chat page's "
            f"origin {page_origin}: the page could not open socket.io"
        )
    return problems


def compose_page_origin(env: Mapping[str, str]) -> str:
    """The chat page's origin as published by compose (on the Docker host)."""
    ((address, port, _),) = published_ports(compose(env)["services"][WEB_SERVICE])
    return f"http://{address}:{port}"


def k8s_page_origin() -> str:
    """The chat page's public origin: the Ingress host serves the page and Rasa
    (docs/deployment.md, "Kubernetes"), so it is RASA_PUBLIC_URL."""
    return k8s_deployed(WEB_DEPLOYMENT).values["RASA_PUBLIC_URL"]


def test_socketio_accepts_the_chat_page_origin() -> None:
    for changed in ({}, {"WEB_PORT": "9090"}):
        env = {**dummy_env(), **changed}
        rasa = compose_deployed(RASA_SERVICE, env=env)
        assert allowed_origin_problems(rasa, compose_page_origin(env)) == [], changed
    rasa = k8s_deployed(RASA_DEPLOYMENT)
    assert allowed_origin_problems(rasa, k8s_page_origin()) == []


def test_allowed_origin_check_can_fail() -> None:
    moved = {
        **dummy_env(),
        "WEB_PORT": "9090",
        "WEB_ALLOWED_ORIGINS": "http://127.0.0.1:8080",
    }
    assert allowed_origin_problems(
        compose_deployed(RASA_SERVICE, env=moved), compose_page_origin(moved)
    )
    for value in ("", "https://bot.example.com/chat", "http://jiebei-web:8080"):
        container = copy.deepcopy(k8s_container(RASA_DEPLOYMENT))
        container["env"].append({"name": "WEB_ALLOWED_ORIGINS", "value": value})
        rasa = k8s_deployed(RASA_DEPLOYMENT, container)
        assert allowed_origin_problems(rasa, k8s_page_origin()), value


def rate_limit_storage_problems(
    rasa: Deployed, name: str = "RATE_LIMIT_STORAGE_URL"
) -> List[str]:
    """The rate limit counts in the lock store's Redis: every Rasa instance
    sees a sender's messages (memory:// counts per process). The same for
    the messaging channels' memory (``name`` CHANNEL_STATE_URL)."""
    url = rasa.values.get(name, "")
    parts = urlsplit(url)
    lock = (rasa.values.get("LOCK_REDIS_HOST"), rasa.values.get("LOCK_REDIS_PORT"))
    server = (parts.hostname, str(parts.port or 6379))
    if parts.scheme in ("redis", "rediss") and server == lock:
        return []
    return [
        f"{rasa.where}: {name}={url!r} is not the lock store's "
        f"Redis {lock[0]}:{lock[1]}: the Rasa instances would keep it apart"
    ]


def test_rasa_instances_share_the_rate_limit_counts() -> None:
    for rasa in (compose_deployed(RASA_SERVICE), k8s_deployed(RASA_DEPLOYMENT)):
        assert rate_limit_storage_problems(rasa) == []


def test_rate_limit_storage_check_can_fail() -> None:
    for url in ("", "memory://", "redis://other.example.internal:6379/0"):
        raw = compose_raw()
        raw["services"][RASA_SERVICE]["environment"]["RATE_LIMIT_STORAGE_URL"] = url
        assert rate_limit_storage_problems(compose_deployed(RASA_SERVICE, raw)), url
    container = copy.deepcopy(k8s_container(RASA_DEPLOYMENT))
    container["env"].append({"name": "LOCK_REDIS_PORT", "value": "6380"})
    assert rate_limit_storage_problems(k8s_deployed(RASA_DEPLOYMENT, container))


def test_public_channel_limits_are_the_declared_defaults() -> None:
    """The web channels' limits as the Rasa server declares them, stated in the
    files."""
    limits = ("RATE_LIMIT", "REST_MAX_BODY_BYTES", "MAX_REQUEST_BYTES")
    defaults = {name: str(declared("rasa")[name].default) for name in limits}
    for rasa in (compose_deployed(RASA_SERVICE), k8s_deployed(RASA_DEPLOYMENT)):
        assert {name: rasa.values.get(name) for name in defaults} == defaults, (
            rasa.where
        )
