"""Principals (users and groups) and the access lists documents carry."""

from __future__ import annotations

import re
from dataclasses import dataclass

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,127}")


class AccessError(ValueError):
    """A malformed principal or access-list entry."""


@dataclass(frozen=True, order=True)
class Principal:
    """A user or a group, written `user:NAME` or `group:NAME`."""

    kind: str
    name: str

    @classmethod
    def parse(cls, text: str) -> Principal:
        """Parse `user:alice` / `group:hr`; anything else is an AccessError."""
        kind, sep, name = text.strip().partition(":")
        if not sep or kind not in ("user", "group"):
            raise AccessError(f"{text!r}: write access entries as user:NAME or group:NAME")
        return cls(kind, check_name(name))

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}"


def check_name(name: str) -> str:
    """A user or group name: letters, digits and . _ @ -, starting with a letter or digit."""
    if not _NAME.fullmatch(name):
        raise AccessError(
            f"{name!r} is not a valid name (letters, digits, '.', '_', '@', '-'; max 128)"
        )
    return name
