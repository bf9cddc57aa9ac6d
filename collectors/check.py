"""`python -m collectors check`: a read-only first contact with each configured source.

Per source: the identity the platform sees (never a token), then one call per API area (the first
page only) with its outcome — reachable, how many items (`≥N` when more pages exist), or the
refusal and the role or privilege that grants the area (collectors/permissions.py). It reuses the
collectors' own clients and auth (DatabricksSource.w, AzureHttp, MlflowSource.client, the Azure
credential choice), with short timeouts and no long retry loops, and it writes nothing: no store,
no files, no registry calls beyond reads.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from collectors.check_azure import AzureMlProbe, FabricProbe, SearchProbe
from collectors.check_base import DEFAULT_TIMEOUT, SAMPLE, AreaCheck, Probe, SourceCheck, classify
from collectors.check_databricks import DatabricksProbe
from collectors.check_mlflow import MlflowProbe
from collectors.config import Config, SourceConfig
from collectors.permissions import areas

_PROBES: dict[str, Callable[..., Probe]] = {
    "mlflow": MlflowProbe, "databricks": DatabricksProbe,
    "azureml": AzureMlProbe, "fabric": FabricProbe, "azuresearch": SearchProbe,
}


def check_source(source: SourceConfig, *, timeout: float = DEFAULT_TIMEOUT, sample: int = SAMPLE,
                 credential: Any = None) -> SourceCheck:
    """Probe one source; `credential` overrides the Azure credential (tests)."""
    kwargs = {"credential": credential} if source.kind in ("azureml", "fabric", "azuresearch") else {}
    try:
        probe = _PROBES[source.kind](source, timeout, sample, **kwargs)
    except Exception as e:   # building the client failed (e.g. no Azure credential can be created)
        status, detail = classify(e)
        return SourceCheck(source.name, source.kind, source.platform, {"error": detail},
                           [AreaCheck(a.key, a.label, status, detail=detail) for a in areas(source.kind)])
    return probe.run()


def check_all(config: Config, names: list[str] | None = None, *, timeout: float = DEFAULT_TIMEOUT,
              sample: int = SAMPLE, progress: Callable[[str], None] | None = None,
              credential: Any = None) -> list[SourceCheck]:
    sources = [config.source(n) for n in names] if names else list(config.sources)
    out = []
    for source in sources:
        if progress:
            progress(source.name)
        out.append(check_source(source, timeout=timeout, sample=sample, credential=credential))
    return out
