"""Compose's variable interpolation, as docker compose applies it to
docker-compose.yml: ``$$``, ``$VAR``, ``${VAR}``, ``${VAR[:]-x}``,
``${VAR[:]?x}``, ``${VAR[:]+x}``, with references nested in ``x``.

The deployment checks read the file with it (no Docker needed);
test_schemas.test_interpolation_follows_compose guards it with the
specification's examples.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterator, Mapping, Optional

ENV_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_NAMED = re.compile(ENV_NAME)
_BRACED = re.compile(
    r"(?P<name>" + ENV_NAME + r")(?:(?P<op>:?[-?+])(?P<arg>.*))?", re.S
)


class MissingVariable(Exception):
    """A ``${VAR:?message}`` whose variable is not set."""


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


def interpolate_tree(node: Any, env: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, list):
        return [interpolate_tree(item, env) for item in node]
    if isinstance(node, dict):
        return {key: interpolate_tree(value, env) for key, value in node.items()}
    return node
