"""Where the secrets come from: never a value in a deployment file, always a
required variable (compose ``${VAR:?message}``, a Kubernetes Secret key) but
the messaging channels' optional ones, generated long enough; and each server
gets only the secrets it reads (the page server only the agent desk's).
"""

from __future__ import annotations

import copy
import itertools
import re
from typing import List

import pytest

from settings.core import Variable
from settings.processes import PROCESSES
from tests.deploy.interpolation import (
    MissingVariable,
)
from tests.deploy.support import (
    ACTIONS_DEPLOYMENT,
    COMPOSE_CODE,
    COMPOSE_ENV_EXAMPLE,
    IDENTITY_SECRET,
    K8S_ARG_REF,
    K8S_CODE,
    K8S_TEMPLATES,
    OPTIONAL_SECRETS,
    PLACEHOLDER,
    REQUIRED_REF,
    ROOT,
    SECRET_FLAG,
    SECRET_NAME,
    URL_PASSWORD,
    WEB_DEPLOYMENT,
    WEB_SERVICE,
    Deployed,
    all_k8s_manifests,
    channel_env_vars,
    command_list,
    compose,
    compose_deployed,
    compose_raw,
    compose_strings,
    declared,
    deployed_env_vars,
    dummy_env,
    k8s_container,
    k8s_deployed,
    k8s_manifests,
    relative,
    required_compose_vars,
    service_env,
)


def test_compose_holds_no_plaintext_secret() -> None:
    """Secrets are ${VAR:?message}; an OPTIONAL_SECRETS one is ${ITSELF:-}
    (empty = channel off), never with a default value."""
    raw = compose_raw()
    for name, service in raw["services"].items():
        for key, value in service_env(service).items():
            if not SECRET_NAME.search(key):
                continue
            if key in OPTIONAL_SECRETS:
                assert value == f"${{{key}:-}}", f"{name}.{key} must be ${{{key}:-}}"
            else:
                assert REQUIRED_REF.fullmatch(value), (
                    f"{name}.{key} must be ${{VAR:?message}}"
                )
        args = command_list(service) if "command" in service else []
        for flag, value in itertools.pairwise(args):
            if flag.startswith("-") and SECRET_FLAG.search(flag):
                assert REQUIRED_REF.fullmatch(value), (
                    f"{name}: {flag} must be ${{VAR:?message}}"
                )
    for password in (
        p for text in compose_strings(raw) for p in URL_PASSWORD.findall(text)
    ):
        assert REQUIRED_REF.fullmatch(password), f"password in a URL: {password}"


def test_compose_refuses_to_start_without_each_secret() -> None:
    required = required_compose_vars()
    assert {"POSTGRES_PASSWORD", "RASA_AUTH_TOKEN"} <= required
    for name in required:
        env = {k: v for k, v in dummy_env().items() if k != name}
        with pytest.raises(MissingVariable, match=name):
            compose(env)
        with pytest.raises(MissingVariable, match=name):
            compose({**env, name: ""})


def test_compose_env_example_sets_no_secret() -> None:
    names = set()
    for line in COMPOSE_ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            names.add(key.strip())
            if SECRET_NAME.search(key):
                assert value.strip() == "", f"{key} must be empty in the example"
    assert required_compose_vars() <= names, (
        "the example must list every required variable"
    )
    gitignore = (ROOT / ".gitignore").read_text(encoding="utf-8").split()
    assert ".env" in gitignore


def _refuses(variable: Variable, value: str) -> bool:
    try:
        variable.parse(value)
    except ValueError:
        return True
    return False


def test_secrets_are_generated_long_enough() -> None:
    """`openssl rand -hex N` gives 2N characters: long enough for every
    required secret the servers declare (a shorter one is refused at start-up:
    the identity secret, the action server's token)."""
    generated = {
        variable.name: variable
        for code in PROCESSES
        for variable in declared(code).values()
        if variable.secret
        and variable.name in deployed_env_vars(code)
        and variable.name not in OPTIONAL_SECRETS
    }
    assert {IDENTITY_SECRET, "ACTION_SERVER_TOKEN"} <= set(generated)
    assert all(_refuses(variable, "0") for variable in generated.values()), (
        "a required secret of one character is accepted"
    )
    for path in (COMPOSE_ENV_EXAMPLE, K8S_TEMPLATES / "secret.example.yaml"):
        sizes = re.findall(r"openssl rand -hex (\d+)", path.read_text(encoding="utf-8"))
        assert sizes, f"{relative(path)} tells no way to generate a secret"
        too_short = [
            f"{name}: -hex {n}"
            for n in sizes
            for name, variable in generated.items()
            if _refuses(variable, "0" * 2 * int(n))
        ]
        assert not too_short, f"{relative(path)}: {too_short}"


def test_secret_names_are_the_declared_secrets() -> None:
    """The file checks tell a secret by its name (SECRET_NAME): it must name
    exactly the variables the servers declare secret."""
    for code in PROCESSES:
        variables = declared(code)
        secret = {name for name, variable in variables.items() if variable.secret}
        assert secret == {name for name in variables if SECRET_NAME.search(name)}, code


def test_optional_secrets_are_the_channels_secrets() -> None:
    """OPTIONAL_SECRETS (the messaging channels' declared secrets, off without
    them) are the channels' secret-named variables; nothing else may be left
    unset."""
    channel = channel_env_vars()
    assert channel, "the Rasa server declares no channel variable"
    assert OPTIONAL_SECRETS == {n for n in channel if SECRET_NAME.search(n)}
    assert not OPTIONAL_SECRETS & required_compose_vars()


def test_kubernetes_requires_every_other_secret() -> None:
    """A missing required secret stops the pod; a missing channel secret does not."""
    for deployment in K8S_CODE:
        for item in k8s_container(deployment).get("env", []):
            ref = item.get("valueFrom", {}).get("secretKeyRef")
            if ref is not None:
                assert ref.get("optional", False) is (
                    item["name"] in OPTIONAL_SECRETS
                ), f"{deployment} {item['name']}"


# The page server's secrets: the agent desk's (the tracker store's password,
# Rasa's API token; in Kubernetes also the case store's URL, which holds a
# password). Never the identity secret.
PAGE_SERVER_SECRETS = {"TRACKER_DB_PASSWORD", "RASA_AUTH_TOKEN"}
PAGE_SERVER_SECRET_REFS = PAGE_SERVER_SECRETS | {"ACCOUNT_DB_URL", "CASE_DB_URL"}


def test_the_page_server_holds_only_the_agent_desks_secrets() -> None:
    web = compose()["services"][WEB_SERVICE]
    assert {key for key in service_env(web) if SECRET_NAME.search(key)} == (
        PAGE_SERVER_SECRETS
    )
    container = k8s_container(WEB_DEPLOYMENT)
    assert not any("secretRef" in source for source in container.get("envFrom", []))
    assert {
        item["name"] for item in container.get("env", []) if "valueFrom" in item
    } == PAGE_SERVER_SECRET_REFS


def test_kubernetes_holds_no_plaintext_secret() -> None:
    assert not [m.id for m in k8s_manifests() if m.doc["kind"] == "Secret"], (
        "Secrets belong in deploy/k8s/templates/: `kubectl apply -f deploy/k8s/` "
        "must never overwrite the real one with placeholders"
    )
    for manifest in all_k8s_manifests():
        doc = manifest.doc
        if doc["kind"] == "Secret":
            assert "data" not in doc, (
                f"{manifest.id}: use stringData placeholders, not base64"
            )
            for key, value in doc["stringData"].items():
                assert PLACEHOLDER in value, (
                    f"{manifest.id}: {key} is not a placeholder"
                )
        if doc["kind"] == "ConfigMap":
            for key, value in doc.get("data", {}).items():
                assert not SECRET_NAME.search(key), (
                    f"{manifest.id}: {key} belongs in the Secret"
                )
                assert not URL_PASSWORD.search(str(value)), (
                    f"{manifest.id}: {key} holds a password"
                )
        if doc["kind"] == "Deployment":
            for container in doc["spec"]["template"]["spec"]["containers"]:
                for item in container.get("env", []):
                    if SECRET_NAME.search(item["name"]) or "URL" in item["name"]:
                        assert "secretKeyRef" in item.get("valueFrom", {}), (
                            f"{manifest.id}: {item['name']}"
                        )


def secrets_not_read_problems(server: Deployed, code: str) -> List[str]:
    """A server gets only the secrets its process reads and may be given (or
    its command reads): not the page server's demo-login secret."""
    used = deployed_env_vars(code) | {
        name for arg in server.args for name in K8S_ARG_REF.findall(arg)
    }
    given = set(server.secrets) | {
        name for name in server.values if SECRET_NAME.search(name)
    }
    return sorted(f"{server.where}: {name} is not read there" for name in given - used)


def test_servers_get_only_the_secrets_they_read() -> None:
    """E.g. the demo seed runs the actions code but not the action server: it
    gets no ACTION_SERVER_TOKEN."""
    servers = [
        (compose_deployed(service), code) for service, code in COMPOSE_CODE.items()
    ] + [(k8s_deployed(name), code) for name, code in K8S_CODE.items()]
    assert [
        p for server, code in servers for p in secrets_not_read_problems(server, code)
    ] == []


def test_secrets_not_read_check_can_fail() -> None:
    raw = compose_raw()
    raw["services"]["demo-seed"]["environment"] = {
        **raw["services"]["demo-seed"]["environment"],
        "ACTION_SERVER_TOKEN": raw["services"]["actions"]["environment"][
            "ACTION_SERVER_TOKEN"
        ],
    }
    container = copy.deepcopy(k8s_container(ACTIONS_DEPLOYMENT))
    container["env"].append(
        {
            "name": "RASA_AUTH_TOKEN",
            "valueFrom": {
                "secretKeyRef": {"name": "jiebei-secrets", "key": "RASA_AUTH_TOKEN"}
            },
        }
    )
    assert secrets_not_read_problems(compose_deployed("demo-seed", raw), "seed")
    assert secrets_not_read_problems(
        k8s_deployed(ACTIONS_DEPLOYMENT, container), "actions"
    )
    # The page server declares the identity secret, for its demo login only.
    raw["services"][WEB_SERVICE]["environment"][IDENTITY_SECRET] = raw["services"][
        "actions"
    ]["environment"][IDENTITY_SECRET]
    assert secrets_not_read_problems(compose_deployed(WEB_SERVICE, raw), "web")
