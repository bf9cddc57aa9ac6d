"""Azure AI Search collector against the local stub: vector fields with their algorithms, document
counts, indexers and data sources."""
from __future__ import annotations

from collectors.config import parse_config
from collectors.report import SourceReport
from collectors.runner import snapshot_source
from collectors.search_source import SearchSource
from demo.azure_fixtures import churn_search
from demo.azure_stub import AzureStub
from store import Store
from store import queries as q
from tests.test_collector_azureml import TinyCredential


def config(stub, **extra):
    return parse_config({"sources": [{"name": "search", "kind": "azuresearch", "platform": "azureml",
                                      "search_endpoint": stub.url, **extra}]}).sources[0]


def test_indexes_vector_fields_counts_and_data_sources():
    cred = TinyCredential()
    with AzureStub({"search": churn_search()}) as stub:
        report = SourceReport("search")
        _, batches, _ = SearchSource(config(stub), report, credential=cred).collect(None, False)
    rows = {r["index_name"]: r for r in batches["search_indexes"].rows}
    docs = rows["documents"]
    assert docs["key_field"] == "doc_id" and docs["document_count"] == 48210
    vec = {v["name"]: v for v in docs["vector_fields"]}
    assert vec["content_vector"]["dimensions"] == 1024
    assert (vec["content_vector"]["algorithm_kind"], vec["content_vector"]["metric"]) == ("hnsw", "cosine")
    assert vec["chunks/vector"]["algorithm_kind"] == "exhaustiveKnn"
    assert docs["indexers"] == [{"name": "documents-indexer", "data_source": "onelake-docs",
                                 "data_source_type": "onelake", "container": "lh_docs", "status": "success"}]
    assert rows["faq"]["vector_fields"] == [] and rows["faq"]["indexers"] == []
    assert ("https://search.azure.com/.default",) in cred.scopes
    assert not report.warnings


def test_missing_stats_are_a_partial_row_not_a_failed_pass(tmp_path):
    fixture = churn_search()
    del fixture["stats"]["faq"]
    store = Store(tmp_path / "w.duckdb")
    with AzureStub({"search": fixture}) as stub:
        outcome = snapshot_source(store, config(stub, indexes=["faq", "documents"]))
    assert outcome.ok, outcome.errors
    assert any("faq" in w and "404" in w for w in outcome.warnings)
    rows = q.entity_as_of(store, "search_indexes").set_index("index_name")
    assert rows.loc["faq", "read_status"] == "partial" and rows.loc["documents", "read_status"] == "ok"


def test_a_403_names_the_built_in_role_that_grants_the_read(tmp_path):
    store = Store(tmp_path / "w.duckdb")
    with AzureStub({"search": churn_search()}, fail={"search.indexes": 403}) as stub:
        outcome = snapshot_source(store, config(stub))
    assert not outcome.ok
    assert any("403" in e and "'Reader'" in e and "role-based access enabled" in e for e in outcome.errors), \
        outcome.errors
    with AzureStub({"search": churn_search()}, fail={"search.stats": 403}) as stub:
        report = SourceReport("search")
        SearchSource(config(stub), report, credential=TinyCredential()).collect(None, False)
    assert any("statistics not read" in w and "'Reader'" in w for w in report.warnings), report.warnings
