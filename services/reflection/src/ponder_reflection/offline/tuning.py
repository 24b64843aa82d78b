"""The numbers that tune the offline provider's drafts, matches and selections."""

MAX_DRAFT_SENTENCES = 5
MIN_DRAFT_SENTENCES = 3
MIN_CITED_SENTENCES = 2
# Critique: two sentences at least this similar (Jaccard of content terms) repeat each other.
REDUNDANCY_THRESHOLD = 0.6
# Selection keeps a margin below the critique's threshold.
SELECTION_SIMILARITY_LIMIT = 0.5
# An uncited sentence is attributed to the most similar source sentence at least this similar
# that shares at least MATCH_MIN_SHARED terms.
MATCH_THRESHOLD = 0.3
MATCH_MIN_SHARED = 2
RANK_BONUS = 0.1
MMR_LAMBDA = 0.7
MIN_SENTENCE_WORDS = 3
MAX_SENTENCE_WORDS = 120
HEADING_TOPIC_CHARS = 200
SNIPPET_CHARS = 60
LISTED_TERMS = 5
# A sentence that opens with one of these leans on a sentence before it, so it reads worse
# out of context; its topic coverage counts for less.
ANAPHORA = frozenset({"it", "its", "they", "their", "them", "this", "these", "those", "such"})
ANAPHORA_FACTOR = 0.6
# Corpora a provider keeps: each reflection asks for its own one in every call.
CORPORA_KEPT = 8
# A call quotes the topic, the documents and the text it is given, so it writes at most twice
# the words it reads (markers and joining words included) plus this margin.
OUTPUT_MARGIN_WORDS = 64
