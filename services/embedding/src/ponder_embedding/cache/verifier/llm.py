"""The optional LLM verifier: asked only about pairs the deterministic verifier cannot settle
(one content word each, no entity: perhaps a synonym its tables lack), with one short JSON
yes/no call, bounded by a timeout, answers remembered. Without a configured model it is never
used; when the call fails or times out the deterministic rejection stands."""

from __future__ import annotations

import asyncio
import json
import logging

from cachetools import LRUCache
from openai import AsyncOpenAI, OpenAIError


logger = logging.getLogger(__name__)

SYSTEM = (
    "You decide whether two questions ask the same thing, so that one answer serves both. "
    'Answer only with JSON: {"same_question": true} or {"same_question": false}.'
)
ANSWERS_KEPT = 4096


class LlmJudge:
    """`same(a, b)`: True, False, or None when the model could not answer in time."""

    def __init__(self, client: AsyncOpenAI, model: str, *, timeout: float) -> None:
        self._client = client
        self._model = model
        self._timeout = timeout
        self._answers: LRUCache[tuple[str, str], bool] = LRUCache(ANSWERS_KEPT)  # recent first
        self.calls = 0

    async def same(self, a: str, b: str) -> bool | None:
        """Whether the model says `a` and `b` ask the same thing (remembered per pair)."""
        key = (a, b) if a <= b else (b, a)
        known = self._answers.get(key)
        if known is not None:
            return known
        self.calls += 1
        try:
            reply = await asyncio.wait_for(
                self._client.chat.completions.create(
                    model=self._model,
                    messages=[
                        {"role": "system", "content": SYSTEM},
                        {"role": "user", "content": f"Question 1: {a}\nQuestion 2: {b}"},
                    ],
                    response_format={"type": "json_object"},
                    temperature=0,
                    max_tokens=16,
                ),
                self._timeout,
            )
            verdict = json.loads(reply.choices[0].message.content or "")["same_question"]
        except (TimeoutError, OpenAIError, ValueError, KeyError, TypeError, IndexError) as exc:
            logger.info("LLM verifier gave no answer", extra={"reason": repr(exc)})
            return None
        if not isinstance(verdict, bool):
            return None
        self._answers[key] = verdict
        return verdict
