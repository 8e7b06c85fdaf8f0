"""The image (deploy/Dockerfile, .dockerignore) holds what the commands load:
the code, the configuration, the trained model, the chat page with its vendored
socket.io client built from the lockfile; it pins its dependencies and base
images, downloads nothing at run time, and runs as a non-root user.
"""

from __future__ import annotations

import ast
import json
import re
import shlex
from pathlib import PurePosixPath
from typing import List, Set, Tuple

import yaml

from settings.processes import process_variables
from tests.deploy.dockerfile import (
    dockerfile_stages,
    dockerignored,
    image_has,
    image_name_and_tag,
    runtime_stage_name,
    stage_chain,
)
from tests.deploy.support import (
    ACTION_SERVER_MODULE,
    CONFIG,
    CREDENTIALS,
    ENDPOINTS_PROD,
    K8S_CODE,
    PAGE_SERVER_MODULE,
    RASA_SERVICE,
    ROOT,
    command_list,
    compose,
    k8s_manifests,
    k8s_object,
    module_file,
    option,
    page_server_module,
    relative,
)


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
    servers = [module_file(PAGE_SERVER_MODULE), module_file(ACTION_SERVER_MODULE)]
    assert None not in servers, "stale PAGE_SERVER_MODULE or ACTION_SERVER_MODULE"
    assert {relative(file) for file in servers if file} <= set(module_files)

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
        # Every server reads its settings through their declarations.
        process_variables.__module__.partition(".")[0],
    }
    missing = sorted(path for path in needed if not image_has(chain, path))
    assert not missing, f"deploy/Dockerfile stage {runtime} does not copy {missing}"
    excluded = sorted(path for path in needed if dockerignored(path))
    assert not excluded, f".dockerignore keeps {excluded} out of the image"
    assert {"bot_server", "nlu", "actions"} <= needed, (
        "the scan of the project files found too little"
    )


def project_imports(module: str) -> Set[str]:
    """The project modules ``module`` imports, and theirs (absolute imports)."""
    seen: Set[str] = set()
    todo = [module]
    while todo:
        name = todo.pop()
        file = module_file(name)
        if name in seen or file is None:
            continue
        seen.add(name)
        tree = ast.parse(file.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                todo += [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                todo.append(node.module)
                todo += [f"{node.module}.{alias.name}" for alias in node.names]
    return seen


def test_runtime_image_holds_every_package_the_page_server_imports() -> None:
    """The page server imports the agent desk (desk/) and more: all in the image."""
    chain = stage_chain(dockerfile_stages(), runtime_stage_name())
    packages = {name.split(".")[0] for name in project_imports(PAGE_SERVER_MODULE)}
    assert {"web", "desk", "settings", "actions"} <= packages
    missing = sorted(p for p in packages if not image_has(chain, p))
    assert not missing, f"the runtime image lacks {missing}"


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
    webpage = page_server_module()
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
        "the host's web/static/vendor/ and node_modules/ must stay out of the build context"
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
    assert dockerignored("tests/deploy/test_image.py")
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
