"""Checklist evidence for an AI Search replacement whose document count is unknown (issue 10.3):
an index whose statistics could not be read is "in progress", never "done"."""
from __future__ import annotations

from tests.test_checklist import _platform_store, _rows, _search, _uc

KEY = "vector_index:dbx-ws:main.gold.tickets_index"
FED = {"index_name": "support", "vector_fields": [{"name": "body_vector", "dimensions": 1024}],
       "indexers": [{"name": "ixr2", "data_source": "ds", "container": "tickets"}]}


def test_an_unread_document_count_is_in_progress_not_done(tmp_path):
    store = _platform_store(tmp_path)
    _uc(store, 1)
    _search(store, 1, {**FED, "document_count": None, "read_status": "partial",
                       "detail": "HTTP 403 Forbidden on /indexes('support')/search.stats"})
    row = _rows(store).loc[KEY]
    assert row["evidence_status"] == "in_progress", row["evidence"]
    assert "document count could not be read" in row["evidence"]
    # Once the count is read, the same index proves the move.
    _search(store, 2, {**FED, "document_count": 4800, "read_status": "ok"})
    assert _rows(store).loc[KEY, "evidence_status"] == "done"
