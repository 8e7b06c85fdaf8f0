"""What the deployment checks (tests/deploy) share: the files, the servers, what
each server reads, and the loaders.

What a server reads comes from its declared settings (settings/processes.py:
``PROCESSES``, one entry per process), and for the Rasa server also from the
``${VAR}`` references of endpoints.prod.yml and credentials.yml, which Rasa
expands itself. The loaders read docker-compose.yml as docker compose does
(interpolation.py), the Kubernetes manifests of deploy/k8s, and one server as
a deployment file runs it (:class:`Deployed`). deploy/Dockerfile and
.dockerignore are read by dockerfile.py.
"""

from __future__ import annotations

import importlib
import re
import shlex
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any, Dict, Iterator, List, Mapping, Optional, Set, Tuple

import yaml

from settings.core import Variable
from settings.processes import PROCESSES, process_variables
from tests.deploy.interpolation import (
    ENV_NAME,
    Reference,
    interpolate_tree,
    references,
)

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
COMPOSE_ENV_EXAMPLE = ROOT / "deploy" / "compose.env.example"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
K8S_DIR = ROOT / "deploy" / "k8s"
K8S_TEMPLATES = K8S_DIR / "templates"
ENDPOINTS_PROD = ROOT / "endpoints.prod.yml"
CREDENTIALS = ROOT / "credentials.yml"
CONFIG = ROOT / "config.yml"
# The Compose specification's schema (compose-spec/compose-spec, Apache-2.0),
# as vendored by check-jsonschema 0.38.2; check-jsonschema itself needs
# jsonschema >= 4.18, which rasa 3.6 does not allow.
COMPOSE_SCHEMA = Path(__file__).with_name("schemas") / "compose-spec.json"
# kubernetes-validate 1.28.3 is the last release that works with jsonschema 4.17
# (rasa's pin); 1.28 is the newest Kubernetes schema set it bundles.
K8S_VERSION = "1.28.0"

RASA_SERVICE = "rasa"
ACTIONS_SERVICES = ("actions", "demo-seed")
WEB_SERVICE = "web"
RASA_DEPLOYMENT = "jiebei-rasa"
ACTIONS_DEPLOYMENT = "jiebei-actions"
WEB_DEPLOYMENT = "jiebei-web"
PLACEHOLDER = "REPLACE_ME"

ENV_IN_YAML = re.compile(r"\$\{(" + ENV_NAME + r")")
REQUIRED_REF = re.compile(r"\$\{" + ENV_NAME + r":?\?[^}]*\}")
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|CREDENTIAL|PRIVATE|_KEY$", re.I)
SECRET_FLAG = re.compile(r"token|password|secret", re.I)
URL_PASSWORD = re.compile(r"://[^/\s:@]+:([^@\s]+)@")
K8S_ARG_REF = re.compile(r"\$\((" + ENV_NAME + r")\)")

# ----------------------------------------------------------------------------
# The project's code, as the deployment files name it. Every module path the
# checks use is here (the commands' modules, credentials.yml's channel classes).

# `python -m` of the chat page server and of the action server.
PAGE_SERVER_MODULE = "web.server"
ACTION_SERVER_MODULE = "actions.server"
# credentials.yml's web channels: Rasa's REST and socket.io, wrapped by the
# reply guard. Always on, and their settings (size limits, allowed origins;
# the rate limit is the reply guard's) have values when unset. Every other
# channel there is a messaging platform's, off until it is configured.
WEB_CHANNELS = frozenset(
    {
        "bot_server.channels.rest.GuardedRestInput",
        "bot_server.channels.socketio.GuardedSocketIOInput",
    }
)
# The packages whose code the servers run (scripts/ and tests/ are dev tools).
CODE_PACKAGES = ("actions", "bot_server", "desk", "insights", "nlu", "settings", "web")


def page_server_module() -> ModuleType:
    """The chat page server's module (its defaults: host, port, web folder)."""
    return importlib.import_module(PAGE_SERVER_MODULE)


def relative(path: Path) -> str:
    return path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else str(path)


def module_file(module: str) -> Optional[Path]:
    """The file of a project module (``actions.identity``); None for a library."""
    if not module or module.split(".", 1)[0] not in CODE_PACKAGES:
        return None
    base = ROOT.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


# ----------------------------------------------------------------------------
# What each server reads: the declared settings (settings.processes.PROCESSES)

# The process each compose service and each Kubernetes Deployment runs.
COMPOSE_CODE: Mapping[str, str] = {
    RASA_SERVICE: "rasa",
    "actions": "actions",
    "demo-seed": "seed",
    WEB_SERVICE: "web",
}
K8S_CODE: Mapping[str, str] = {
    RASA_DEPLOYMENT: "rasa",
    ACTIONS_DEPLOYMENT: "actions",
    WEB_DEPLOYMENT: "web",
}
# Processes that run in compose only, and why Kubernetes has no Deployment
# for them.
COMPOSE_ONLY_CODE: Mapping[str, str] = {
    "seed": (
        "the demo seed loads the fixture accounts of a demo deployment "
        "(compose --profile demo); a cluster connects its own account service"
    ),
}
# Signs (Rasa's messaging channels) and verifies (the action server) the
# identity tokens; the page server declares it for its demo login only.
IDENTITY_SECRET = "IDENTITY_JWT_SECRET"
# The messaging channels' variables (WeCom, the WeChat Official Account): the
# Rasa server's declared variables with these prefixes.
CHANNEL_PREFIXES = ("WECOM_", "WECHAT_")
# Values a deployment file must never give a variable (a full match), and why.
NEVER_DEPLOYED_VALUES: Mapping[str, Tuple[str, str]] = {
    "RATE_LIMIT": (
        r"(?i)\s*off\s*",
        "switches the per-sender rate limit off (benchmarks only)",
    ),
    "WEB_ALLOWED_ORIGINS": (
        r"(?s).*\*.*",
        "lets any web site open socket.io sessions in its visitors' names",
    ),
}


def declared(code: str) -> Dict[str, Variable]:
    """The variables a process declares, by name."""
    return {variable.name: variable for variable in process_variables(code)}


def declared_value(code: str, name: str, raw: str) -> Any:
    """``raw`` as the process reads it (empty: the default), as settings.core.load
    does; raises ValueError when the process would refuse it."""
    variable = declared(code)[name]
    text = raw.strip()
    return variable.parse(text) if text else variable.default


def yaml_env_refs(node: Any) -> Set[str]:
    """``${VAR}`` names in the values of a parsed YAML file (comments do not count)."""
    if isinstance(node, str):
        return set(ENV_IN_YAML.findall(node))
    if isinstance(node, dict):
        node = list(node.values())
    if isinstance(node, list):
        return set().union(*(yaml_env_refs(item) for item in node))
    return set()


@cache
def code_env_vars(code: str) -> frozenset[str]:
    """What a server reads: its declared variables; Rasa also expands ``${VAR}``
    in endpoints.prod.yml and credentials.yml."""
    names = set(declared(code))
    if code == "rasa":
        assert ENDPOINTS_PROD.exists(), (
            "endpoints.prod.yml (the production profile) is missing"
        )
        from_yaml = yaml_env_refs(
            yaml.safe_load(ENDPOINTS_PROD.read_text(encoding="utf-8"))
        )
        assert from_yaml, "no ${VAR} found in endpoints.prod.yml: the regex is wrong"
        names |= from_yaml | yaml_env_refs(
            yaml.safe_load(CREDENTIALS.read_text(encoding="utf-8"))
        )
    assert names, f"the {code} process declares no variable"
    return frozenset(names)


def never_deployed(code: str) -> Dict[str, str]:
    """The variables a deployment of that process must never set, and why."""
    return {
        name: variable.never_deployed
        for name, variable in declared(code).items()
        if variable.never_deployed
    }


def deployed_env_vars(code: str) -> Set[str]:
    """What a deployment of that process must set: what it reads, less what it
    must never be given."""
    return set(code_env_vars(code)) - set(never_deployed(code))


def channel_env_vars() -> Set[str]:
    """What the messaging channels read (all optional): the Rasa server's
    declared variables of CHANNEL_PREFIXES."""
    return {name for name in declared("rasa") if name.startswith(CHANNEL_PREFIXES)}


# Variables no deployment file may set anywhere, and why: never deployed by
# every process that reads them (a test or demo switch). A variable only some
# processes must never get (the page server's identity secret) is checked per
# server.
NEVER_DEPLOYED: Mapping[str, str] = {
    name: reason
    for code in PROCESSES
    for name, reason in never_deployed(code).items()
    if all(
        name in never_deployed(other) for other in PROCESSES if name in declared(other)
    )
}
# Secrets that may be left unset: the messaging channels' (declared secret).
# A channel without its settings is off (its webhook answers 503) and Rasa
# starts anyway, so compose passes them as ${VAR:-} (empty = off) and
# Kubernetes as `secretKeyRef.optional: true`. Every other secret is required:
# ${VAR:?message}, and a non-optional key.
OPTIONAL_SECRETS = frozenset(
    name for name in channel_env_vars() if declared("rasa")[name].secret
)


# ----------------------------------------------------------------------------
# docker-compose.yml and deploy/compose.env.example


def compose_raw() -> Dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def compose_strings(node: Any) -> Iterator[str]:
    """Every string value of the parsed file (what compose interpolates)."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, (list, dict)):
        for item in node.values() if isinstance(node, dict) else node:
            yield from compose_strings(item)


def compose_references() -> List[Reference]:
    return [ref for text in compose_strings(compose_raw()) for ref in references(text)]


def required_compose_vars() -> Set[str]:
    return {ref.name for ref in compose_references() if ref.op in (":?", "?")}


def dummy_env() -> Dict[str, str]:
    """A value for every required variable (URL-safe, like the real ones must be)."""
    return {
        name: f"dummy-{name.lower().replace('_', '-')}"
        for name in required_compose_vars()
    }


def compose(env: Optional[Mapping[str, str]] = None) -> Dict[str, Any]:
    """docker-compose.yml as docker compose sees it with ``env`` set."""
    result = interpolate_tree(compose_raw(), dummy_env() if env is None else env)
    assert isinstance(result, dict)
    return result


def service_env(service: Mapping[str, Any]) -> Dict[str, str]:
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        return dict(
            item.split("=", 1) if "=" in item else (item, "") for item in environment
        )
    return {
        key: "" if value is None else str(value) for key, value in environment.items()
    }


def command_list(service: Mapping[str, Any]) -> List[str]:
    command = service["command"]
    return (
        shlex.split(command)
        if isinstance(command, str)
        else [str(part) for part in command]
    )


def option(
    args: List[str], *names: str, default: Optional[str] = None
) -> Optional[str]:
    for index, arg in enumerate(args):
        if arg in names and index + 1 < len(args):
            return args[index + 1]
        for name in names:
            if name.startswith("--") and arg.startswith(name + "="):
                return arg.split("=", 1)[1]
    return default


def published_ports(service: Mapping[str, Any]) -> List[Tuple[str, str, str]]:
    """A compose service's ``ports`` as (host ip, host port, container port)."""
    found = []
    for entry in service.get("ports", []):
        parts = str(entry).split("/")[0].split(":")
        assert len(parts) == 3, f"{entry}: give the host address (loopback)"
        found.append((parts[0], parts[1], parts[2]))
    return found


def env_example_lines(text: Optional[str] = None) -> Dict[str, Tuple[str, bool]]:
    """deploy/compose.env.example (or ``text``): name → (value, commented out)."""
    if text is None:
        text = COMPOSE_ENV_EXAMPLE.read_text(encoding="utf-8")
    found: Dict[str, Tuple[str, bool]] = {}
    for line in text.splitlines():
        match = re.fullmatch(r"\s*(#\s*)?(" + ENV_NAME + r")=(\S*).*", line)
        if match:
            found[match.group(2)] = (match.group(3), match.group(1) is not None)
    return found


# ----------------------------------------------------------------------------
# Kubernetes manifests


@dataclass(frozen=True)
class Manifest:
    path: Path
    doc: Dict[str, Any]

    @property
    def id(self) -> str:
        return f"{self.path.relative_to(K8S_DIR)}:{self.doc.get('kind')}/{self.doc.get('metadata', {}).get('name')}"


def k8s_manifests(folder: Path = K8S_DIR) -> List[Manifest]:
    found = []
    for path in sorted(folder.glob("*.yaml")) + sorted(folder.glob("*.yml")):
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if doc is not None:
                found.append(Manifest(path, doc))
    return found


def all_k8s_manifests() -> List[Manifest]:
    return k8s_manifests() + k8s_manifests(K8S_TEMPLATES)


def k8s_object(kind: str, name: str) -> Dict[str, Any]:
    matches = [
        m.doc
        for m in all_k8s_manifests()
        if m.doc.get("kind") == kind and m.doc["metadata"]["name"] == name
    ]
    assert len(matches) == 1, (
        f"expected one {kind} {name!r} under deploy/k8s, found {len(matches)}"
    )
    return matches[0]


def k8s_container(deployment: str) -> Dict[str, Any]:
    containers = k8s_object("Deployment", deployment)["spec"]["template"]["spec"][
        "containers"
    ]
    assert len(containers) == 1, f"{deployment}: one container expected"
    container: Dict[str, Any] = containers[0]
    return container


def k8s_container_env(container: Mapping[str, Any]) -> Set[str]:
    """Every variable the container gets (env, and envFrom through the objects)."""
    names = {item["name"] for item in container.get("env", [])}
    for source in container.get("envFrom", []):
        prefix = source.get("prefix", "")
        if "configMapRef" in source:
            data = k8s_object("ConfigMap", source["configMapRef"]["name"]).get(
                "data", {}
            )
        else:
            data = k8s_object("Secret", source["secretRef"]["name"]).get(
                "stringData", {}
            )
        names |= {prefix + key for key in data}
    return names


# ----------------------------------------------------------------------------
# One server as a deployment file runs it


@dataclass(frozen=True)
class Deployed:
    """One server as a deployment file runs it.

    ``values``: its plain settings, defaults applied (compose's ``${VAR:-x}``;
    the ConfigMap, ``env[].value``); ``secrets``: the variables set from a
    required secret, each with the secret it comes from (compose: the variable
    of ``${VAR:?message}``; Kubernetes: ``secret/key``); ``arg_secrets``: the
    same for each argument of the command (None: not a secret).
    """

    where: str
    args: Tuple[str, ...]
    arg_secrets: Tuple[Optional[str], ...]
    values: Mapping[str, str]
    secrets: Mapping[str, str]


def _compose_secret(value: str) -> Optional[str]:
    """The variable of a ``${VAR:?message}`` value; None for anything else."""
    return next(references(value)).name if REQUIRED_REF.fullmatch(value) else None


def compose_deployed(
    service: str,
    raw: Optional[Mapping[str, Any]] = None,
    env: Optional[Mapping[str, str]] = None,
) -> Deployed:
    """A service of docker-compose.yml (or of a changed copy, ``raw``) with
    ``env`` set (default: dummy_env())."""
    raw_service = (compose_raw() if raw is None else raw)["services"][service]
    interpolated = interpolate_tree(raw_service, dummy_env() if env is None else env)
    secrets = {
        key: name
        for key, value in service_env(raw_service).items()
        if (name := _compose_secret(value)) is not None
    }
    raw_args = command_list(raw_service) if "command" in raw_service else []
    return Deployed(
        where=f"docker-compose.yml {service}",
        args=tuple(command_list(interpolated) if raw_args else []),
        arg_secrets=tuple(_compose_secret(arg) for arg in raw_args),
        values={
            key: value
            for key, value in service_env(interpolated).items()
            if key not in secrets
        },
        secrets=secrets,
    )


def k8s_deployed(
    deployment: str, container: Optional[Mapping[str, Any]] = None
) -> Deployed:
    """The container of a Deployment of deploy/k8s (or a changed copy,
    ``container``); the ConfigMaps and Secrets it names from deploy/k8s."""
    container = k8s_container(deployment) if container is None else container
    values: Dict[str, str] = {}
    secrets: Dict[str, str] = {}
    for source in container.get("envFrom", []):
        prefix = source.get("prefix", "")
        if "configMapRef" in source:
            config_map = k8s_object("ConfigMap", source["configMapRef"]["name"])
            for key, value in config_map.get("data", {}).items():
                values[prefix + key] = str(value)
        elif not source["secretRef"].get("optional", False):
            name = source["secretRef"]["name"]
            for key in k8s_object("Secret", name).get("stringData", {}):
                secrets[prefix + key] = f"{name}/{key}"
    for item in container.get("env", []):
        name, source = item["name"], item.get("valueFrom", {})
        values.pop(name, None)
        secrets.pop(name, None)
        if "secretKeyRef" in source:
            ref = source["secretKeyRef"]
            if not ref.get("optional", False):
                secrets[name] = f"{ref['name']}/{ref['key']}"
        elif "configMapKeyRef" in source:
            ref = source["configMapKeyRef"]
            values[name] = str(k8s_object("ConfigMap", ref["name"])["data"][ref["key"]])
        elif "value" in item:
            values[name] = str(item["value"])
    args = [
        str(arg) for arg in container.get("command", []) + container.get("args", [])
    ]
    return Deployed(
        where=f"deploy/k8s {deployment}",
        args=tuple(args),
        arg_secrets=tuple(
            secrets.get(match.group(1))
            if (match := K8S_ARG_REF.fullmatch(arg))
            else None
            for arg in args
        ),
        values=values,
        secrets=secrets,
    )


def deployed_settings(
    raw_compose: Optional[Mapping[str, Any]] = None,
    manifests: Optional[List[Manifest]] = None,
    env_example: Optional[str] = None,
) -> List[Tuple[str, str, str]]:
    """(where, variable, value) of every setting the deployment files give:
    compose's services (defaults applied), deploy/compose.env.example (commented
    defaults included), the ConfigMaps and the Deployments' env values."""
    raw = compose_raw() if raw_compose is None else raw_compose
    found = [
        (f"docker-compose.yml {name}", key, value)
        for name, service in interpolate_tree(raw, dummy_env())["services"].items()
        for key, value in service_env(service).items()
    ]
    found += [
        ("deploy/compose.env.example", key, value)
        for key, (value, _) in env_example_lines(env_example).items()
    ]
    for manifest in all_k8s_manifests() if manifests is None else manifests:
        doc = manifest.doc
        if doc["kind"] == "ConfigMap":
            found += [
                (manifest.id, key, str(value))
                for key, value in doc.get("data", {}).items()
            ]
        if doc["kind"] == "Deployment":
            found += [
                (manifest.id, item["name"], str(item["value"]))
                for container in doc["spec"]["template"]["spec"]["containers"]
                for item in container.get("env", [])
                if "value" in item
            ]
    return found
