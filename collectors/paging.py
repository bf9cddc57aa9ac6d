"""Page-token iteration, written once for every paged MLflow call.

Retries on 429/5xx are left to the MLflow client's own HTTP session (MLFLOW_HTTP_REQUEST_MAX_RETRIES
with backoff); this layer only follows tokens and guards against a server that repeats one.
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


class PagingError(RuntimeError):
    pass


def iter_pages(fetch: Callable[[str | None], Any], on_page: Callable[[int], None] | None = None,
               prefetch: bool = False) -> Iterator[list[T]]:
    """Yield each page of a PagedList-returning call until its `.token` is empty.

    An empty page that still carries a token is followed, as MLflow and Unity Catalog both do that.
    With `prefetch`, the next page is requested while the caller works on the current one: a
    runs/search page is mostly server time, so the client's own work then costs no wall time.
    """
    seen_tokens: set[str] = set()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="waymark-prefetch") if prefetch else \
            contextlib.nullcontext() as pool:
        pending = pool.submit(fetch, None) if pool else None
        token: str | None = None
        while True:
            page = pending.result() if pool else fetch(token)
            token = getattr(page, "token", None)
            if token:
                if token in seen_tokens:
                    raise PagingError(f"server returned page token {token[:20]!r} twice; stopping to avoid a loop")
                seen_tokens.add(token)
                if pool:
                    pending = pool.submit(fetch, token)
            items = list(page)
            if on_page:
                on_page(len(items))
            yield items
            if not token:
                return


def iter_items(fetch: Callable[[str | None], Any], on_page: Callable[[int], None] | None = None,
               prefetch: bool = False) -> Iterator[T]:
    for page in iter_pages(fetch, on_page, prefetch):
        yield from page
