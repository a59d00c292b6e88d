"""Which GraphQL operations the response cache may keep (adapters/graphql/cache.py).

An answer may be cached when everything it can show is a pure read of read models written
by projections: then the projections' positions (with the log's head, for the summary)
say when it may have changed. Decided once per (query text, operation name) on a miss;
a hit never gets here.

Not cacheable, and why:
- `alerts`: the alert-action worker writes `action_status`/`action_result`/`acted_at`
  outside any projection, so no position moves when they change;
- `viewerSessions`, `recommendations`, `commentCases`: viewer data that an erasure purges
  outside the projections (adapters/erasure/service.py: comment text and authors too);
  recommendations with `explore` also draw at random;
- `ModerationCase.timeline` at any depth: reporter ids purged by an erasure the same way,
  and a field whose visibility depends on the role;
- mutations and subscriptions (the schema has no mutations; subscriptions stream).
"""

from functools import lru_cache

from graphql import FieldNode, GraphQLError, OperationDefinitionNode, SelectionSetNode, parse

from adapters.graphql.access import root_fields

# Query root fields that read only projection-written tables (adapters/readmodel/*_reader.py).
CACHEABLE_ROOT_FIELDS = frozenset(
    {
        "video", "videos", "creator", "trending", "trendingSeries", "summary",
        "features", "creatorFeatures", "virality", "modelMetrics", "emergingTrends",
        "videoAnomaly", "moderationQueue", "moderationCase", "sentiment",
        "platformSentiment", "sentimentRanking", "turningNegativeVideos", "__typename",
    }
)  # fmt: skip
# Nested fields that make a whole operation uncacheable wherever they appear.
UNCACHEABLE_FIELDS = frozenset({"timeline"})
# Same bound as the schema's MaxTokensLimiter: a larger text is rejected there anyway.
MAX_TOKENS = 2000
DECISIONS_KEPT = 1024
# Decisions are memoised by the query text: longer texts are never cached, so the memo
# holds at most DECISIONS_KEPT * MAX_QUERY_CHARS characters (hot queries are short).
MAX_QUERY_CHARS = 16 * 1024


def _field_names(selection_set: SelectionSetNode | None) -> set[str]:
    names: set[str] = set()
    if selection_set is None:
        return names
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            names.add(selection.name.value)
        names |= _field_names(getattr(selection, "selection_set", None))
    return names


def cacheable(query: str, operation_name: str | None) -> bool:
    """True when the operation's answer depends only on projection-written read models
    (and the caller's role and subject, which are part of the cache key)."""
    return len(query) <= MAX_QUERY_CHARS and _decide(query, operation_name)


@lru_cache(maxsize=DECISIONS_KEPT)
def _decide(query: str, operation_name: str | None) -> bool:
    try:
        document = parse(query, no_location=True, max_tokens=MAX_TOKENS)
    except GraphQLError:
        return False  # strawberry answers the syntax error; errors are never cached
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if not operations or any(o.operation.value != "query" for o in operations):
        return False
    root, fields = root_fields(document, operation_name)
    if root != "Query" or not fields or not set(fields) <= CACHEABLE_ROOT_FIELDS:
        return False
    # Every definition, not only the chosen operation: conservative and simple.
    selected: set[str] = set()
    for definition in document.definitions:
        selected |= _field_names(getattr(definition, "selection_set", None))
    return not selected & UNCACHEABLE_FIELDS
