"""The deployment files are what their tools accept: docker-compose.yml the
Compose specification's JSON schema (vendored in ``schemas/``) and, where it is
installed, ``docker compose config``; deploy/k8s the Kubernetes API schemas
(``kubernetes-validate``); the objects the other checks expect exist. Also
guards the interpolator the checks read docker-compose.yml with.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any, List, Mapping

import jsonschema
import kubernetes_validate  # type: ignore[import-untyped]
import pytest

from tests.deploy.interpolation import (
    MissingVariable,
    interpolate,
    references,
)
from tests.deploy.support import (
    COMPOSE_FILE,
    COMPOSE_SCHEMA,
    K8S_CODE,
    K8S_JOB_CODE,
    K8S_VERSION,
    RASA_DEPLOYMENT,
    ROOT,
    Manifest,
    all_k8s_manifests,
    compose,
    dummy_env,
    k8s_object,
    required_compose_vars,
)


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
    for job in K8S_JOB_CODE:
        assert ("CronJob", job) in kinds
    assert any(kind == "ConfigMap" for kind, _ in kinds)
    assert any(kind == "Secret" for kind, _ in kinds)


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
