"""deploy/Dockerfile and .dockerignore as the image checks (test_image.py) read
them: the build stages with what each copies and runs, what the build context
leaves out, and image references (name, tag).
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import PurePosixPath
from typing import Dict, Iterator, List, Mapping, Optional, Tuple

from tests.deploy.support import (
    DOCKERFILE,
    DOCKERIGNORE,
    RASA_SERVICE,
    compose_raw,
)


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
