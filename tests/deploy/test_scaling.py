"""How the Rasa server scales in Kubernetes: replicas of one Rasa process each,
counted by a HorizontalPodAutoscaler on CPU (docs/deployment.md, "Scaling").

The autoscaler must target the Rasa Deployment, keep at least two replicas
(more than the PodDisruptionBudget keeps available, so a node drain can go
on), allow more than its minimum, and scale on CPU utilisation, which is
counted against each container's CPU request: every container of the pod
needs one. The Deployment leaves its replica count to the autoscaler, and each
pod runs one Rasa process (``SANIC_WORKERS=1``: the requests are one
process's). More than one replica is only right with shared stores
(test_commands.py), and the messaging channels' memory (button numbers,
message ids seen) in the lock store's Redis, as the rate limit's counts
(test_security.py). Each check also runs against a broken copy.
"""

from __future__ import annotations

import copy
from typing import Any, Dict, List, Mapping, Optional

from tests.deploy.support import (
    K8S_CODE,
    RASA_DEPLOYMENT,
    RASA_SERVICE,
    all_k8s_manifests,
    compose_deployed,
    compose_raw,
    k8s_container,
    k8s_deployed,
    k8s_object,
)
from tests.deploy.test_security import rate_limit_storage_problems

CHANNEL_MEMORY = "CHANNEL_STATE_URL"

HPA_API = "autoscaling/v2"
# A target utilisation outside this range scales too late (replies queue
# once a Rasa process is saturated) or keeps idle replicas.
UTILISATION_RANGE = (30, 90)


def autoscalers() -> List[Dict[str, Any]]:
    """Every HorizontalPodAutoscaler of deploy/k8s."""
    return [
        m.doc
        for m in all_k8s_manifests()
        if m.doc.get("kind") == "HorizontalPodAutoscaler"
    ]


def autoscaler_of(deployment: str) -> Optional[Dict[str, Any]]:
    """The autoscaler whose target is ``deployment``, if there is one."""
    found = [
        hpa
        for hpa in autoscalers()
        if hpa["spec"]["scaleTargetRef"].get("name") == deployment
    ]
    assert len(found) <= 1, f"{len(found)} autoscalers target {deployment}"
    return found[0] if found else None


def cpu_utilisation(hpa: Mapping[str, Any]) -> Optional[int]:
    """The CPU utilisation target of a Resource metric, if there is one."""
    for metric in hpa["spec"].get("metrics", []):
        resource = metric.get("resource", {})
        target = resource.get("target", {})
        if (
            metric.get("type") == "Resource"
            and resource.get("name") == "cpu"
            and target.get("type") == "Utilization"
        ):
            return int(target["averageUtilization"])
    return None


def autoscaler_problems(
    hpa: Mapping[str, Any],
    deployment: Mapping[str, Any],
    budget: Mapping[str, Any],
) -> List[str]:
    """What is wrong with ``hpa`` scaling ``deployment`` (``budget``: its
    PodDisruptionBudget)."""
    name = deployment["metadata"]["name"]
    where = f"HorizontalPodAutoscaler {hpa['metadata']['name']}"
    problems: List[str] = []
    if hpa.get("apiVersion") != HPA_API:
        problems.append(f"{where}: apiVersion must be {HPA_API}")
    target = hpa["spec"]["scaleTargetRef"]
    if (target.get("apiVersion"), target.get("kind"), target.get("name")) != (
        "apps/v1",
        "Deployment",
        name,
    ):
        problems.append(f"{where}: scaleTargetRef is not the Deployment {name}")
    low, high = hpa["spec"].get("minReplicas", 1), hpa["spec"]["maxReplicas"]
    available = budget["spec"].get("minAvailable", 0)
    if low < 2 or low <= available:
        problems.append(
            f"{where}: minReplicas {low} must be at least 2 and above the "
            f"PodDisruptionBudget's minAvailable {available}"
        )
    if high <= low:
        problems.append(f"{where}: maxReplicas {high} leaves nothing to scale")
    utilisation = cpu_utilisation(hpa)
    if utilisation is None:
        problems.append(f"{where}: no CPU utilisation target")
    elif not UTILISATION_RANGE[0] <= utilisation <= UTILISATION_RANGE[1]:
        problems.append(
            f"{where}: CPU target {utilisation} % outside {UTILISATION_RANGE}"
        )
    if "replicas" in deployment["spec"]:
        problems.append(
            f"Deployment {name}: spec.replicas resets the autoscaler's count on "
            "every apply; leave it out"
        )
    for container in deployment["spec"]["template"]["spec"]["containers"]:
        if "cpu" not in container.get("resources", {}).get("requests", {}):
            problems.append(
                f"Deployment {name} container {container['name']}: no CPU "
                "request, so no CPU utilisation to scale on"
            )
    return problems


def workers_problems(container: Mapping[str, Any]) -> List[str]:
    """A Rasa pod runs one process: the autoscaler adds processes as pods."""
    workers = k8s_deployed(RASA_DEPLOYMENT, container).values.get("SANIC_WORKERS")
    if workers != "1":
        return [
            f"deploy/k8s {RASA_DEPLOYMENT}: SANIC_WORKERS={workers}: one Rasa "
            "process per pod (the requests are one process's; replicas scale)"
        ]
    return []


def rasa_objects() -> Dict[str, Dict[str, Any]]:
    hpa = autoscaler_of(RASA_DEPLOYMENT)
    assert hpa is not None, f"no HorizontalPodAutoscaler targets {RASA_DEPLOYMENT}"
    return {
        "hpa": copy.deepcopy(hpa),
        "deployment": copy.deepcopy(k8s_object("Deployment", RASA_DEPLOYMENT)),
        "budget": copy.deepcopy(k8s_object("PodDisruptionBudget", RASA_DEPLOYMENT)),
    }


def test_rasa_scales_with_an_autoscaler_on_cpu() -> None:
    objects = rasa_objects()
    assert autoscaler_problems(**objects) == []
    container = objects["deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert workers_problems(container) == []


def test_every_autoscaler_targets_a_deployment_of_ours() -> None:
    for hpa in autoscalers():
        name = hpa["spec"]["scaleTargetRef"]["name"]
        assert name in K8S_CODE, f"{hpa['metadata']['name']} targets {name}"
        objects = {
            "deployment": k8s_object("Deployment", name),
            "budget": k8s_object("PodDisruptionBudget", name),
        }
        assert autoscaler_problems(hpa, **objects) == []


def test_autoscaler_check_can_fail() -> None:
    breaks = {
        "apiVersion must be": lambda o: o["hpa"].update(apiVersion="autoscaling/v1"),
        "scaleTargetRef is not": lambda o: o["hpa"]["spec"]["scaleTargetRef"].update(
            name="jiebei-actions"
        ),
        "minReplicas 1": lambda o: o["hpa"]["spec"].update(minReplicas=1),
        "leaves nothing to scale": lambda o: o["hpa"]["spec"].update(
            maxReplicas=o["hpa"]["spec"]["minReplicas"]
        ),
        "no CPU utilisation target": lambda o: o["hpa"]["spec"].update(metrics=[]),
        "outside": lambda o: o["hpa"]["spec"]["metrics"][0]["resource"][
            "target"
        ].update(averageUtilization=100),
        "spec.replicas resets": lambda o: o["deployment"]["spec"].update(replicas=2),
        "no CPU request": lambda o: o["deployment"]["spec"]["template"]["spec"][
            "containers"
        ][0]["resources"]["requests"].pop("cpu"),
        "above the PodDisruptionBudget": lambda o: o["budget"]["spec"].update(
            minAvailable=o["hpa"]["spec"]["minReplicas"]
        ),
    }
    for expected, breaking in breaks.items():
        objects = rasa_objects()
        breaking(objects)
        problems = autoscaler_problems(**objects)
        assert any(expected in problem for problem in problems), (expected, problems)


def test_workers_check_can_fail() -> None:
    container = copy.deepcopy(
        k8s_object("Deployment", RASA_DEPLOYMENT)["spec"]["template"]["spec"][
            "containers"
        ][0]
    )
    for item in container["env"]:
        if item["name"] == "SANIC_WORKERS":
            item["value"] = "2"
    assert workers_problems(container), "SANIC_WORKERS=2 passed"


def test_every_rasa_process_shares_the_channels_memory() -> None:
    """A number reply or a redelivery may reach any worker or replica."""
    for rasa in (compose_deployed(RASA_SERVICE), k8s_deployed(RASA_DEPLOYMENT)):
        assert rate_limit_storage_problems(rasa, CHANNEL_MEMORY) == []


def test_channel_memory_check_can_fail() -> None:
    for url in ("", "memory://", "redis://other.example.internal:6379/0"):
        raw = compose_raw()
        raw["services"][RASA_SERVICE]["environment"][CHANNEL_MEMORY] = url
        broken = compose_deployed(RASA_SERVICE, raw)
        assert rate_limit_storage_problems(broken, CHANNEL_MEMORY), url
    container = copy.deepcopy(k8s_container(RASA_DEPLOYMENT))
    container["env"].append({"name": CHANNEL_MEMORY, "value": "memory://"})
    broken = k8s_deployed(RASA_DEPLOYMENT, container)
    assert rate_limit_storage_problems(broken, CHANNEL_MEMORY)
