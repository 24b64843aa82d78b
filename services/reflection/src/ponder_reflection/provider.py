"""The contract every reflection provider (offline extractive, OpenAI-compatible) fulfils."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from .types import Critique, SourceDocument, StepKind, TokenUsage


DeltaSink = Callable[[str], None]
Documents = Sequence[SourceDocument]


@dataclass(frozen=True, slots=True)
class Drafted:
    """Text written by a draft or refine call.

    `warnings` carries problems the provider worked around (for example a truncated reply);
    the loop copies them into the outcome's warnings.
    """

    text: str
    usage: TokenUsage
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Critiqued:
    """The critique a critique call produced; `warnings` as for `Drafted`."""

    critique: Critique
    usage: TokenUsage
    warnings: tuple[str, ...] = ()


@runtime_checkable
class ReflectionProvider(Protocol):
    """Writes, assesses and improves a cited text about a topic from numbered documents.

    Documents are numbered from 1 in the order given; texts cite them with `[n]` markers.
    A critique's score is on a 0..10 scale and its issues and suggestions correspond.
    A failing backend raises a PonderError whose gRPC code says why (see ResilientCaller).
    """

    @property
    def name(self) -> str:
        """Provider name, such as "offline" or "openai"."""
        ...

    @property
    def model(self) -> str:
        """Model name as the provider reports it."""
        ...

    @property
    def offline(self) -> bool:
        """True when no language model is called."""
        ...

    def estimate(
        self,
        kind: StepKind,
        topic: str,
        documents: Documents,
        text: str = "",
        critique: Critique | None = None,
    ) -> TokenUsage:
        """At least the tokens the `kind` call on these inputs can use: its prompt counted,
        its completion at the call's maximum output (the loop's budget check)."""
        ...

    async def draft(
        self, topic: str, documents: Documents, on_delta: DeltaSink | None = None
    ) -> Drafted:
        """Write a first cited text about `topic` from `documents`; when `on_delta` is given,
        a provider that streams passes it each piece of text as it arrives."""
        ...

    async def critique(self, topic: str, documents: Documents, text: str) -> Critiqued:
        """Assess `text` against `topic` and `documents`."""
        ...

    async def refine(
        self,
        topic: str,
        documents: Documents,
        text: str,
        critique: Critique,
        on_delta: DeltaSink | None = None,
    ) -> Drafted:
        """Rewrite `text` so that it addresses `critique` (`on_delta` as for draft)."""
        ...
