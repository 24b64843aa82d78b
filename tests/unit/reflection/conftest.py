"""Shared fixtures: small realistic source documents about LLM research."""

import pytest

from ponder_reflection.offline import OfflineProvider
from ponder_reflection.types import SourceDocument


DOCS = (
    SourceDocument(
        id="arxiv:2005.11401",
        title="Retrieval-Augmented Generation for Knowledge-Intensive NLP Tasks",
        url="https://arxiv.org/abs/2005.11401",
        authors=("Patrick Lewis", "Ethan Perez"),
        text=(
            "Large pre-trained language models store factual knowledge in their parameters, "
            "but their ability to access and precisely manipulate that knowledge is limited. "
            "Retrieval-augmented generation (RAG) combines a parametric sequence-to-sequence "
            "model with a non-parametric memory: a dense vector index of Wikipedia accessed "
            "with a neural retriever. "
            "For language generation, RAG models produce more specific, diverse and factual "
            "text than a parametric-only baseline. "
            "Lewis et al. (2020) report state-of-the-art results on three open-domain QA tasks."
        ),
    ),
    SourceDocument(
        id="arxiv:2004.04906",
        title="Dense Passage Retrieval for Open-Domain Question Answering",
        url="https://arxiv.org/abs/2004.04906",
        text=(
            "Open-domain question answering relies on efficient passage retrieval to select "
            "candidate contexts. "
            "Dense passage retrieval learns embeddings for questions and passages with a "
            "dual-encoder framework, e.g. two independent BERT encoders. "
            "The dense retriever outperforms a strong BM25 system by 9 to 19 points in top-20 "
            "passage retrieval accuracy. "
            "Better retrieval also improves end-to-end question answering accuracy."
        ),
    ),
    SourceDocument(
        id="arxiv:2201.11903",
        title="Chain-of-Thought Prompting Elicits Reasoning in Large Language Models",
        url="https://arxiv.org/abs/2201.11903",
        text=(
            "Chain-of-thought prompting supplies a few exemplars with intermediate reasoning "
            "steps. "
            "It improves the performance of large language models on arithmetic, commonsense "
            "and symbolic reasoning tasks. "
            "The gains emerge only in models of roughly 100B parameters or more."
        ),
    ),
    SourceDocument(
        id="arxiv:1706.03762",
        title="Attention Is All You Need",
        url="https://arxiv.org/abs/1706.03762",
        text=(
            "The Transformer is a network architecture based solely on attention mechanisms, "
            "dispensing with recurrence and convolutions entirely. "
            "It reached 28.4 BLEU on the WMT 2014 English-to-German translation task. "
            "Training is far more parallelizable than with recurrent networks."
        ),
    ),
    SourceDocument(
        id="arxiv:2311.05232",
        title="A Survey on Hallucination in Large Language Models",
        url="https://arxiv.org/abs/2311.05232",
        text=(
            "Hallucination refers to generated content that is nonsensical or unfaithful to "
            "the provided source or to world knowledge. "
            "Grounding generation in retrieved evidence is one of the most effective ways to "
            "mitigate hallucinations. "
            "Retrieval can still fail when the retrieved passages are irrelevant or outdated, "
            "and models may ignore the evidence they are given."
        ),
    ),
    SourceDocument(
        id="arxiv:2303.17651",
        title="Self-Refine: Iterative Refinement with Self-Feedback",
        url="https://arxiv.org/abs/2303.17651",
        text=(
            "Self-Refine lets a language model write an initial output, give feedback on it, "
            "and refine it iteratively. "
            "Across seven tasks, outputs improved by about 20% on average without additional "
            "training."
        ),
    ),
)


@pytest.fixture
def documents() -> tuple[SourceDocument, ...]:
    """Six abstracts: RAG [1], DPR [2], chain-of-thought [3], Transformer [4],
    hallucination survey [5], Self-Refine [6]."""
    return DOCS


@pytest.fixture
def provider() -> OfflineProvider:
    """A fresh offline provider."""
    return OfflineProvider()
