"""`python -m collectors check`: identity, first-page counts and the missing grant, per source and
API area, against real MLflow sqlite stores and the Databricks / Azure stubs (real clients).

Every area is refused once (a 403 from the stub) to prove the check names it and its grant; a
closed port proves an unreachable source fails fast; the CLI runs as CI runs it and writes nothing.
"""
from __future__ import annotations

import hashlib
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import jwt
import pytest
from rich.console import Console

from collectors.check import check_source
from collectors.config import parse_config
from collectors.permissions import areas, grant
from demo.azure_fixtures import (AML_RG, AML_SUB, AML_WS, CHURN_HEALTH, FABRIC_WS, churn_azureml, churn_fabric,
                                 churn_search)
from demo.azure_stub import AzureStub
from demo.databricks_stub import DatabricksStub, Faults, prometheus_text
from tests.conftest import REPO, cli_env, run_cli, write_config

TOKEN = "dapi-check-0123456789abcdef"
INJECTED = "[bold red]INJECTED[/bold red]"   # platform text that must print literally, not as markup
INJECTED_NAME = "[blink]INJECTED"           # the same inside a name (no "/": it travels in URL paths)


def dbx_workspace() -> dict:
    return {
        "registered_models": [{"full_name": "main.churn.churn_gbm", "name": "churn_gbm", "catalog_name": "main",
                               "schema_name": "churn"}],
        "tables": [{"full_name": "main.churn.features", "name": "features", "catalog_name": "main",
                    "schema_name": "churn", "table_type": "MANAGED"}],
        "lineage": {"main.churn.features": [{"table": "main.bronze.events"}]},
        "serving_endpoints": [{"name": "churn-ep", "config": {"served_entities": [
            {"name": "gbm-1", "entity_name": "main.churn.churn_gbm", "entity_version": "1"}]}}],
        "metrics": {"churn-ep": prometheus_text("churn-ep", ["gbm-1"])},
        "vector_search_endpoints": [{"name": "vs-1"}],
        "vector_indexes": [{"name": "main.churn.docs_idx", "endpoint_name": "vs-1"}],
        "job_runs": [{"run_id": i, "job_id": 7, "start_time": 1_700_000_000_000 + i} for i in range(1, 31)],
        "current_user": {"id": "42", "userName": "alice@example.com", "displayName": f"Alice {INJECTED}"},
    }


def dbx_config(url: str, **extra) -> dict:
    return {"name": "dbx-uc", "kind": "databricks", "platform": "databricks", "host": url, "auth_type": "pat", **extra}


def azure_fixture() -> dict:
    return {"azureml": churn_azureml(), "health": CHURN_HEALTH, "logs": {"rows": []},
            "fabric": churn_fabric(), "search": churn_search()}


def aml_config(url: str) -> dict:
    return {"name": "aml", "kind": "azureml", "platform": "azureml", "subscription_id": AML_SUB,
            "resource_group": AML_RG, "workspace": AML_WS, "arm_endpoint": url, "metrics_endpoint": url,
            "logs_endpoint": url, "log_analytics_workspace_id": "8d1c2b3a-4e5f-4a6b-9c8d-7e6f5a4b3c2d"}


def fabric_config(url: str) -> dict:
    return {"name": "fab-items", "kind": "fabric", "platform": "fabric", "workspace_id": FABRIC_WS,
            "fabric_endpoint": f"{url}/v1", "onelake_table_endpoint": url}


def search_config(url: str) -> dict:
    return {"name": "search", "kind": "azuresearch", "platform": "azureml", "search_endpoint": url}


def source_of(raw: dict):
    return parse_config({"sources": [raw]}).sources[0]


def by_area(result) -> dict:
    return {a.area: a for a in result.areas}


@pytest.fixture()
def dbx_env(monkeypatch):
    """Unified auth finds the PAT in the environment, as in production; nothing else leaks in."""
    for k in ("DATABRICKS_HOST", "DATABRICKS_CLIENT_ID", "DATABRICKS_CLIENT_SECRET", "DATABRICKS_CONFIG_PROFILE",
              "DATABRICKS_AUTH_TYPE"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("DATABRICKS_TOKEN", TOKEN)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class JwtCredential:
    """An Entra-shaped access token (unsigned: the check decodes claims without verifying them)."""

    def __init__(self, **claims):
        self.token = jwt.encode({"aud": "https://management.azure.com", **claims}, "not-a-real-key-0123456789abcdef-32b",
                                algorithm="HS256")

    def get_token(self, *scopes, **kwargs):
        from azure.core.credentials import AccessToken

        return AccessToken(self.token, int(time.time()) + 3600)


# -- Databricks ---------------------------------------------------------------------------------------
def test_databricks_every_area_answers_with_identity_and_first_page_counts(dbx_env):
    with DatabricksStub(dbx_workspace(), token=TOKEN) as stub:
        result = check_source(source_of(dbx_config(stub.url)), timeout=5)
    assert result.ok, result.to_json()
    assert result.identity["user"] == "alice@example.com" and result.identity["kind"] == "user"
    assert result.identity["auth"] == "pat" and TOKEN not in json.dumps(result.to_json())
    got = by_area(result)
    assert [a.area for a in result.areas] == [a.key for a in areas("databricks")]
    assert got["uc_catalogs"].found == "1" and "main: 1 schemas" in got["uc_catalogs"].detail
    assert got["uc_models"].found == "1" and got["serving_endpoints"].found == "1"
    assert got["serving_metrics"].count > 0 and "churn-ep" in got["serving_metrics"].detail
    assert got["table_lineage"].count == 1 and "main.churn.features" in got["table_lineage"].detail
    assert got["vector_search"].found == "1" and "1 indexes on vs-1" in got["vector_search"].detail
    assert got["jobs"].found == "≥25"   # 30 runs, first page of 25: more exist
    # Only reads, one first page per list (the job-run list is not followed to its second page).
    assert stub.counts["jobs.runs.list"] == 1


DBX_ROUTES = {"uc_catalogs": "uc.catalogs.list", "uc_models": "uc.models.list", "serving_endpoints": "serving.list",
              "serving_metrics": "serving.metrics", "table_lineage": "lineage.table",
              "vector_search": "vs.endpoints.list", "jobs": "jobs.runs.list"}


@pytest.mark.parametrize("area", list(DBX_ROUTES))
def test_databricks_a_refused_area_names_its_grant(area, dbx_env):
    assert set(DBX_ROUTES) == {a.key for a in areas("databricks")}
    faults = Faults(forbidden_routes={DBX_ROUTES[area]})
    with DatabricksStub(dbx_workspace(), token=TOKEN, faults=faults) as stub:
        result = check_source(source_of(dbx_config(stub.url)), timeout=5)
    got = by_area(result)
    assert not result.ok
    assert got[area].status == "denied" and got[area].grant == grant("databricks", area)
    assert "PERMISSION_DENIED" in got[area].detail or "PermissionDenied" in got[area].detail
    others = [a for a in result.areas if a.area != area]
    assert all(a.status in ("ok", "skipped") for a in others), result.to_json()
    if area == "serving_endpoints":   # nothing to read metrics from: said, not guessed
        assert got["serving_metrics"].status == "skipped"


def test_databricks_grants_use_the_real_privilege_names():
    assert "USE CATALOG" in grant("databricks", "uc_catalogs") and "USE SCHEMA" in grant("databricks", "uc_catalogs")
    assert "EXECUTE" in grant("databricks", "uc_models")
    assert "CAN VIEW" in grant("databricks", "serving_endpoints")
    assert "BROWSE" in grant("databricks", "table_lineage")
    assert "SELECT" in grant("databricks", "vector_search")


def test_databricks_service_principal_identity(dbx_env):
    ws = dbx_workspace()
    ws["current_user"] = {"id": "7", "userName": "6f0e1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b", "displayName": "ci-deployer"}
    with DatabricksStub(ws, token=TOKEN) as stub:
        result = check_source(source_of(dbx_config(stub.url)), timeout=5)
    assert result.identity["kind"] == "service principal" and result.identity["display_name"] == "ci-deployer"


def test_databricks_bad_token_is_unauthenticated_everywhere(dbx_env, monkeypatch):
    monkeypatch.setenv("DATABRICKS_TOKEN", "dapi-wrong-0000")
    with DatabricksStub(dbx_workspace(), token=TOKEN) as stub:
        result = check_source(source_of(dbx_config(stub.url)), timeout=5)
        assert stub.counts["uc.catalogs.list"] == 0   # one refusal is enough: the areas are not asked
    assert [a.status for a in result.areas] == ["unauthenticated"] * len(areas("databricks"))
    assert "dapi-wrong-0000" not in json.dumps(result.to_json())


def test_databricks_configured_catalog_refused_is_named(dbx_env):
    ws = dbx_workspace()
    for catalog in ("secret", "vault"):
        ws["registered_models"].append({"full_name": f"{catalog}.hr.attrition", "name": "attrition",
                                        "catalog_name": catalog, "schema_name": "hr"})
    faults = Faults(forbidden_catalogs={"secret", "vault"})
    with DatabricksStub(ws, token=TOKEN, faults=faults) as stub:
        result = check_source(source_of(dbx_config(stub.url, catalogs=["secret", "main", "vault"])), timeout=5)
    got = by_area(result)
    detail = got["uc_catalogs"].detail
    assert got["uc_catalogs"].status == "denied" and "USE CATALOG" in got["uc_catalogs"].grant
    assert "catalog secret" in detail and "catalog vault" in detail and "main: 1 schemas" in detail
    assert got["uc_models"].status == "ok" and got["uc_models"].found == "1"   # main.churn, still read


# -- Azure ML, Fabric, AI Search ---------------------------------------------------------------------
AZURE_ROUTES = {
    "azureml": {"online_endpoints": "aml.endpoints", "deployments": "aml.deployments", "models": "aml.models",
                "monitor_metrics": "metrics.batch", "log_analytics": "logs.query"},
    "fabric": {"items": "fabric.items", "ml_models": "fabric.typed@/mlModels",
               "ml_experiments": "fabric.typed@/mlExperiments", "lakehouses": "fabric.typed@/lakehouses",
               "tables": "fabric.tables", "shortcuts": "fabric.shortcuts"},
    "azuresearch": {"indexes": "search.indexes", "indexers": "search.indexers", "stats": "search.stats"},
}
AZURE_CONFIG = {"azureml": aml_config, "fabric": fabric_config, "azuresearch": search_config}


@pytest.mark.parametrize("kind", list(AZURE_ROUTES))
def test_azure_kinds_every_area_answers(kind):
    with AzureStub(azure_fixture()) as stub:
        result = check_source(source_of(AZURE_CONFIG[kind](stub.url)), timeout=5)
    assert result.ok, result.to_json()
    assert [a.area for a in result.areas] == [a.key for a in areas(kind)]
    assert all(a.status == "ok" and a.count is not None for a in result.areas), result.to_json()
    # The loopback stub gets a fixed, non-JWT token: said so, never shown.
    assert result.identity["token"] == "not a JWT: identity unknown"
    assert "waymark-loopback-stub" not in json.dumps(result.to_json())


def test_azure_counts_from_the_first_page_only():
    with AzureStub(azure_fixture(), page_size=1) as stub:
        aml = by_area(check_source(source_of(aml_config(stub.url)), timeout=5))
        fab = by_area(check_source(source_of(fabric_config(stub.url)), timeout=5))
        srch = by_area(check_source(source_of(search_config(stub.url)), timeout=5))
        assert stub.counts["aml.deployments"] == 1   # two deployments, one page read
    assert aml["deployments"].found == "≥1" and "churn-aml" in aml["deployments"].detail
    assert aml["monitor_metrics"].count == 2         # one RequestsPerMinute series per deployment
    assert fab["items"].found == "≥1" and fab["lakehouses"].found == "≥1"
    assert fab["tables"].found == "≥1" and "lh_churn" in fab["tables"].detail
    assert srch["stats"].count == 48210 and "documents" in srch["stats"].detail


@pytest.mark.parametrize("kind,area", [(k, a) for k, routes in AZURE_ROUTES.items() for a in routes])
def test_azure_a_refused_area_names_its_role(kind, area):
    assert set(AZURE_ROUTES[kind]) == {a.key for a in areas(kind)}
    with AzureStub(azure_fixture(), fail={AZURE_ROUTES[kind][area]: 403}) as stub:
        result = check_source(source_of(AZURE_CONFIG[kind](stub.url)), timeout=5)
    got = by_area(result)
    assert not result.ok
    assert got[area].status == "denied" and got[area].grant == grant(kind, area), result.to_json()
    others = [a for a in result.areas if a.area != area]
    assert all(a.status in ("ok", "skipped") for a in others), result.to_json()


def test_azure_roles_are_the_built_in_names():
    assert "AzureML Data Scientist" in grant("azureml", "online_endpoints") and "Reader" in grant("azureml", "models")
    assert "Monitoring Reader" in grant("azureml", "monitor_metrics")
    assert "Log Analytics Reader" in grant("azureml", "log_analytics")
    assert "Viewer" in grant("fabric", "items") and "Service principals can use Fabric APIs" in grant("fabric", "items")
    assert "Search Service Contributor" in grant("azuresearch", "indexes")
    assert "Search Index Data Reader" in grant("azuresearch", "stats")   # named as not enough


def test_fabric_ml_lists_refusing_a_service_principal_say_so():
    with AzureStub(azure_fixture(), user_only_forbidden=True) as stub:
        result = check_source(source_of(fabric_config(stub.url)), timeout=5)
    got = by_area(result)
    for area in ("ml_models", "ml_experiments"):
        assert got[area].status == "denied" and "PrincipalTypeNotSupported" in got[area].detail
        assert "refuses service principals" in got[area].grant
    assert got["items"].status == "ok" and got["lakehouses"].status == "ok"


def test_schema_enabled_lakehouse_tables_come_from_the_onelake_table_api():
    fixture = azure_fixture()
    items = fixture["fabric"][FABRIC_WS]["items"]
    items.sort(key=lambda i: not (i.get("properties") or {}).get("defaultSchema"))   # schema-enabled first
    with AzureStub(fixture) as stub:
        got = by_area(check_source(source_of(fabric_config(stub.url)), timeout=5))
        assert stub.counts["onelake.tables"] == 1
    assert got["tables"].status == "ok" and "OneLake table API" in got["tables"].detail


def test_unconfigured_health_areas_are_skipped_not_failed():
    with AzureStub(azure_fixture()) as stub:
        raw = {k: v for k, v in aml_config(stub.url).items() if k not in ("metrics_endpoint", "log_analytics_workspace_id")}
        result = check_source(source_of(raw), timeout=5)
    got = by_area(result)
    assert result.ok
    assert got["monitor_metrics"].status == "skipped" and "metrics_endpoint" in got["monitor_metrics"].detail
    assert got["log_analytics"].status == "skipped"


def test_entra_identity_is_decoded_from_the_token_which_is_never_shown():
    user = JwtCredential(upn="dana@contoso.example", oid="11111111-2222-3333-4444-555555555555", tid="t-1")
    app = JwtCredential(appid="99999999-8888-7777-6666-555555555555", oid="o-2", idtyp="app")
    with AzureStub(azure_fixture()) as stub:
        as_user = check_source(source_of(aml_config(stub.url)), timeout=5, credential=user)
        as_app = check_source(source_of(search_config(stub.url)), timeout=5, credential=app)
    assert as_user.identity["user"] == "dana@contoso.example" and as_user.identity["kind"] == "user"
    assert as_user.identity["object_id"] == "11111111-2222-3333-4444-555555555555"
    assert as_app.identity["app_id"] == "99999999-8888-7777-6666-555555555555"
    assert as_app.identity["kind"] == "service principal or managed identity"
    for result, cred in ((as_user, user), (as_app, app)):
        assert cred.token not in json.dumps(result.to_json())


# -- MLflow ----------------------------------------------------------------------------------------
def test_mlflow_stores_answer_with_counts(workspace):
    dbx = check_source(source_of({"name": "dbx", "kind": "mlflow", "platform": "databricks",
                                  "tracking_uri": workspace.dbx_uri}), timeout=5)
    assert dbx.ok, dbx.to_json()
    got = by_area(dbx)
    assert got["experiments"].found == "2"          # Default + the churn experiment
    assert got["registered_models"].found == "1"
    assert dbx.identity["tracking"] == "sqlite store (local)"


def test_missing_sqlite_store_is_reported_not_created(tmp_path):
    db = tmp_path / "nope" / "mlflow.db"
    result = check_source(source_of({"name": "m", "kind": "mlflow", "platform": "fabric",
                                     "tracking_uri": f"sqlite:///{db}"}), timeout=5)
    assert [a.status for a in result.areas] == ["not_found", "not_found"]
    assert "no MLflow store" in result.areas[0].detail
    assert not db.parent.exists()


@pytest.fixture()
def mlflow_rest_stub():
    """A minimal MLflow REST server: one page with a next-page token for each search, or a 403
    (the MLflow auth app's PERMISSION_DENIED) for the paths containing `stub.deny`."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def _send(self):
            if server.deny and server.deny in self.path:
                body, status = {"error_code": "PERMISSION_DENIED", "message": "Permission denied"}, 403
            elif "registered-models" in self.path:
                body, status = {"registered_models": [{"name": "m"}], "next_page_token": "t"}, 200
            else:
                body, status = {"experiments": [{"experiment_id": "1", "name": "e"}]}, 200
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = _send

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.deny = None
    server.url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("platform", ["fabric", "databricks", "azureml"])
@pytest.mark.parametrize("area,path", [("experiments", "experiments/search"),
                                       ("registered_models", "registered-models/search")])
def test_mlflow_server_refusal_names_the_grant_per_platform(area, path, platform, mlflow_rest_stub):
    mlflow_rest_stub.deny = path
    result = check_source(source_of({"name": "srv", "kind": "mlflow", "platform": platform,
                                     "tracking_uri": mlflow_rest_stub.url}), timeout=5)
    got = by_area(result)
    assert not result.ok
    assert got[area].status == "denied" and got[area].grant == grant("mlflow", area, platform)
    other = next(a for a in result.areas if a.area != area)
    assert other.status == "ok" and other.found == ("≥1" if other.area == "registered_models" else "1")
    assert result.identity["tracking"] == "127.0.0.1" and result.identity["auth"] == "none"
    expected = {"fabric": "Viewer", "databricks": "CAN READ" if area == "experiments" else "EXECUTE",
                "azureml": "READ permission"}[platform]
    assert expected in got[area].grant


# -- the command, as CI runs it --------------------------------------------------------------------
def _tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_cli_json_exit_0_and_nothing_written(workspace, tmp_path):
    cfg = write_config(tmp_path / "cfg" / "governance.toml", workspace.sources())
    store_dirs = [Path(workspace.dbx_uri[len("sqlite:///"):]).parent, Path(workspace.fab_uri[len("sqlite:///"):]).parent]
    before = [_tree(d) for d in store_dirs], _tree(tmp_path)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    env = cli_env({"PYTHONPATH": str(REPO)})
    proc = subprocess.run([sys.executable, "-m", "collectors", "check", "--config", str(cfg), "--json"], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)   # stdout is exactly one JSON object
    assert doc["ok"] is True and doc["config"] == str(cfg)
    assert [s["source"] for s in doc["sources"]] == ["dbx", "fab"]
    assert {a["area"]: a["found"] for a in doc["sources"][1]["areas"]} == {"experiments": "2",
                                                                           "registered_models": "1"}
    # Reading never writes: no store, no files in the config dir or the cwd, MLflow stores byte-identical.
    assert not (tmp_path / "cfg" / "waymark.duckdb").exists()
    assert ([_tree(d) for d in store_dirs], _tree(tmp_path)) == before
    assert list(cwd.iterdir()) == []


def test_cli_table_exit_1_unreachable_sources_fail_fast(tmp_path):
    port = closed_port()
    url = f"http://127.0.0.1:{port}"
    cfg = write_config(tmp_path / "governance.toml", [
        dbx_config(url), search_config(url),
        {"name": "mlflow-srv", "kind": "mlflow", "platform": "databricks", "tracking_uri": url},
        # MLflow's own Databricks client would retry this dead host for 300 s.
        {"name": "mlflow-dbx", "kind": "mlflow", "platform": "databricks", "tracking_uri": "databricks"},
    ])
    started = time.monotonic()
    proc = run_cli("check", "--config", cfg, "--timeout", "1",
                   env={"DATABRICKS_TOKEN": TOKEN, "DATABRICKS_HOST": url})
    elapsed = time.monotonic() - started
    assert proc.returncode == 1, proc.stderr
    out = proc.stdout
    for name in ("dbx-uc", "search", "mlflow-srv", "mlflow-dbx"):
        assert name in out
    # Every area of a dead host says so; the one that needs an answer from another area is skipped.
    assert out.count("unreachable") == len(areas("databricks")) + 2 + 2 * len(areas("mlflow"))
    assert "the index list was not readable" in out
    assert "Connection refused" in out and f"127.0.0.1:{port}" in out
    assert "0 of 4 sources fully readable" in " ".join(out.split())
    assert TOKEN not in out + proc.stderr
    assert elapsed < 90   # bounded: the SDK's default 300 s retry budget would blow this
    assert not (tmp_path / "waymark.duckdb").exists()


def test_cli_bad_config_exits_2_with_the_snapshot_message(tmp_path, capsys):
    from collectors.__main__ import main

    cfg = tmp_path / "governance.toml"
    cfg.write_text('[[sources]]\nname = "x"\nkind = "mlflow"\nplatform = "nowhere"\ntracking_uri = "sqlite:///x.db"\n')
    assert main(["check", "--config", str(cfg)]) == 2
    check_err = capsys.readouterr().err
    assert main(["snapshot", "--config", str(cfg)]) == 2
    assert check_err == capsys.readouterr().err and "field 'platform'" in check_err
    assert main(["check", "--config", str(tmp_path / "nope.toml"), "--source", "x"]) == 2
    assert "config file not found" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == [cfg]


def test_cli_unknown_source_and_usage_errors_exit_2(workspace, tmp_path, capsys):
    from collectors.__main__ import main

    cfg = write_config(tmp_path / "governance.toml", workspace.sources())
    assert main(["check", "--config", str(cfg), "--source", "nope"]) == 2
    assert "no source named 'nope'" in " ".join(capsys.readouterr().err.split())
    for argv in (["check", "--timeout", "0"], ["check", "--bogus"]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2 and "usage:" in capsys.readouterr().err


def test_cli_help_documents_the_contract(capsys):
    from collectors.__main__ import main

    with pytest.raises(SystemExit) as exc:
        main(["check", "--help"])
    assert exc.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for flag in ("--config", "--source", "--timeout", "--json"):
        assert flag in text
    assert "Exit 0" in text and "Writes nothing" in text
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "check" in capsys.readouterr().out


def test_rich_output_prints_platform_text_literally(dbx_env):
    from collectors.__main__ import print_checks

    ws = dbx_workspace()
    ws["serving_endpoints"][0]["name"] = f"ep-{INJECTED_NAME}"
    ws["metrics"] = {f"ep-{INJECTED_NAME}": prometheus_text("x", ["gbm-1"])}
    with DatabricksStub(ws, token=TOKEN, faults=Faults(forbidden_routes={"lineage.table"})) as stub:
        result = check_source(source_of(dbx_config(stub.url)), timeout=5)
    console = Console(record=True, width=300, color_system=None)
    print_checks([result], console)
    text = " ".join(console.export_text().split())
    assert f"Alice {INJECTED}" in text              # identity from the platform, not rendered as markup
    assert f"ep-{INJECTED_NAME}" in text                 # an endpoint name inside a detail
    assert "needs: BROWSE on the table's parent catalog" in text
    assert "0 of 1 sources fully readable; not: dbx-uc" in text
    assert TOKEN not in text
