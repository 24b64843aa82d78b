"""Two real arXiv papers as research documents, for reflection tests."""

from __future__ import annotations

from ponder.type.v1 import document_pb2


DOCUMENTS = [
    document_pb2.Document(
        id="arxiv:2303.11366",
        title="Reflexion: Language Agents with Verbal Reinforcement Learning",
        summary="Reflexion improves LLM agents by storing verbal self-reflections in memory.",
        url="https://arxiv.org/abs/2303.11366",
    ),
    document_pb2.Document(
        id="arxiv:2303.17651",
        title="Self-Refine: Iterative Refinement with Self-Feedback",
        summary="Self-Refine has one model draft, critique its own output and refine it.",
        url="https://arxiv.org/abs/2303.17651",
    ),
]
