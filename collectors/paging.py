"""Page-token iteration, written once for every paged MLflow call.

Retries on 429/5xx are left to the MLflow client's own HTTP session (MLFLOW_HTTP_REQUEST_MAX_RETRIES
with backoff); this layer only follows tokens and guards against a server that repeats one.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")


class PagingError(RuntimeError):
    pass


def iter_pages(fetch: Callable[[str | None], Any], on_page: Callable[[int], None] | None = None) -> Iterator[list[T]]:
    """Yield each page of a PagedList-returning call until its `.token` is empty.

    An empty page that still carries a token is followed, as MLflow and Unity Catalog both do that.
    """
    token: str | None = None
    seen_tokens: set[str] = set()
    while True:
        page = fetch(token)
        items = list(page)
        if on_page:
            on_page(len(items))
        yield items
        token = getattr(page, "token", None)
        if not token:
            return
        if token in seen_tokens:
            raise PagingError(f"server returned page token {token[:20]!r} twice; stopping to avoid a loop")
        seen_tokens.add(token)


def iter_items(fetch: Callable[[str | None], Any], on_page: Callable[[int], None] | None = None) -> Iterator[T]:
    for page in iter_pages(fetch, on_page):
        yield from page
