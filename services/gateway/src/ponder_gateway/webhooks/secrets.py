"""Webhook signing secrets by name: a notification target names one (never carries it)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path


MIN_SECRET_LENGTH = 16
# "<name>" serves every tenant; "<tenant>:<name>" only that tenant.
_NAME = re.compile(r"^(?:[a-z0-9][a-z0-9._-]{0,62}:)?[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
SecretKeys = tuple[bytes, ...]


def parse_secrets(given: Mapping[str, object]) -> dict[str, SecretKeys]:
    """Secrets by name from `{"name": "secret" | ["secret", ...]}`; ValueError naming the
    offending name (never a secret) otherwise."""
    parsed: dict[str, SecretKeys] = {}
    for name, value in given.items():
        if not _NAME.match(name):
            raise ValueError(
                f"webhook secret name {name!r} must be [tenant:]name of [A-Za-z0-9._-]"
            )
        given_values: list[object] = value if isinstance(value, list) else [value]
        values = [v for v in given_values if isinstance(v, str)]
        if not values or len(values) != len(given_values):
            raise ValueError(f"webhook secret {name!r} must be a string or a list of strings")
        if any(len(v) < MIN_SECRET_LENGTH for v in values):
            raise ValueError(
                f"webhook secret {name!r} is shorter than {MIN_SECRET_LENGTH} characters"
            )
        parsed[name] = tuple(v.encode() for v in values)
    return parsed


def read_secrets_file(path: Path) -> dict[str, SecretKeys]:
    """The secrets of a JSON file; ValueError saying what is wrong (never a secret)."""
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise ValueError(f"cannot read the webhook secrets file: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"the webhook secrets file is not JSON (line {exc.lineno})") from None
    if not isinstance(data, dict):
        raise ValueError("the webhook secrets file must hold a JSON object")
    return parse_secrets(data)


class WebhookSecrets:
    """The configured secrets; a tenant sees its own ("tenant:name") and the shared ones."""

    def __init__(self, secrets: Mapping[str, SecretKeys]) -> None:
        self._secrets = dict(secrets)

    def lookup(self, name: str, tenant: str) -> SecretKeys | None:
        """The keys `name` stands for, for a caller of `tenant`; None when unknown."""
        if not name or ":" in name:
            return None
        return self._secrets.get(f"{tenant}:{name}") or self._secrets.get(name)
