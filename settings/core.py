"""Declaring a setting, parsing its text, and the one failure policy.

A settings class is a frozen dataclass whose fields are declared with
:func:`setting`. :func:`load` reads every variable once, parses it, runs the
class's cross-field ``problems()`` and raises :class:`SettingsError` listing
every unusable variable by name: the process refuses to start rather than run
with a value someone did not mean (a typo in a limit, a short secret).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any, Callable, List, Mapping, Optional, Tuple, Type, TypeVar

T = TypeVar("T")


class SettingsError(ValueError):
    """One or more environment variables cannot be used; the message names them."""


@dataclass(frozen=True)
class Variable:
    """An environment variable: its name, parser, default and meaning."""

    name: str
    parse: Callable[[str], Any]
    default: Any
    doc: str
    # A secret's value never appears in an error message or a listing.
    secret: bool = False
    # Why a deployment must never set it (a test or demo switch), or "".
    never_deployed: str = ""


def setting(
    name: str,
    parse: Callable[[str], Any],
    default: Any,
    doc: str,
    secret: bool = False,
    never_deployed: str = "",
) -> Any:
    """Declare a field read from ``name`` (for use in a settings dataclass)."""
    variable = Variable(name, parse, default, doc, secret, never_deployed)
    return dataclasses.field(default=default, metadata={"variable": variable})


def variables(cls: type) -> Tuple[Variable, ...]:
    """The variables a settings class reads, in declaration order."""
    return tuple(
        field.metadata["variable"]
        for field in dataclasses.fields(cls)
        if "variable" in field.metadata
    )


def load(cls: Type[T], environ: Optional[Mapping[str, str]] = None) -> T:
    """Read ``cls`` from ``environ`` (default: the process environment)."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    problems: List[str] = []
    for field in dataclasses.fields(cls):  # type: ignore[arg-type]
        variable: Optional[Variable] = field.metadata.get("variable")
        if variable is None:
            continue
        raw = env.get(variable.name, "").strip()
        if not raw:
            values[field.name] = variable.default
            continue
        try:
            values[field.name] = variable.parse(raw)
        except ValueError as error:
            shown = "(secret)" if variable.secret else repr(raw)
            problems.append(f"{variable.name}={shown}: {error}")
    if not problems:
        loaded = cls(**values)
        problems.extend(getattr(loaded, "problems", lambda: [])())
        if not problems:
            return loaded
    raise SettingsError(
        "cannot start, fix these environment variables: " + "; ".join(problems)
    )


# Parsers: each takes the stripped, non-empty text and returns the value or
# raises ValueError with one short reason.


def text(raw: str) -> str:
    """Any text."""
    return raw


def choice(*allowed: str) -> Callable[[str], str]:
    """One of ``allowed``."""

    def parse(raw: str) -> str:
        if raw not in allowed:
            raise ValueError("must be one of " + ", ".join(allowed))
        return raw

    return parse


def positive_int(raw: str) -> int:
    """A whole number above zero."""
    if not raw.isascii() or not raw.isdigit() or int(raw) <= 0:
        raise ValueError("must be a whole number above 0")
    return int(raw)


def positive_float(raw: str) -> float:
    """A number above zero (seconds and the like)."""
    try:
        value = float(raw)
    except ValueError:
        raise ValueError("must be a number") from None
    if not value > 0 or value == float("inf"):
        raise ValueError("must be a number above 0")
    return value


def flag(raw: str) -> bool:
    """1 (on) or 0 (off)."""
    if raw not in ("0", "1"):
        raise ValueError("must be 1 or 0")
    return raw == "1"


def comma_list(raw: str) -> Tuple[str, ...]:
    """Comma-separated items (blanks dropped)."""
    return tuple(item.strip() for item in raw.split(",") if item.strip())


def secret(min_length: int) -> Callable[[str], str]:
    """A secret of at least ``min_length`` characters."""

    def parse(raw: str) -> str:
        if len(raw) < min_length:
            raise ValueError(f"must be at least {min_length} characters")
        return raw

    return parse


def url(*schemes: str) -> Callable[[str], str]:
    """A URL with one of ``schemes``."""

    def parse(raw: str) -> str:
        scheme, separator, _ = raw.partition("://")
        if not separator or scheme.lower() not in schemes:
            raise ValueError(
                "must be a URL starting with "
                + " or ".join(f"{name}://" for name in schemes)
            )
        return raw

    return parse
