"""The demo workspace's Azure side: the fixture the demo build publishes into, served by an
`AzureStub` whose port is recorded so that the app's snapshot subprocesses reach it."""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from demo.azure_fixtures import AML_MODEL, AML_RG, AML_SUB, AML_WS, CHURN_HEALTH, churn_azureml, log_rows, now_utc
from demo.azure_stub import AzureStub, serve_file
from demo.layout import AZURE_STUB_STATE

DEMO_STUB_STATE = AZURE_STUB_STATE.name   # {"port": N}: where the demo's Azure stub listens (see ensure_demo_stub)


class DemoAzure:
    """The Azure ML side of the demo: the churn model copied from Databricks (via Fabric) and served on
    `churn-aml`, blue (v2 = the tuned model, Fabric's Production) and later green (v3 = the November
    retrain, Fabric's Staging) at 10 %. Its fixture lives in `<demo>/azure/fixture.json` and is served
    by an AzureStub on 127.0.0.1 whose port is recorded in `<demo>/azure/stub.json`."""

    source_name = "aml-churn"

    def __init__(self, root: Path):
        self.dir = root / "azure"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.fixture_path = self.dir / "fixture.json"
        self.fixture: dict[str, Any] = {"azureml": churn_azureml(traffic={}), "health": {}, "logs": {"rows": []}}
        self.fixture["azureml"]["endpoints"] = []
        self.fixture["azureml"]["models"][0]["versions"] = []
        self.stub: AzureStub | None = None

    def start(self) -> "DemoAzure":
        self.save()
        self.stub = AzureStub(self.fixture).start()
        port = int(self.stub.url.rsplit(":", 1)[1])
        (self.dir / DEMO_STUB_STATE).write_text(json.dumps({"port": port}), encoding="utf-8")
        return self

    def stop(self) -> None:
        if self.stub:
            self.stub.stop()
            self.stub = None

    def config_block(self) -> str:
        assert self.stub is not None
        url = self.stub.url
        return ("\n[[sources]]\n"
                f'name = "{self.source_name}"\nkind = "azureml"\nplatform = "azureml"\n'
                f'subscription_id = "{AML_SUB}"\nresource_group = "{AML_RG}"\nworkspace = "{AML_WS}"\n'
                f'arm_endpoint = "{url}"\nmetrics_endpoint = "{url}"\nlogs_endpoint = "{url}"\n'
                'log_analytics_workspace_id = "8d1c2b3a-4e5f-4a6b-9c8d-7e6f5a4b3c2d"\n'
                "\n[[slo]]\n"
                'endpoint = "churn-aml"\nplatform = "azureml"\nserves = "churn_model@Production"\n'
                'registry_source = "fabric-churn"\nlatency_p95_ms = 150\nerror_rate_pct = 1.0\n'
                "min_requests_per_minute = 1\nstale_after_minutes = 1440\n"
                "\n[[slo]]\n"
                'endpoint = "churn-*"\nplatform = "databricks"\nserves = "churn.ml.churn_gbm@champion"\n'
                'registry_source = "dbx-uc"\nlatency_p95_ms = 150\nerror_rate_pct = 1.0\n'
                "stale_after_minutes = 1440\n")

    def publish(self, artifacts: dict[str, Path], traffic: dict[str, int], migrated_from: dict[str, str]) -> None:
        """Register the given Azure ML versions (copies of `artifacts`) and route traffic."""
        uris = {}
        for version, src in artifacts.items():
            dest = self.dir / "models" / AML_MODEL / f"v{version}"
            if not dest.exists():
                shutil.copytree(src, dest)
            uris[version] = dest.as_uri()
        aml = churn_azureml(model_uris=uris, traffic=traffic, migrated_from=migrated_from)
        aml["models"][0]["versions"] = [v for v in aml["models"][0]["versions"] if v["name"] in uris]
        self.fixture["azureml"] = aml
        self.fixture["health"] = {"churn-aml": {d: CHURN_HEALTH["churn-aml"][d] for d in traffic}}
        self.fixture["logs"] = {"rows": log_rows(self.fixture["health"], now_utc().replace(minute=0, second=0,
                                                                                            microsecond=0), hours=24)}
        self.save()

    def save(self) -> None:
        self.fixture_path.write_text(json.dumps(self.fixture, indent=1), encoding="utf-8")


def ensure_demo_stub(demo_root: Path) -> AzureStub | None:
    """Serve the demo's Azure fixture on its recorded port if nothing listens there yet (an app
    process calls this once, so `python -m collectors snapshot` subprocesses reach it)."""
    import socket

    state = demo_root / "azure" / DEMO_STUB_STATE
    fixture = demo_root / "azure" / "fixture.json"
    if not state.exists() or not fixture.exists():
        return None
    port = int(json.loads(state.read_text(encoding="utf-8"))["port"])
    with socket.socket() as probe:
        probe.settimeout(0.5)
        if probe.connect_ex(("127.0.0.1", port)) == 0:
            return None   # already served (by this or another process)
    try:
        return serve_file(fixture, port=port)
    except OSError:
        return None   # port taken by something else: the source's next pass reports the failure
