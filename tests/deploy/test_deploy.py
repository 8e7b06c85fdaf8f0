"""Static checks of the deployment files: docker-compose.yml, deploy/, .dockerignore.

No network, Docker daemon or cluster is needed. The files are checked against
published schemas (the Compose specification's JSON schema, vendored in
``schemas/``; Kubernetes' schemas through ``kubernetes-validate``) and against
the project: the environment variables the code reads, the ports in the
commands, the files the commands load, the secrets.
"""

from __future__ import annotations

import ast
import copy
import itertools
import json
import os
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass, field
from fnmatch import fnmatch
from functools import cache
from pathlib import Path, PurePosixPath
from typing import Any, Dict, Iterator, List, Mapping, Optional, Set, Tuple
from urllib.parse import urlsplit

import jsonschema
import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml

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

# Measured RSS (README, issue 5): Rasa server with this model, action server.
RASA_RSS_MIB = (1024, 1536)
ACTIONS_RSS_MIB = 150

RASA_SERVICE = "rasa"
ACTIONS_SERVICES = ("actions", "demo-seed")
RASA_DEPLOYMENT = "jiebei-rasa"
ACTIONS_DEPLOYMENT = "jiebei-actions"
PLACEHOLDER = "REPLACE_ME"

ENV_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
ENV_IN_YAML = re.compile(r"\$\{(" + ENV_NAME + r")")
ENV_NAME_LITERAL = re.compile(r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+")
REQUIRED_REF = re.compile(r"\$\{" + ENV_NAME + r":?\?[^}]*\}")
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|CREDENTIAL|PRIVATE|_KEY$", re.I)
SECRET_FLAG = re.compile(r"token|password|secret", re.I)
URL_PASSWORD = re.compile(r"://[^/\s:@]+:([^@\s]+)@")


# ----------------------------------------------------------------------------
# What the code reads


def _python_env_reads(path: Path, *, config_module: bool) -> Set[str]:
    """Names read with os.environ/os.getenv; in a config module also any call
    whose first argument is an env-style literal (``_float("X", 2.0)``)."""
    names: Set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Subscript):
            target, key = ast.unparse(node.value), node.slice
            if target in ("os.environ", "environ") and isinstance(key, ast.Constant):
                names.add(str(key.value))
        if not isinstance(node, ast.Call) or not node.args:
            continue
        first = node.args[0]
        if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
            continue
        function = ast.unparse(node.func)
        direct = function.endswith(("environ.get", "getenv", "environ.setdefault"))
        if direct or (config_module and ENV_NAME_LITERAL.fullmatch(first.value)):
            names.add(first.value)
    return names


def yaml_env_refs(node: Any) -> Set[str]:
    """``${VAR}`` names in the values of a parsed YAML file (comments do not count)."""
    if isinstance(node, str):
        return set(ENV_IN_YAML.findall(node))
    if isinstance(node, dict):
        node = list(node.values())
    if isinstance(node, list):
        return set().union(*(yaml_env_refs(item) for item in node))
    return set()


def _package_env_reads(*packages: str) -> Set[str]:
    names: Set[str] = set()
    for package in packages:
        for path in sorted((ROOT / package).rglob("*.py")):
            names |= _python_env_reads(path, config_module=path.name == "config.py")
    return names


@cache
def rasa_env_vars() -> frozenset[str]:
    """What the Rasa server reads: endpoints.prod.yml and its Python extensions."""
    assert ENDPOINTS_PROD.exists(), (
        "endpoints.prod.yml (the production profile) is missing"
    )
    from_yaml = yaml_env_refs(
        yaml.safe_load(ENDPOINTS_PROD.read_text(encoding="utf-8"))
    )
    assert from_yaml, "no ${VAR} found in endpoints.prod.yml: the regex is wrong"
    return frozenset(from_yaml | _package_env_reads("bot_server", "nlu"))


@cache
def actions_env_vars() -> frozenset[str]:
    """What the action server reads (actions/config.py and any direct read)."""
    names = _package_env_reads("actions")
    assert names, "no environment variable found in actions/: the scan is wrong"
    return frozenset(names)


def test_the_env_scan_finds_what_config_py_reads() -> None:
    """Guards the scanner: a read through a helper (``_float(NAME)``) counts too."""
    reads = _python_env_reads(ROOT / "actions" / "config.py", config_module=True)
    source = (ROOT / "actions" / "config.py").read_text(encoding="utf-8")
    literals = set(re.findall(r"[\"'](" + ENV_NAME_LITERAL.pattern + r")[\"']", source))
    assert reads == literals


# ----------------------------------------------------------------------------
# docker-compose.yml: interpolation as docker compose does it


class MissingVariable(Exception):
    """A ``${VAR:?message}`` whose variable is not set."""


_REFERENCE = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<braced>[^}]*)\}|(?P<named>" + ENV_NAME + r"))"
)
_BRACED = re.compile(
    r"(?P<name>" + ENV_NAME + r")(?:(?P<op>:?[-?+])(?P<arg>.*))?", re.S
)


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Compose's variable syntax: $$, $VAR, ${VAR}, ${VAR[:]-x}, ${VAR[:]?x}, ${VAR[:]+x}."""

    def replace(match: re.Match[str]) -> str:
        if match.group("escaped"):
            return "$"
        if match.group("named"):
            return env.get(match.group("named"), "")
        braced = _BRACED.fullmatch(match.group("braced"))
        if braced is None or "$" in (braced.group("arg") or ""):
            raise ValueError(f"unsupported interpolation {match.group(0)!r}")
        name, op, arg = braced.group("name"), braced.group("op"), braced.group("arg")
        value = env.get(name)
        empty = not value
        if op is None:
            return value or ""
        if op in (":-", "-"):
            return arg if (empty if op == ":-" else value is None) else str(value)
        if op in (":?", "?"):
            if empty if op == ":?" else value is None:
                raise MissingVariable(f"{name}: {arg}")
            return str(value)
        return "" if (empty if op == ":+" else value is None) else arg

    return _REFERENCE.sub(replace, text)


def interpolate_tree(node: Any, env: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, list):
        return [interpolate_tree(item, env) for item in node]
    if isinstance(node, dict):
        return {key: interpolate_tree(value, env) for key, value in node.items()}
    return node


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


def required_compose_vars() -> Set[str]:
    pattern = re.compile(r"\$\{(" + ENV_NAME + r"):?\?")
    return {
        name
        for text in compose_strings(compose_raw())
        for name in pattern.findall(text)
    }


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


@cache
def compose_validator() -> Any:
    schema = json.loads(COMPOSE_SCHEMA.read_text(encoding="utf-8"))
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    return validator_class(schema)


def compose_errors(document: Mapping[str, Any]) -> List[str]:
    errors = compose_validator().iter_errors(document)
    return sorted(
        f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
        for error in errors
    )


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


def resolve_port(container: Mapping[str, Any], port: Any) -> int:
    """A probe's or Service's port (number or name) as the container's port number."""
    for declared in container.get("ports", []):
        if port in (declared.get("name"), declared["containerPort"]):
            return int(declared["containerPort"])
    raise AssertionError(
        f"port {port!r} is not declared by container {container['name']}"
    )


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


# ----------------------------------------------------------------------------
# deploy/Dockerfile


@dataclass
class Stage:
    name: str
    base: str
    workdir: str = "/"
    # (path in the image relative to WORKDIR, --from stage or None, source)
    copies: List[Tuple[str, Optional[str], str]] = field(default_factory=list)
    runs: List[str] = field(default_factory=list)
    env: Dict[str, str] = field(default_factory=dict)
    user: Optional[str] = None


def dockerfile_instructions() -> Iterator[Tuple[str, str]]:
    logical = ""
    for line in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        if line.strip().startswith("#"):
            continue
        if line.rstrip().endswith("\\"):
            logical += line.rstrip()[:-1] + " "
            continue
        logical += line
        if logical.strip():
            keyword, _, rest = logical.strip().partition(" ")
            yield keyword.upper(), rest.strip()
        logical = ""


def dockerfile_stages() -> Dict[str, Stage]:
    """Stages in order, with what each copies and runs (relative to WORKDIR)."""
    stages: Dict[str, Stage] = {}
    stage: Optional[Stage] = None
    for keyword, rest in dockerfile_instructions():
        if keyword == "FROM":
            words = rest.split()
            words = [w for w in words if not w.startswith("--")]
            name = (
                words[2]
                if len(words) == 3 and words[1].lower() == "as"
                else str(len(stages))
            )
            parent = stages.get(words[0])
            stage = Stage(
                name=name, base=words[0], workdir=parent.workdir if parent else "/"
            )
            stages[name] = stage
            continue
        assert stage is not None, "instruction before FROM"
        if keyword == "WORKDIR":
            stage.workdir = str(PurePosixPath(stage.workdir) / rest)
        elif keyword == "RUN":
            stage.runs.append(rest)
        elif keyword == "USER":
            stage.user = rest
        elif keyword == "ENV":
            for pair in shlex.split(rest):
                key, _, value = pair.partition("=")
                stage.env[key] = value
        elif keyword == "COPY":
            parts = json.loads(rest) if rest.startswith("[") else shlex.split(rest)
            flags = [p for p in parts if p.startswith("--")]
            paths = [p for p in parts if not p.startswith("--")]
            origin = next(
                (f.split("=", 1)[1] for f in flags if f.startswith("--from=")), None
            )
            *sources, dest = paths
            into_dir = dest.endswith("/") or len(sources) > 1
            for source in sources:
                target = PurePosixPath(stage.workdir) / dest
                if into_dir and not source.endswith("/"):
                    target = target / PurePosixPath(source).name
                relative = (
                    str(target.relative_to(stage.workdir))
                    if target.is_relative_to(stage.workdir)
                    else str(target)
                )
                stage.copies.append((relative, origin, source.rstrip("/")))
    return stages


def stage_chain(stages: Mapping[str, Stage], name: str) -> List[Stage]:
    chain = [stages[name]]
    while chain[-1].base in stages:
        chain.append(stages[chain[-1].base])
    return chain


def image_has(chain: List[Stage], path: str) -> bool:
    """Whether a COPY of this stage chain puts ``path`` (or a parent folder) in place."""
    wanted = PurePosixPath(path)
    return any(
        wanted == PurePosixPath(dest) or PurePosixPath(dest) in wanted.parents
        for stage in chain
        for dest, _, _ in stage.copies
    )


def runtime_stage_name() -> str:
    build = compose_raw()["services"][RASA_SERVICE]["build"]
    assert build["dockerfile"] == "deploy/Dockerfile"
    return str(build["target"])


def dockerignored(path: str) -> bool:
    """Whether .dockerignore keeps ``path`` out of the build context (last match wins)."""
    ignored = False
    candidates = [path] + [
        str(parent) for parent in PurePosixPath(path).parents if str(parent) != "."
    ]
    for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines():
        pattern = line.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").strip("/")
        patterns = {pattern, pattern.removeprefix("**/")}
        if any(fnmatch(candidate, p) for candidate in candidates for p in patterns) or (
            pattern.startswith("**/")
            and any(fnmatch(PurePosixPath(c).name, pattern[3:]) for c in candidates)
        ):
            ignored = not negate
    return ignored


def image_name_and_tag(image: str) -> Tuple[str, Optional[str]]:
    if "@" in image:
        return image.split("@", 1)[0], "digest"
    name, _, tag = image.rpartition(":")
    if not name or "/" in tag:
        return image, None
    return name, tag


# ============================================================================
# Schemas


def test_compose_file_matches_the_compose_specification() -> None:
    assert compose_errors(compose()) == []


def test_compose_schema_check_can_fail() -> None:
    broken = compose()
    broken["services"]["rasa"]["depends_on"]["postgres"]["condition"] = "service_up"
    broken["services"]["redis"]["healthcheck"]["intervall"] = "5s"
    broken["services"]["actions"]["restart"] = 5
    errors = compose_errors(broken)
    assert any(error.startswith("services/rasa/depends_on:") for error in errors), (
        errors
    )
    assert any("'intervall'" in error for error in errors), errors
    assert any(error.startswith("services/actions/restart:") for error in errors), (
        errors
    )


def test_docker_compose_config_accepts_the_file(tmp_path: Path) -> None:
    docker = shutil.which("docker")
    available = (
        docker is not None
        and subprocess.run(
            [docker, "compose", "version"], capture_output=True, timeout=30
        ).returncode
        == 0
    )
    if docker is None or not available:
        pytest.skip(
            "`docker compose` is not installed here; test_compose_file_matches_the_compose_specification "
            "checks the same file against the Compose JSON schema"
        )
    empty_env_file = tmp_path / "empty.env"
    empty_env_file.write_text("")
    command = [
        docker,
        "compose",
        "--env-file",
        str(empty_env_file),
        "-f",
        str(COMPOSE_FILE),
        "--profile",
        "demo",
        "config",
        "--quiet",
    ]
    without = {k: v for k, v in os.environ.items() if k not in required_compose_vars()}
    result = subprocess.run(
        command,
        env={**without, **dummy_env()},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    missing = subprocess.run(
        command, env=without, cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert missing.returncode != 0, (
        "compose accepted the file without its required secrets"
    )


@pytest.mark.parametrize("manifest", all_k8s_manifests(), ids=lambda m: m.id)
def test_kubernetes_manifest_matches_the_api_schema(manifest: Manifest) -> None:
    kubernetes_validate.validate(manifest.doc, K8S_VERSION, strict=True)


def test_kubernetes_schema_check_can_fail() -> None:
    broken = copy.deepcopy(k8s_object("Deployment", RASA_DEPLOYMENT))
    broken["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)
    unknown_field = copy.deepcopy(k8s_object("Deployment", RASA_DEPLOYMENT))
    unknown_field["spec"]["template"]["spec"]["containers"][0]["readynessProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(unknown_field, K8S_VERSION, strict=True)


def test_expected_kubernetes_objects_exist() -> None:
    kinds = {(m.doc["kind"], m.doc["metadata"]["name"]) for m in all_k8s_manifests()}
    for deployment in (RASA_DEPLOYMENT, ACTIONS_DEPLOYMENT):
        assert ("Deployment", deployment) in kinds
        assert ("Service", deployment) in kinds
    assert any(kind == "ConfigMap" for kind, _ in kinds)
    assert any(kind == "Secret" for kind, _ in kinds)


# ============================================================================
# Environment: everything the code reads is set


@pytest.mark.parametrize("service", [RASA_SERVICE, *ACTIONS_SERVICES])
def test_compose_sets_every_variable_the_service_reads(service: str) -> None:
    wanted = rasa_env_vars() if service == RASA_SERVICE else actions_env_vars()
    missing = wanted - set(service_env(compose()["services"][service]))
    assert not missing, (
        f"docker-compose.yml service {service} does not set {sorted(missing)}"
    )


@pytest.mark.parametrize("deployment", [RASA_DEPLOYMENT, ACTIONS_DEPLOYMENT])
def test_kubernetes_sets_every_variable_the_container_reads(deployment: str) -> None:
    wanted = rasa_env_vars() if deployment == RASA_DEPLOYMENT else actions_env_vars()
    missing = wanted - k8s_container_env(k8s_container(deployment))
    assert not missing, f"deploy/k8s {deployment} does not set {sorted(missing)}"


@pytest.mark.parametrize("deployment", [RASA_DEPLOYMENT, ACTIONS_DEPLOYMENT])
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


# ============================================================================
# Commands and ports


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
    assert compose_args[:3] == ["rasa", "run", "actions"]
    assert compose_args == list(k8s_container(ACTIONS_DEPLOYMENT)["args"])


def _port(args: List[str], default: str) -> int:
    return int(option(args, "-p", "--port", default=default) or default)


def test_compose_ports_match_the_commands() -> None:
    services = compose()["services"]
    rasa_port = _port(command_list(services[RASA_SERVICE]), "5005")
    actions_port = _port(command_list(services["actions"]), "5055")

    published = [
        str(p).rsplit(":", 1)[-1].split("/")[0] for p in services[RASA_SERVICE]["ports"]
    ]
    assert published == [str(rasa_port)]
    assert str(actions_port) in [str(p) for p in services["actions"].get("expose", [])]

    for service, port, path in (
        (RASA_SERVICE, rasa_port, "/"),
        ("actions", actions_port, "/health"),
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
    for service in ACTIONS_SERVICES:
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


@pytest.mark.parametrize(
    "deployment, default", [(RASA_DEPLOYMENT, "5005"), (ACTIONS_DEPLOYMENT, "5055")]
)
def test_kubernetes_ports_match_the_commands(deployment: str, default: str) -> None:
    container = k8s_container(deployment)
    port = _port(list(container["args"]), default)
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


# ============================================================================
# Health checks, start order, resources, replicas


def test_compose_health_checks_and_start_order() -> None:
    services = compose()["services"]
    for name in (RASA_SERVICE, "actions", "postgres", "redis"):
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
    ):
        depends = services[name]["depends_on"]
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
    for deployment, path in ((RASA_DEPLOYMENT, "/"), (ACTIONS_DEPLOYMENT, "/health")):
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
    compose_limit = compose()["services"][RASA_SERVICE]["deploy"]["resources"][
        "limits"
    ]["memory"]
    assert memory_mib(compose_limit, COMPOSE_MEMORY_UNITS) > RASA_RSS_MIB[1]


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
    """More than one Rasa replica is only right with shared tracker and lock stores."""
    from rasa.core.lock_store import RedisLockStore
    from rasa.core.tracker_store import SQLTrackerStore

    replicas = k8s_object("Deployment", RASA_DEPLOYMENT)["spec"].get("replicas", 1)
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


# ============================================================================
# The image holds what the commands need


def _module_packages(names: List[str]) -> Set[str]:
    return {name.split(".", 1)[0] for name in names if "." in name}


def test_runtime_image_holds_what_the_commands_load() -> None:
    stages = dockerfile_stages()
    runtime = runtime_stage_name()
    assert list(stages)[-1] == runtime, (
        "`docker build` without --target must give the runtime image"
    )
    chain = stage_chain(stages, runtime)
    rasa_args = command_list(compose()["services"][RASA_SERVICE])

    credentials = yaml.safe_load(CREDENTIALS.read_text(encoding="utf-8")) or {}
    endpoints = yaml.safe_load(ENDPOINTS_PROD.read_text(encoding="utf-8")) or {}
    config = yaml.safe_load(CONFIG.read_text(encoding="utf-8")) or {}
    components = [
        c["name"] for c in config.get("pipeline", []) + config.get("policies", [])
    ]
    store_types = [
        str(s.get("type", "")) for s in endpoints.values() if isinstance(s, dict)
    ]
    needed = {
        str(option(rasa_args, "--credentials")),
        str(option(rasa_args, "--endpoints")),
        "config.yml",
        "domain",
        *_module_packages(list(credentials) + store_types + components),
        # `rasa run actions` loads the package named by --actions.
        str(
            option(
                command_list(compose()["services"]["actions"]),
                "--actions",
                default="actions",
            )
        ),
    }
    missing = sorted(path for path in needed if not image_has(chain, path))
    assert not missing, f"deploy/Dockerfile stage {runtime} does not copy {missing}"
    assert {"bot_server", "nlu", "actions"} <= needed, (
        "the scan of the project files found too little"
    )


def test_runtime_image_holds_the_trained_model() -> None:
    stages = dockerfile_stages()
    chain = stage_chain(stages, runtime_stage_name())
    model = str(
        option(command_list(compose()["services"][RASA_SERVICE]), "--model", "-m")
    )
    sources = [
        (origin, src)
        for stage in chain
        for dest, origin, src in stage.copies
        if dest == model
    ]
    assert len(sources) == 1 and sources[0][0] in stages, (
        f"{model} must be copied from a build stage"
    )
    origin, src = sources[0]
    train_chain = stage_chain(stages, str(origin))
    trains = [
        shlex.split(run)
        for stage in train_chain
        for run in stage.runs
        if run.startswith("rasa train")
    ]
    assert len(trains) == 1, "the model stage must run `rasa train` once"
    args = trains[0]
    out = PurePosixPath(train_chain[0].workdir) / str(option(args, "--out"))
    assert src == str(out / f"{option(args, '--fixed-model-name')}.tar.gz")
    config = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    components = [c["name"] for c in config["pipeline"] + config["policies"]]
    for path in (
        option(args, "--config"),
        option(args, "--domain"),
        option(args, "--data"),
        *_module_packages(components),
    ):
        assert path and image_has(train_chain, path), (
            f"the training stage does not copy {path}"
        )


def test_image_builds_the_spacy_pipeline_and_downloads_nothing_at_run_time() -> None:
    config = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    spacy_models = [c["model"] for c in config["pipeline"] if c["name"] == "SpacyNLP"]
    assert spacy_models, "config.yml has no SpacyNLP"
    for chain_of in (runtime_stage_name(), "train"):
        runs = [
            run
            for stage in stage_chain(dockerfile_stages(), chain_of)
            for run in stage.runs
        ]
        for model in spacy_models:
            # A package name (zh_core_web_sm) would be downloaded; a path is built here.
            assert any(f"nlu.build_spacy {model}" in run for run in runs), (
                f"{chain_of}: {model} is not built"
            )
    assert not any(
        c["name"] in ("LanguageModelFeaturizer", "HFTransformersNLP")
        for c in config["pipeline"]
    ), "a Hugging Face model would be downloaded at run time"
    runtime = stage_chain(dockerfile_stages(), runtime_stage_name())
    env = {k: v for stage in reversed(runtime) for k, v in stage.env.items()}
    assert env.get("RASA_TELEMETRY_ENABLED") == "false"
    assert runtime[0].workdir in env.get("PYTHONPATH", "").split(":"), (
        "bot_server/nlu/actions must import"
    )


def test_image_installs_the_pinned_dependencies() -> None:
    chain = stage_chain(dockerfile_stages(), runtime_stage_name())
    runs = [shlex.split(run) for stage in chain for run in stage.runs]
    installs = [args for args in runs if args[:2] == ["pip", "install"]]
    assert len(installs) == 1
    assert (
        option(installs[0], "-r") == "requirements.txt"
        and option(installs[0], "-c") == "constraints.txt"
    )
    assert image_has(chain, "requirements.txt") and image_has(chain, "constraints.txt")


def test_every_copy_source_is_in_the_build_context() -> None:
    for stage in dockerfile_stages().values():
        for _, origin, source in stage.copies:
            if origin is not None:
                continue
            assert (ROOT / source).exists(), f"COPY {source}: no such file"
            assert not dockerignored(source), (
                f"COPY {source}: excluded by .dockerignore"
            )
    for private in (".env", ".venv", "models", ".git", ".rasa"):
        assert dockerignored(private), f".dockerignore must exclude {private}"


def test_dockerignore_check_can_fail() -> None:
    assert dockerignored("tests/deploy/test_deploy.py")
    assert dockerignored("actions/__pycache__/config.cpython-310.pyc")
    assert not dockerignored("actions/config.py")


def test_images_run_as_the_same_non_root_user() -> None:
    runtime = stage_chain(dockerfile_stages(), runtime_stage_name())
    user = next(stage.user for stage in runtime if stage.user)
    assert user and user not in ("root", "0")
    for deployment in (RASA_DEPLOYMENT, ACTIONS_DEPLOYMENT):
        pod = k8s_object("Deployment", deployment)["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert str(pod["securityContext"]["runAsUser"]) == user


# ============================================================================
# Images and secrets


def test_no_latest_or_untagged_third_party_images() -> None:
    images = [s["image"] for s in compose()["services"].values() if "build" not in s]
    images += [
        container["image"]
        for m in k8s_manifests()
        if m.doc["kind"] == "Deployment"
        for container in m.doc["spec"]["template"]["spec"]["containers"]
    ]
    stages = dockerfile_stages()
    images += [stage.base for stage in stages.values() if stage.base not in stages]
    assert images
    for image in images:
        _, tag = image_name_and_tag(image)
        assert tag and tag != "latest", f"{image}: pin a version tag"


def test_compose_holds_no_plaintext_secret() -> None:
    raw = compose_raw()
    for name, service in raw["services"].items():
        for key, value in service_env(service).items():
            if SECRET_NAME.search(key):
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
