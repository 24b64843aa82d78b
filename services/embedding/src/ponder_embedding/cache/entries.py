"""Cache entries, their keys, and the change records backends exchange."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


Vector = npt.NDArray[np.float32]
NO_VECTOR: Vector = np.empty(0, dtype=np.float32)


def normalize_text(text: str) -> str:
    """The form of a text that exact-match lookups compare: whitespace collapsed, casefolded."""
    return " ".join(text.split()).casefold()


def entry_key(namespace: str, text: str) -> str:
    """The key of the entry for `text` in `namespace`: equal texts (after normalize_text) share
    a key, so storing a text again replaces its entry and an exact repeat is one dict lookup."""
    digest = hashlib.sha256(f"{namespace}\x00{normalize_text(text)}".encode()).hexdigest()
    return digest[:32]


@dataclass(slots=True)
class CacheEntry:
    """One stored answer. Times are Unix seconds; `vector` is unit length (float32).

    In memory the cache keeps neither payload (None: read from the backend on a hit) nor
    vector (it lives in the namespace's matrix), so memory grows with entries, not answers.
    """

    key: str
    namespace: str
    text: str
    payload: bytes | None
    payload_type: str
    vector: Vector
    create_time: float
    expire_time: float
    hit_count: int = 0
    last_access: float = 0.0

    def expired(self, now: float) -> bool:
        """Whether the entry's time to live has passed."""
        return self.expire_time <= now


@dataclass(frozen=True, slots=True)
class CacheChange:
    """Something another replica did: stored `entry`, or removed the entry `key`."""

    key: str
    entry: CacheEntry | None  # None means removed
