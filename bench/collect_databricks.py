"""Bench: one snapshot of a large stub Databricks workspace through the real databricks-sdk.

Default scale (issue 4): 2,000 UC models × 10 versions, 200 serving endpoints, 5,000 tables in
5 configured schemas, plus features, a few vector indexes, table lineage and job runs.
Prints the wall time and the number of HTTP requests the stub answered next to the minimum
number of API calls that collecting the same data needs given the API shapes of platform-apis §1
(page-size limits, one `get` per model for aliases, one `get` + one metrics export per endpoint,
one lineage hop per call...).

    python bench/collect_databricks.py [--models 2000] [--versions 10] [--endpoints 200] [--tables 5000]
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from demo.databricks_stub import DatabricksStub, prometheus_text  # noqa: E402

TOKEN = "dapi-bench"
SCHEMAS = 5


def build_workspace(models: int, versions: int, endpoints: int, tables: int) -> dict:
    per_schema = math.ceil(tables / SCHEMAS)
    ws: dict = {"workspace_id": "42", "registered_models": [], "model_versions": {}, "tables": [], "lineage": {},
                "features": [], "feature_lineage": {}, "serving_endpoints": [], "metrics": {},
                "vector_search_endpoints": [], "vector_indexes": [], "job_runs": []}
    for i in range(tables):
        schema = f"s{i // per_schema}"
        name = f"t{i:05d}"
        ws["tables"].append({"full_name": f"main.{schema}.{name}", "name": name, "catalog_name": "main",
                             "schema_name": schema, "table_type": "MANAGED", "data_source_format": "DELTA",
                             "storage_location": f"s3://lake/{schema}/{name}", "owner": "eng", "created_at": 1})
    # 50 feature tables (in s0) each fed by two upstream tables, one feature per table, used by models.
    for f in range(50):
        table = f"main.s0.t{f:05d}"
        ws["lineage"][table] = [{"table": f"main.s1.t{per_schema + 2 * f:05d}"},
                                {"table": f"main.s1.t{per_schema + 2 * f + 1:05d}"}]
        ws["features"].append({"full_name": f"main.s0.f{f}", "catalog_name": "main", "schema_name": "s0",
                               "name": f"f{f}", "source": {"delta_table_source": {"full_name": table}}})
        ws["feature_lineage"][f"{table}|f{f}"] = {"models": [{"name": f"main.ml.m{f:04d}", "version": 1}]}
    for m in range(models):
        full = f"main.ml.m{m:04d}"
        ws["registered_models"].append({"full_name": full, "name": f"m{m:04d}", "catalog_name": "main",
                                        "schema_name": "ml", "owner": "ds", "created_at": 1, "updated_at": 2,
                                        "aliases": [{"alias_name": "champion", "version_num": versions}]})
        ws["model_versions"][full] = [
            {"model_name": f"m{m:04d}", "catalog_name": "main", "schema_name": "ml", "version": v,
             "run_id": f"r{m}-{v}", "run_workspace_id": 42, "source": f"dbfs:/x/r{m}-{v}", "status": "READY",
             "created_at": v, "updated_at": v,
             "model_version_dependencies": {"dependencies": [{"table": {"table_full_name": f"main.s0.t{m % 50:05d}"}}]}}
            for v in range(1, versions + 1)]
    for e in range(endpoints):
        full = f"main.ml.m{e % models:04d}"
        ws["serving_endpoints"].append({
            "name": f"ep-{e:03d}", "id": f"id-{e}", "state": {"ready": "READY", "config_update": "NOT_UPDATING"},
            "config": {"config_version": 1, "served_entities": [
                {"name": "a", "entity_name": full, "entity_version": str(versions), "workload_size": "Small",
                 "scale_to_zero_enabled": True, "state": {"deployment": "DEPLOYMENT_READY"}},
                {"name": "b", "entity_name": full, "entity_version": str(versions - 1), "workload_size": "Small",
                 "scale_to_zero_enabled": True, "state": {"deployment": "DEPLOYMENT_READY"}}],
                "traffic_config": {"routes": [{"served_entity_name": "a", "traffic_percentage": 90},
                                              {"served_entity_name": "b", "traffic_percentage": 10}]}}})
        ws["metrics"][f"ep-{e:03d}"] = prometheus_text(f"ep-{e:03d}", ["a", "b"])
    for v in range(2):
        ws["vector_search_endpoints"].append({"name": f"vs-{v}", "endpoint_type": "STANDARD", "num_indexes": 5})
        for i in range(5):
            ws["vector_indexes"].append({"name": f"main.s2.idx{v}{i}", "endpoint_name": f"vs-{v}",
                                         "index_type": "DELTA_SYNC", "primary_key": "id",
                                         "delta_sync_index_spec": {"source_table": f"main.s2.t{2 * per_schema + i:05d}",
                                                                   "embedding_source_columns": [
                                                                       {"name": "text", "embedding_model_endpoint_name": "ep-000"}]},
                                         "status": {"ready": True, "indexed_row_count": 10}})
    return ws


def minimum_calls(ws: dict, schemas: list[str]) -> dict[str, int]:
    """The fewest requests that read the same data, given the documented API shapes."""
    n_models = len(ws["registered_models"])
    listed_schemas = {tuple(s.split(".")) for s in schemas}
    referenced = set()
    for versions in ws["model_versions"].values():
        for v in versions:
            for d in (v.get("model_version_dependencies") or {}).get("dependencies", []):
                referenced.add(d["table"]["table_full_name"])
    referenced |= {f["source"]["delta_table_source"]["full_name"] for f in ws["features"]}
    referenced |= {i["delta_sync_index_spec"]["source_table"] for i in ws["vector_indexes"]}
    lineage_tables, frontier = set(), set(referenced)
    for _ in range(3):   # lineage_depth 3: one call per table reached
        lineage_tables |= frontier
        frontier = {u["table"] for t in frontier for u in ws["lineage"].get(t, []) if "table" in u} - lineage_tables
    table_gets = {t for t in lineage_tables if tuple(t.split(".")[:2]) not in listed_schemas}
    feature_schemas = listed_schemas | {tuple(t.split(".")[:2]) for t in referenced}
    out = {
        "host metadata probe": 1,
        "UC models list (1000/page)": max(1, math.ceil(n_models / 1000)),
        "UC model get (aliases)": n_models,
        "UC versions list (1000/page)": sum(max(1, math.ceil(len(v) / 1000)) for v in ws["model_versions"].values()),
        "serving list + get + metrics": 1 + 2 * len(ws["serving_endpoints"]),
        "vector search (endpoints, indexes, get)": 1 + len(ws["vector_search_endpoints"]) + len(ws["vector_indexes"]),
        "tables list (configured schemas)": sum(max(1, math.ceil(
            sum(1 for t in ws["tables"] if (t["catalog_name"], t["schema_name"]) == s) / 1000)) for s in listed_schemas),
        "tables get (referenced, not listed)": len(table_gets),
        "table lineage (one hop per call)": len(lineage_tables),
        "features list (per schema)": len(feature_schemas),
        "feature lineage (per feature)": len(ws["features"]),
    }
    return out


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--models", type=int, default=2000)
    p.add_argument("--versions", type=int, default=10)
    p.add_argument("--endpoints", type=int, default=200)
    p.add_argument("--tables", type=int, default=5000)
    args = p.parse_args()
    from collectors.config import load_config
    from collectors.runner import snapshot_all

    t0 = time.perf_counter()
    ws = build_workspace(args.models, args.versions, args.endpoints, args.tables)
    schemas = [f"main.s{i}" for i in range(SCHEMAS)]
    print(f"workspace: {args.models:,} models × {args.versions} versions, {args.endpoints} endpoints, "
          f"{args.tables:,} tables (built in {time.perf_counter() - t0:.1f}s)")
    os.environ["DATABRICKS_TOKEN"] = TOKEN
    with tempfile.TemporaryDirectory() as tmp, DatabricksStub(ws, token=TOKEN) as stub:
        cfg = Path(tmp) / "governance.toml"
        cfg.write_text("[store]\npath = \"waymark.duckdb\"\n\n[[sources]]\nname = \"dbx-bench\"\n"
                       "kind = \"databricks\"\nplatform = \"databricks\"\n"
                       f"host = \"{stub.url}\"\nauth_type = \"pat\"\ncatalogs = [\"main\"]\nschemas = {schemas!r}\n"
                       "retry_timeout_seconds = 30\n".replace("'", '"'), encoding="utf-8")
        config = load_config(cfg)
        start = time.perf_counter()
        outcome = snapshot_all(config)[0]
        seconds = time.perf_counter() - start
        if not outcome.ok:
            print("snapshot FAILED:", outcome.errors)
            return 1
        minimum = minimum_calls(ws, schemas)
        made = stub.total_requests
        need = sum(minimum.values())
        print(f"snapshot: {seconds:.1f}s wall, {outcome.seconds:.1f}s collecting+committing")
        print(f"requests made: {made:,} (client counted {outcome.api_calls:,} + the host probe)")
        print(f"minimum needed: {need:,}   ratio made/minimum: {made / need:.3f}")
        for k, v in minimum.items():
            print(f"  {k:45s} {v:>7,}")
        by_route = ", ".join(f"{r}={n:,}" for r, n in sorted(stub.counts.items()))
        print(f"requests by route: {by_route}")
        seen = {k: v["seen"] for k, v in outcome.counts.items()}
        print(f"rows: {seen}")
        print(f"warnings: {len(outcome.warnings)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
