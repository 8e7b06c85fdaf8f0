"""Static checks of the deployment files: docker-compose.yml, deploy/, .dockerignore.

No network, Docker daemon or cluster is needed. The files are checked against
published schemas (the Compose specification's JSON schema, vendored in
``schemas/``; Kubernetes' schemas through ``kubernetes-validate``) and against
the project: the environment variables the code of each server reads (Rasa
server, action server, chat page server: SERVICE_CODE), the ports in the
commands, the files the commands load (the page's vendored socket.io client
included), the secrets (required, or optional for the messaging channels),
and the security settings (the API token, the action server's secret and bind
address, the rate limit, the origins allowed to open socket.io sessions).
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
from dataclasses import dataclass, field, replace
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

# Measured RSS (README, issue 5): Rasa server with this model, action server;
# the chat page server: about 48 MB (python -m web.server, idle).
RASA_RSS_MIB = (1024, 1536)
ACTIONS_RSS_MIB = 150
WEB_RSS_MIB = 50

RASA_SERVICE = "rasa"
ACTIONS_SERVICES = ("actions", "demo-seed")
WEB_SERVICE = "web"
RASA_DEPLOYMENT = "jiebei-rasa"
ACTIONS_DEPLOYMENT = "jiebei-actions"
WEB_DEPLOYMENT = "jiebei-web"
PLACEHOLDER = "REPLACE_ME"

ENV_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
ENV_IN_YAML = re.compile(r"\$\{(" + ENV_NAME + r")")
ENV_NAME_LITERAL = re.compile(r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+")
REQUIRED_REF = re.compile(r"\$\{" + ENV_NAME + r":?\?[^}]*\}")
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|CREDENTIAL|PRIVATE|_KEY$", re.I)
SECRET_FLAG = re.compile(r"token|password|secret", re.I)
URL_PASSWORD = re.compile(r"://[^/\s:@]+:([^@\s]+)@")

# Secrets that may be left unset: the messaging channels' (credentials.yml:
# bot_server/channels/wechat/). A channel without its settings
# is off (its webhook answers 503) and Rasa starts anyway, so compose passes
# them as ${VAR:-} (empty = off) and Kubernetes as `secretKeyRef.optional: true`.
# Every other secret is required: ${VAR:?message}, and a non-optional key.
# test_optional_secrets_are_the_channels_secrets keeps this list exact.
OPTIONAL_SECRETS = frozenset(
    {
        "WECOM_SECRET",
        "WECOM_TOKEN",
        "WECOM_AES_KEY",
        "WECHAT_APP_SECRET",
        "WECHAT_TOKEN",
        "WECHAT_AES_KEY",
    }
)

# credentials.yml's web channels: Rasa's REST and socket.io, wrapped
# (bot_server/channels/). Always on, and their settings (size limits, allowed
# origins; the rate limit is the reply guard's) have values when unset. Every
# other channel there is a messaging platform's, off until it is configured.
WEB_CHANNELS = frozenset(
    {
        "bot_server.channels.rest.GuardedRestInput",
        "bot_server.channels.socketio.GuardedSocketIOInput",
    }
)

# The packages whose code the servers run (scripts/ and tests/ are dev tools).
CODE_PACKAGES = ("actions", "bot_server", "nlu", "web")

# Which code runs in which server process, so whose environment reads each
# service must be given. Explicit, because neither the folders nor the imports
# tell it: web/server.py is a process of its own (the chat page, service
# `web`), not part of Rasa; actions/identity.py sits in actions/ but Rasa's
# messaging channels import it to mint identity tokens. Globs relative to the
# repo, applied in order; "!" removes.
# test_service_code_covers_what_it_imports checks the table against the imports.
SERVICE_CODE: Mapping[str, Tuple[str, ...]] = {
    # `rasa run`: credentials.yml's channels, endpoints.prod.yml's stores, the
    # reply guard, config.yml's NLU components, and the identity module.
    "rasa": (
        "bot_server/**/*.py",
        "nlu/**/*.py",
        "actions/identity.py",
    ),
    # `python -m web.server`: the chat page server.
    "web": ("web/server.py",),
    # `python -m actions.server`: rasa_sdk's action server behind the token check.
    "actions": ("actions/**/*.py",),
    # The demo seed (python -m actions.services.accounts seed): the actions code
    # but the server, so it gets neither the server's bind address nor its token.
    "seed": ("actions/**/*.py", "!actions/server.py"),
}
# SERVICE_CODE groups that run in compose only, and why Kubernetes has no
# Deployment for them.
COMPOSE_ONLY_CODE: Mapping[str, str] = {
    "seed": (
        "the demo seed loads the fixture accounts of a demo deployment "
        "(compose --profile demo); a cluster connects its own account service"
    ),
}
# Modules a service imports but whose environment reads it never makes as
# deployed, with the reason. Any other imported module that reads the
# environment must be in the service's SERVICE_CODE.
IMPORTED_NOT_READ: Mapping[Tuple[str, str], str] = {
    ("web", "actions/identity.py"): (
        "web/server.py needs IDENTITY_JWT_SECRET only with WEB_DEMO_LOGIN=1, which no "
        "deployment sets: the page server holds no secret"
    ),
    ("web", "actions/config.py"): (
        "web/server.py imports actions.services.accounts for fixture_labels only, "
        "which reads no setting"
    ),
}
# Variables the code reads that deployment files must never set, and why.
NEVER_DEPLOYED: Mapping[str, str] = {
    "WEB_DEMO_LOGIN": (
        "a test/demo stand-in for a host's login: /config.json?as=<fixture id> "
        "mints identity tokens for the fixture accounts"
    ),
    "ALLOW_INTENT_SYNTAX": (
        "a test switch: lets users type Rasa's /intent{...} syntax, setting slots "
        "and forcing intents"
    ),
}
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
# The code each compose service and each Kubernetes Deployment runs.
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


# ----------------------------------------------------------------------------
# What the code reads

ENVIRON_EXPRESSIONS = ("os.environ", "environ")
GETENV_FUNCTIONS = ("os.getenv", "getenv")
ENVIRON_METHODS = ("get", "setdefault", "pop")


def relative(path: Path) -> str:
    return path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else str(path)


@cache
def _parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"))


def module_file(module: str) -> Optional[Path]:
    """The file of a project module (``actions.identity``); None for a library."""
    if not module or module.split(".", 1)[0] not in CODE_PACKAGES:
        return None
    base = ROOT.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _absolute_module(path: Path, node: ast.ImportFrom) -> str:
    """The module of ``from <module> import ...``, relative imports resolved."""
    if not node.level:
        return node.module or ""
    # a/b/c.py and a/b/__init__.py are both in package a.b
    package = list(path.relative_to(ROOT).parts[:-1])
    base = package[: len(package) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imported_names(path: Path) -> Dict[str, str]:
    """Local name → ``module`` (a module) or ``module:name`` (a name in one)."""
    names: Dict[str, str] = {}
    for node in ast.walk(_parse(path)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                local = alias.asname or alias.name.split(".", 1)[0]
                names[local] = alias.name if alias.asname else local
        elif isinstance(node, ast.ImportFrom):
            module = _absolute_module(path, node)
            for alias in node.names:
                submodule = f"{module}.{alias.name}"
                names[alias.asname or alias.name] = (
                    submodule if module_file(submodule) else f"{module}:{alias.name}"
                )
    return names


def project_imports(path: Path) -> Set[Path]:
    """The project modules a module imports (a.b.c also runs a and a.b)."""
    found: Set[Path] = set()
    for node in ast.walk(_parse(path)):
        modules: List[str] = []
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _absolute_module(path, node)
            modules = [base] + [f"{base}.{alias.name}" for alias in node.names]
        for module in modules:
            parts = module.split(".")
            for end in range(1, len(parts) + 1):
                file = module_file(".".join(parts[:end]))
                if file is not None:
                    found.add(file)
    return found


def _string_constants(path: Path) -> Dict[str, str]:
    """Module-level string constants (``SECRET_ENV = "IDENTITY_JWT_SECRET"``)."""
    constants: Dict[str, str] = {}
    for node in _parse(path).body:
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        if isinstance(value, ast.Constant) and isinstance(value.value, str):
            for target in targets:
                if isinstance(target, ast.Name):
                    constants[target.id] = value.value
    return constants


@dataclass(frozen=True)
class EnvReads:
    names: frozenset[str]
    # Reads whose variable the scan cannot tell ("path:line: code").
    unresolved: Tuple[str, ...]


@cache
def env_reads(path: Path) -> EnvReads:
    """The environment variables a module reads.

    * ``os.environ[X]``, ``os.environ.get/setdefault/pop(X)``, ``os.getenv(X)``,
      ``X in os.environ``, also through a local alias
      (``env = os.environ if environ is None else environ``);
    * X a literal, a module constant, or a constant of an imported project
      module (``identity.SECRET_ENV``);
    * every module constant named ``*_ENV``: by convention the name of a
      variable (``SECRET_ENV = "IDENTITY_JWT_SECRET"``), however it is read;
    * in a config module (``config.py``) also any call whose first argument is
      an env-style literal (``_float("X", 2.0)``): its helpers read a parameter.
    """
    tree = _parse(path)
    constants = _string_constants(path)
    imported = _imported_names(path)
    config_module = path.name == "config.py"
    names = {value for name, value in constants.items() if name.endswith("_ENV")}
    unresolved: List[str] = []
    aliases = {
        target.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign)
        and any(ast.unparse(n) == "os.environ" for n in ast.walk(node.value))
        for target in node.targets
        if isinstance(target, ast.Name)
    }

    def is_environ(node: ast.expr) -> bool:
        return ast.unparse(node) in ENVIRON_EXPRESSIONS or (
            isinstance(node, ast.Name) and node.id in aliases
        )

    def resolve(node: ast.expr) -> Optional[str]:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        if isinstance(node, ast.Name) and node.id in constants:
            return constants[node.id]
        module, attribute = "", ""
        if isinstance(node, ast.Name) and ":" in imported.get(node.id, ""):
            module, attribute = imported[node.id].split(":")
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            module, attribute = imported.get(node.value.id, ""), node.attr
        file = module_file(module)
        return _string_constants(file).get(attribute) if file else None

    for node in ast.walk(tree):
        key: Optional[ast.expr] = None
        if isinstance(node, ast.Subscript) and is_environ(node.value):
            key = node.slice
        elif (
            isinstance(node, ast.Compare)
            and isinstance(node.ops[0], (ast.In, ast.NotIn))
            and is_environ(node.comparators[0])
        ):
            key = node.left
        elif isinstance(node, ast.Call) and node.args:
            function = node.func
            if ast.unparse(function) in GETENV_FUNCTIONS or (
                isinstance(function, ast.Attribute)
                and function.attr in ENVIRON_METHODS
                and is_environ(function.value)
            ):
                key = node.args[0]
            elif config_module:
                first = node.args[0]
                if isinstance(first, ast.Constant) and isinstance(first.value, str):
                    if ENV_NAME_LITERAL.fullmatch(first.value):
                        names.add(first.value)
        if key is None:
            continue
        name = resolve(key)
        if name is None:
            line = getattr(node, "lineno", 0)
            unresolved.append(f"{relative(path)}:{line}: {ast.unparse(node)}")
        else:
            names.add(name)
    return EnvReads(frozenset(names), tuple(unresolved))


def code_files() -> List[Path]:
    return sorted(
        path for package in CODE_PACKAGES for path in (ROOT / package).rglob("*.py")
    )


def service_code(code: str) -> Set[Path]:
    """The files of SERVICE_CODE[code]."""
    files: Set[Path] = set()
    for pattern in SERVICE_CODE[code]:
        if pattern.startswith("!"):
            files -= set(ROOT.glob(pattern[1:]))
        else:
            files |= set(ROOT.glob(pattern))
    return files


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
    """What a server's code reads (SERVICE_CODE); Rasa also expands ``${VAR}`` in
    endpoints.prod.yml and credentials.yml."""
    names: Set[str] = set()
    for path in service_code(code):
        names |= env_reads(path).names
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
    assert names, f"no environment variable found in the {code} code: the scan is wrong"
    return frozenset(names)


def deployed_env_vars(code: str) -> Set[str]:
    """What a deployment of that code must set: what it reads, less NEVER_DEPLOYED."""
    return set(code_env_vars(code)) - set(NEVER_DEPLOYED)


def channel_env_vars() -> Set[str]:
    """What the messaging channels of credentials.yml read themselves (all
    optional): every channel there but WEB_CHANNELS."""
    credentials = yaml.safe_load(CREDENTIALS.read_text(encoding="utf-8")) or {}
    assert WEB_CHANNELS <= set(credentials), "stale WEB_CHANNELS"
    names: Set[str] = set()
    for channel in set(credentials) - WEB_CHANNELS:
        file = module_file(str(channel).rpartition(".")[0])
        if file is not None:
            names |= env_reads(file).names
    return names


def test_the_env_scan_finds_what_config_py_reads() -> None:
    """Guards the scanner: a read through a helper (``_float(NAME)``) counts too."""
    reads = env_reads(ROOT / "actions" / "config.py").names
    source = (ROOT / "actions" / "config.py").read_text(encoding="utf-8")
    literals = set(re.findall(r"[\"'](" + ENV_NAME_LITERAL.pattern + r")[\"']", source))
    assert reads == literals


def test_the_env_scan_follows_constants_aliases_and_imports(tmp_path: Path) -> None:
    """Guards the scanner on every form of read it claims to see."""
    from actions import identity

    module = tmp_path / "reads.py"
    module.write_text(
        "import os\n"
        "from os import environ\n"
        "from actions import identity\n"
        "from actions.identity import SECRET_ENV as IMPORTED_ENV\n"
        'TIMEOUT_ENV = "FROM_ENV_CONSTANT"\n'
        'OTHER = "FROM_CONSTANT"\n'
        "def settings(mapping=None):\n"
        "    env = os.environ if mapping is None else mapping\n"
        '    env.get("FROM_ALIAS")\n'
        "    os.environ[OTHER]\n"
        '    environ.get("FROM_BARE_ENVIRON")\n'
        '    os.getenv("FROM_GETENV")\n'
        '    "FROM_IN" in os.environ\n'
        "    os.environ.get(identity.SECRET_ENV)\n"
        "    os.environ.get(IMPORTED_ENV)\n"
        "    os.environ.get(mapping)\n",
        encoding="utf-8",
    )
    # Project modules (actions.identity) resolve from the repo.
    reads = env_reads(module)
    assert reads.names == {
        "FROM_ENV_CONSTANT",
        "FROM_CONSTANT",
        "FROM_ALIAS",
        "FROM_BARE_ENVIRON",
        "FROM_GETENV",
        "FROM_IN",
        identity.SECRET_ENV,
    }
    assert len(reads.unresolved) == 1 and "get(mapping)" in reads.unresolved[0]


# ----------------------------------------------------------------------------
# docker-compose.yml: interpolation as docker compose does it


class MissingVariable(Exception):
    """A ``${VAR:?message}`` whose variable is not set."""


_NAMED = re.compile(ENV_NAME)
_BRACED = re.compile(
    r"(?P<name>" + ENV_NAME + r")(?:(?P<op>:?[-?+])(?P<arg>.*))?", re.S
)


@dataclass(frozen=True)
class Reference:
    """One ``$VAR`` / ``${VAR<op><arg>}``; ``arg`` is raw (it may nest references)."""

    name: str
    op: Optional[str] = None
    arg: str = ""


def _tokens(text: str) -> Iterator[Any]:
    """Literal text (str) and References, in order; ``$$`` is a literal ``$``."""
    index, literal = 0, ""
    while index < len(text):
        if text[index] != "$":
            literal += text[index]
            index += 1
            continue
        following = text[index + 1 : index + 2]
        if following == "$":
            literal, index = literal + "$", index + 2
            continue
        named = _NAMED.match(text, index + 1)
        if following != "{" and named is None:
            literal, index = literal + "$", index + 1
            continue
        if literal:
            yield literal
            literal = ""
        if following != "{" and named is not None:
            yield Reference(named.group(0))
            index = named.end()
            continue
        # ${...}: up to the matching brace (arguments may nest ${...}).
        depth, end = 1, index + 2
        while depth:
            if end >= len(text):
                raise ValueError(f"unclosed ${{ in {text!r}")
            if text.startswith("$$", end) or text.startswith("${", end):
                depth += text[end + 1] == "{"
                end += 2
                continue
            depth -= text[end] == "}"
            end += 1
        braced = _BRACED.fullmatch(text[index + 2 : end - 1])
        if braced is None:
            raise ValueError(f"unsupported interpolation {text[index:end]!r}")
        yield Reference(
            braced.group("name"), braced.group("op"), braced.group("arg") or ""
        )
        index = end
    if literal:
        yield literal


def references(text: str) -> Iterator[Reference]:
    """Every reference in ``text``, nested ones included."""
    for token in _tokens(text):
        if isinstance(token, Reference):
            yield token
            yield from references(token.arg)


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Compose's variable syntax: $$, $VAR, ${VAR}, ${VAR[:]-x}, ${VAR[:]?x},
    ${VAR[:]+x}, with references nested in x (``${A:-${B:-default}}``)."""

    def value_of(ref: Reference) -> str:
        value = env.get(ref.name)
        empty = not value
        if ref.op is None:
            return value or ""
        if ref.op in (":-", "-"):
            unset = empty if ref.op == ":-" else value is None
            return interpolate(ref.arg, env) if unset else str(value)
        if ref.op in (":?", "?"):
            if empty if ref.op == ":?" else value is None:
                raise MissingVariable(f"{ref.name}: {interpolate(ref.arg, env)}")
            return str(value)
        unset = empty if ref.op == ":+" else value is None
        return "" if unset else interpolate(ref.arg, env)

    return "".join(
        token if isinstance(token, str) else value_of(token) for token in _tokens(text)
    )


def test_interpolation_follows_compose() -> None:
    """Guards the interpolator with the Compose specification's examples."""
    env = {"SET": "value", "EMPTY": ""}
    cases = {
        "$SET-${SET}": "value-value",
        "${UNSET:-default} ${EMPTY:-d} ${EMPTY-d}": "default d ",
        "${UNSET:-${SET}}": "value",
        "${UNSET:-${ALSO_UNSET:-nested}}/x": "nested/x",
        "${SET:+alt}${UNSET:+alt}": "alt",
        "$$SET $${SET} 5$": "$SET ${SET} 5$",
        "http://127.0.0.1:${PORT:-5005}": "http://127.0.0.1:5005",
    }
    for text, expected in cases.items():
        assert interpolate(text, env) == expected, text
    with pytest.raises(MissingVariable, match="UNSET: set it"):
        interpolate("${UNSET:?set it}", env)
    with pytest.raises(MissingVariable, match="EMPTY"):
        interpolate("${EMPTY:?}", env)
    assert interpolate("${EMPTY?}", env) == ""
    assert [r.name for r in references("${A:-${B:-x}}$C $$D")] == ["A", "B", "C"]
    with pytest.raises(ValueError):
        interpolate("${A/x/y}", env)


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
    for deployment in K8S_CODE:
        assert ("Deployment", deployment) in kinds
        assert ("Service", deployment) in kinds
    assert any(kind == "ConfigMap" for kind, _ in kinds)
    assert any(kind == "Secret" for kind, _ in kinds)


# ============================================================================
# Environment: everything the code reads is set


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
    assert set(COMPOSE_CODE.values()) == set(SERVICE_CODE), (
        "every SERVICE_CODE group runs in a compose service"
    )
    assert set(COMPOSE_ONLY_CODE) <= set(SERVICE_CODE), "stale COMPOSE_ONLY_CODE"
    assert set(K8S_CODE.values()) == set(SERVICE_CODE) - set(COMPOSE_ONLY_CODE), (
        "every SERVICE_CODE group runs in a Deployment, unless COMPOSE_ONLY_CODE "
        "says why not"
    )


def test_the_env_scan_resolves_every_read() -> None:
    """A read the scan cannot name (``os.environ.get(f"X_{y}")``) would go unchecked;
    config modules excepted: their helpers read a parameter, and the literal
    names at their call sites count (test_the_env_scan_finds_what_config_py_reads)."""
    unresolved = [
        read
        for path in code_files()
        if path.name != "config.py"
        for read in env_reads(path).unresolved
    ]
    assert not unresolved


def test_service_code_covers_what_it_imports() -> None:
    """SERVICE_CODE against the imports: whatever a service's code imports and
    reads the environment is its code too, unless IMPORTED_NOT_READ says why not;
    every module that reads the environment runs in some service."""
    reading = {
        path
        for path in code_files()
        if env_reads(path).names or env_reads(path).unresolved
    }
    exempted: Set[Tuple[str, str]] = set()
    for code in SERVICE_CODE:
        own = service_code(code)
        assert own, f"SERVICE_CODE[{code!r}] matches no file"
        closure, todo = set(own), list(own)
        while todo:
            for imported in project_imports(todo.pop()) - closure:
                closure.add(imported)
                todo.append(imported)
        for path in sorted((closure - own) & reading):
            key = (code, relative(path))
            assert key in IMPORTED_NOT_READ, (
                f"the {code} code imports {key[1]}, which reads "
                f"{sorted(env_reads(path).names)}: add it to SERVICE_CODE[{code!r}] "
                "(or to IMPORTED_NOT_READ, with the reason)"
            )
            exempted.add(key)
    assert exempted == set(IMPORTED_NOT_READ), "stale IMPORTED_NOT_READ entries"
    everywhere = set().union(*(service_code(code) for code in SERVICE_CODE))
    orphans = sorted(relative(path) for path in reading - everywhere)
    assert not orphans, f"no service in SERVICE_CODE runs {orphans}"


def test_the_page_server_is_not_the_rasa_server() -> None:
    """web/server.py runs as its own process: its reads are the web
    service's, not Rasa's; the identity secret is read by Rasa's channels
    (minting) and by the action server (verifying)."""
    from actions import identity
    from web import server as webpage

    page = Path(webpage.__file__).resolve()
    assert service_code("web") == {page}
    assert page not in service_code("rasa") | service_code("actions")
    page_only = env_reads(page).names - code_env_vars("rasa")
    assert page_only, "the page server reads nothing of its own: the scan is wrong"
    for code in ("rasa", "actions"):
        assert identity.SECRET_ENV in code_env_vars(code), code
    assert identity.SECRET_ENV not in code_env_vars("web")


@pytest.mark.parametrize("service", list(COMPOSE_CODE))
def test_compose_sets_every_variable_the_service_reads(service: str) -> None:
    wanted = deployed_env_vars(COMPOSE_CODE[service])
    missing = wanted - set(service_env(compose()["services"][service]))
    assert not missing, (
        f"docker-compose.yml service {service} does not set {sorted(missing)}"
    )


@pytest.mark.parametrize("deployment", list(K8S_CODE))
def test_kubernetes_sets_every_variable_the_container_reads(deployment: str) -> None:
    wanted = deployed_env_vars(K8S_CODE[deployment])
    missing = wanted - k8s_container_env(k8s_container(deployment))
    assert not missing, f"deploy/k8s {deployment} does not set {sorted(missing)}"


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


def test_never_deployed_variables_are_not_set() -> None:
    everything = set().union(*(code_env_vars(code) for code in SERVICE_CODE))
    assert set(NEVER_DEPLOYED) <= everything, "stale NEVER_DEPLOYED entries"
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
        if doc["kind"] == "Deployment":
            for container in doc["spec"]["template"]["spec"]["containers"]:
                keys |= {item["name"] for item in container.get("env", [])}
        set_somewhere |= {(manifest.id, key) for key in keys}
    wrong = sorted(
        f"{where}: {key}" for where, key in set_somewhere if key in NEVER_DEPLOYED
    )
    assert not wrong, f"never set these in a deployment ({NEVER_DEPLOYED}): {wrong}"


@pytest.mark.parametrize("deployment", list(K8S_CODE))
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
    from actions import server

    compose_args = command_list(compose()["services"]["actions"])
    assert compose_args[:3] == ["python", "-m", server.__name__], (
        "rasa_sdk's server behind the token check, not `rasa run actions`"
    )
    assert compose_args == list(k8s_container(ACTIONS_DEPLOYMENT)["args"])


def test_web_commands_match_in_compose_and_kubernetes() -> None:
    from web import server as webpage

    compose_args = command_list(compose()["services"][WEB_SERVICE])
    assert compose_args[:3] == ["python", "-m", webpage.__name__]
    assert option(compose_args, "--host") == "0.0.0.0", (
        f"the page server listens on {webpage.DEFAULT_HOST} unless told: "
        "unreachable in a container"
    )
    assert compose_args == list(k8s_container(WEB_DEPLOYMENT)["args"])


def default_port(code: str) -> str:
    """The port a server listens on when its command names none."""
    from web import server as webpage

    return {"rasa": "5005", "actions": "5055", "web": str(webpage.DEFAULT_PORT)}[code]


def _port(args: List[str], default: str) -> int:
    return int(option(args, "-p", "--port", default=default) or default)


def published_ports(service: Mapping[str, Any]) -> List[Tuple[str, str, str]]:
    """A compose service's ``ports`` as (host ip, host port, container port)."""
    found = []
    for entry in service.get("ports", []):
        parts = str(entry).split("/")[0].split(":")
        assert len(parts) == 3, f"{entry}: give the host address (loopback)"
        found.append((parts[0], parts[1], parts[2]))
    return found


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
    from web import server as webpage

    for env in ({}, {"RASA_PORT": "6000"}):
        services = compose({**dummy_env(), **env})["services"]
        ((address, host_port, _),) = published_ports(services[RASA_SERVICE])
        url = service_env(services[WEB_SERVICE])["RASA_PUBLIC_URL"]
        assert url == f"http://{address}:{host_port}", env
        assert webpage.rasa_origin(url) == url
    public = "https://bot.example.com"
    services = compose({**dummy_env(), "RASA_PUBLIC_URL": public})["services"]
    assert service_env(services[WEB_SERVICE])["RASA_PUBLIC_URL"] == public


def test_kubernetes_page_points_the_browser_at_a_public_origin() -> None:
    from web import server as webpage

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
    assert webpage.rasa_origin(url) == url, "scheme://host[:port] only"
    host = urlsplit(url).hostname or ""
    services = {
        m.doc["metadata"]["name"] for m in k8s_manifests() if m.doc["kind"] == "Service"
    }
    assert host not in services and ".svc" not in host and "." in host, (
        f"{url}: the browser cannot reach an in-cluster name"
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


# ============================================================================
# Health checks, start order, resources, replicas


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
        # reconnects until Rasa answers.
        (WEB_SERVICE, set()),
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
    services = compose()["services"]
    builds = {
        json.dumps(s["build"], sort_keys=True)
        for s in services.values()
        if "build" in s
    }
    images = {s["image"] for s in services.values() if "build" in s}
    assert len(builds) == 1 and len(images) == 1, "one image for every bot service"
    rasa_args = command_list(services[RASA_SERVICE])
    actions_args = command_list(services["actions"])
    # `python -m <module>` of every service of the image (the page server, the
    # action server, the demo seed): the module's own file.
    module_files = []
    for name, service in services.items():
        args = command_list(service) if "build" in service else []
        if args[:2] == ["python", "-m"]:
            file = module_file(args[2])
            assert file is not None, f"{name}: {args[2]} is not a project module"
            module_files.append(relative(file))
    assert {"web/server.py", "actions/server.py"} <= set(module_files)

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
        # python -m actions.server loads the package named by --actions.
        str(option(actions_args, "--actions", default="actions")),
        *module_files,
    }
    missing = sorted(path for path in needed if not image_has(chain, path))
    assert not missing, f"deploy/Dockerfile stage {runtime} does not copy {missing}"
    excluded = sorted(path for path in needed if dockerignored(path))
    assert not excluded, f".dockerignore keeps {excluded} out of the image"
    assert {"bot_server", "nlu", "actions"} <= needed, (
        "the scan of the project files found too little"
    )


def makefile_vendor_rule() -> Tuple[str, str]:
    """What `make web` vendors: (the target, what it copies from node_modules/)."""
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    target = re.search(r"^WEB_VENDOR\s*:=\s*(\S+)", makefile, re.M)
    assert target, "Makefile: WEB_VENDOR not found"
    rule = re.search(r"^\$\(WEB_VENDOR\):.*?\n\n", makefile, re.M | re.S)
    assert rule, "Makefile: the $(WEB_VENDOR) rule not found"
    copy = re.search(r"^\tcp (\S+) \$@$", rule.group(0), re.M)
    assert copy, "Makefile: the $(WEB_VENDOR) rule copies nothing"
    return target.group(1), copy.group(1)


def test_runtime_image_serves_the_chat_page_with_the_vendored_client() -> None:
    """web/ from the repo; web/static/vendor/socket.io.min.js built from the lockfile in
    a node stage, as `make web` does (never the host's copy, never a CDN)."""
    from web import server as webpage

    stages = dockerfile_stages()
    chain = stage_chain(stages, runtime_stage_name())
    web_dir = relative(webpage.STATIC_DIR)
    vendored = PurePosixPath(web_dir) / PurePosixPath(webpage.VENDORED_CLIENT)
    make_target, make_source = makefile_vendor_rule()
    assert str(vendored) == make_target, "the page server and `make web` disagree"
    assert image_has(chain, web_dir), f"the runtime image lacks {web_dir}/"

    copies = [
        (origin, source)
        for stage in chain
        for dest, origin, source in stage.copies
        if PurePosixPath(dest) == vendored or PurePosixPath(dest) in vendored.parents
    ]
    from_stages = [(o, s) for o, s in copies if o is not None]
    assert len(from_stages) == 1 and from_stages[0][0] in stages, (
        f"{vendored} must be copied from the node build stage, once"
    )
    assert dockerignored(str(vendored)) and dockerignored("node_modules"), (
        "the host's web/vendor/ and node_modules/ must stay out of the build context"
    )
    origin, source = from_stages[0]
    node_chain = stage_chain(stages, str(origin))
    node = node_chain[-1]
    name, tag = image_name_and_tag(node.base)
    assert name == "node" and tag and re.match(r"\d+\.\d+", tag), (
        f"{node.base}: the official node image, pinned to a version"
    )
    assert source == str(PurePosixPath(node_chain[0].workdir) / make_source), (
        f"the stage copies {source}, `make web` copies {make_source}"
    )
    for lockfile in ("package.json", "package-lock.json"):
        assert any(
            dest == lockfile and copy_origin is None
            for stage in node_chain
            for dest, copy_origin, _ in stage.copies
        ), f"the node stage does not copy {lockfile} into its WORKDIR"
    installs = [
        shlex.split(run)
        for stage in node_chain
        for run in stage.runs
        if run.startswith("npm")
    ]
    assert installs and all(args[:2] == ["npm", "ci"] for args in installs), (
        "npm ci only: it installs exactly package-lock.json"
    )
    assert all("--ignore-scripts" in args for args in installs)
    assert not image_has(chain, "node_modules")


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
    for deployment in K8S_CODE:
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


def test_secrets_are_generated_long_enough() -> None:
    """`openssl rand -hex N` gives 2N characters; the identity secret needs
    identity.MIN_SECRET_LENGTH, the action server's token server.MIN_TOKEN_CHARS
    (shorter ones are refused at run time)."""
    from actions import identity, server

    shortest = max(identity.MIN_SECRET_LENGTH, server.MIN_TOKEN_CHARS)
    for path in (COMPOSE_ENV_EXAMPLE, K8S_TEMPLATES / "secret.example.yaml"):
        sizes = re.findall(r"openssl rand -hex (\d+)", path.read_text(encoding="utf-8"))
        assert sizes, f"{relative(path)} tells no way to generate a secret"
        assert all(2 * int(n) >= shortest for n in sizes), path


def test_optional_secrets_are_the_channels_secrets() -> None:
    """OPTIONAL_SECRETS is exactly the secrets of credentials.yml's channels,
    which are off without them; nothing else may be left unset."""
    channel = channel_env_vars()
    assert channel, "no channel in credentials.yml reads the environment"
    assert OPTIONAL_SECRETS == {n for n in channel if SECRET_NAME.search(n)}
    assert not OPTIONAL_SECRETS & required_compose_vars()


def test_messaging_channels_are_off_unless_configured() -> None:
    """No channel setting is required, and every one is empty (= off) unless
    given, but the API bases, which default to the platforms' official ones."""
    from bot_server.channels.wechat import api as wechat_api

    channel = channel_env_vars()
    api_bases = {name for name in channel if name.endswith("_API_BASE")}
    assert api_bases, "the channels read no *_API_BASE: the scan is wrong"
    official = {name: getattr(wechat_api, name) for name in api_bases}
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


def test_kubernetes_requires_every_other_secret() -> None:
    """A missing required secret stops the pod; a missing channel secret does not."""
    for deployment in K8S_CODE:
        for item in k8s_container(deployment).get("env", []):
            ref = item.get("valueFrom", {}).get("secretKeyRef")
            if ref is not None:
                assert ref.get("optional", False) is (
                    item["name"] in OPTIONAL_SECRETS
                ), f"{deployment} {item['name']}"


def test_the_page_server_holds_no_secret() -> None:
    web = compose()["services"][WEB_SERVICE]
    assert not [key for key in service_env(web) if SECRET_NAME.search(key)]
    container = k8s_container(WEB_DEPLOYMENT)
    assert not any("secretRef" in source for source in container.get("envFrom", []))
    assert not any("valueFrom" in item for item in container.get("env", []))


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


# ============================================================================
# Security settings: the API token, the action server, the public channels


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


K8S_ARG_REF = re.compile(r"\$\((" + ENV_NAME + r")\)")


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
    from actions import server

    problems = []
    host = actions.values.get("ACTION_SERVER_HOST", server.DEFAULT_HOST)
    token = actions.secrets.get("ACTION_SERVER_TOKEN")
    if server.is_loopback(host):
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


def secrets_not_read_problems(server: Deployed, code: str) -> List[str]:
    """A server gets only the secrets its code (or its command) reads."""
    used = code_env_vars(code) | {
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


def never_deployed_value_problems(settings: List[Tuple[str, str, str]]) -> List[str]:
    return sorted(
        f"{where}: {name}={value!r} {NEVER_DEPLOYED_VALUES[name][1]}"
        for where, name, value in settings
        if name in NEVER_DEPLOYED_VALUES
        and re.fullmatch(NEVER_DEPLOYED_VALUES[name][0], value)
    )


def test_never_deployed_values_are_not_set() -> None:
    everything = set().union(*(code_env_vars(code) for code in SERVICE_CODE))
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


def allowed_origins(value: str) -> List[str]:
    """WEB_ALLOWED_ORIGINS as the socket.io channel reads it (empty: its default)."""
    from unittest import mock

    from bot_server.channels import socketio

    with mock.patch.dict(os.environ, {"WEB_ALLOWED_ORIGINS": value}):
        return socketio.allowed_origins()


def allowed_origin_problems(rasa: Deployed, page_origin: str) -> List[str]:
    """Rasa's socket.io channel accepts the chat page's origin; every entry is
    an origin (the browser's Origin header: scheme://host[:port])."""
    origins = allowed_origins(rasa.values.get("WEB_ALLOWED_ORIGINS", ""))
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


def rate_limit_storage_problems(rasa: Deployed) -> List[str]:
    """The rate limit counts in the lock store's Redis: every Rasa instance
    sees a sender's messages (memory:// counts per process)."""
    url = rasa.values.get("RATE_LIMIT_STORAGE_URL", "")
    parts = urlsplit(url)
    lock = (rasa.values.get("LOCK_REDIS_HOST"), rasa.values.get("LOCK_REDIS_PORT"))
    server = (parts.hostname, str(parts.port or 6379))
    if parts.scheme in ("redis", "rediss") and server == lock:
        return []
    return [
        f"{rasa.where}: RATE_LIMIT_STORAGE_URL={url!r} is not the lock store's "
        f"Redis {lock[0]}:{lock[1]}: the Rasa instances would count apart"
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


def test_public_channel_limits_are_the_code_defaults() -> None:
    """The web channels' limits as the code gives them, stated in the files."""
    from bot_server.channels import common, rest
    from bot_server.pipeline import ratelimit

    defaults = {
        "RATE_LIMIT": ratelimit.DEFAULT_LIMIT,
        "REST_MAX_BODY_BYTES": str(rest.DEFAULT_REST_MAX_BODY_BYTES),
        "MAX_REQUEST_BYTES": str(common.DEFAULT_MAX_REQUEST_BYTES),
    }
    for rasa in (compose_deployed(RASA_SERVICE), k8s_deployed(RASA_DEPLOYMENT)):
        assert {name: rasa.values.get(name) for name in defaults} == defaults, (
            rasa.where
        )
