"""Named entities, acronyms and content words present in one text and absent from the other,
after aliases, stems and synonyms."""

from __future__ import annotations

from ponder_embedding.cache.verifier.normalise import Analysis
from ponder_embedding.cache.verifier.verdict import CONTENT, ENTITY, Verdict, quoted


def check_content(a: Analysis, b: Analysis) -> Verdict | None:
    """A rejection naming the entity or word only one text has, else None."""
    canon_a = {t.canon for t in a.content}
    canon_b = {t.canon for t in b.content}
    only_a = [t for t in a.content if t.canon not in canon_b]
    only_b = [t for t in b.content if t.canon not in canon_a]
    if not only_a and not only_b:
        return None
    entities_a = [t.surface for t in only_a if t.entity]
    entities_b = [t.surface for t in only_b if t.entity]
    if entities_a and entities_b:
        return Verdict.reject(ENTITY, f"entity differs {quoted(entities_a[0], entities_b[0])}")
    if entities_a or entities_b:
        return Verdict.reject(ENTITY, f"entity only in one {quoted((entities_a or entities_b)[0])}")
    if only_a and only_b:
        return Verdict.reject(
            CONTENT,
            f"content words differ {quoted(only_a[0].surface, only_b[0].surface)}",
            undecided=len(only_a) == len(only_b) == 1,  # perhaps synonyms the tables lack
        )
    return Verdict.reject(
        CONTENT, f"content word only in one {quoted((only_a or only_b)[0].surface)}"
    )
