"""Embeddings of texts by (model, text digest) in a SQLite file, so a restart embeds only new or
changed passages."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ponder_research.embedder import Matrix


class VectorStore:
    """Embeddings of texts by (model, text digest) in a SQLite file, so a restart only embeds
    new or changed documents."""

    def __init__(self, path: Path) -> None:
        self._path = path

    def _connect(self) -> sqlite3.Connection:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self._path)
        db.execute("CREATE TABLE IF NOT EXISTS vectors (digest TEXT PRIMARY KEY, vector BLOB)")
        return db

    @staticmethod
    def digest(model: str, text: str) -> str:
        """The key of `text` embedded by `model`."""
        return hashlib.sha256(f"{model}\x00{text}".encode()).hexdigest()

    def load(self, digests: Sequence[str]) -> dict[str, Matrix]:
        """The stored vectors among `digests`."""
        with self._connect() as db:
            found: dict[str, Matrix] = {}
            for start in range(0, len(digests), 500):
                chunk = list(digests[start : start + 500])
                marks = ",".join("?" * len(chunk))
                for digest, blob in db.execute(
                    f"SELECT digest, vector FROM vectors WHERE digest IN ({marks})", chunk
                ):
                    found[digest] = np.frombuffer(blob, dtype="<f4").astype(np.float32)
            return found

    def save(self, items: Sequence[tuple[str, Matrix]]) -> None:
        """Store vectors (committed on return)."""
        with self._connect() as db:
            db.executemany(
                "INSERT OR REPLACE INTO vectors VALUES (?, ?)",
                [(digest, vector.astype("<f4").tobytes()) for digest, vector in items],
            )
