"""The registry a source talks to is answered once, on SourceConfig."""
import pytest

from collectors.config import SourceConfig


@pytest.mark.parametrize("tracking, registry, expected", [
    ("databricks", None, "databricks-uc"),
    ("databricks://prof", None, "databricks-uc"),
    ("sqlite:///t.db", None, "sqlite:///t.db"),
    ("databricks", "sqlite:///r.db", "sqlite:///r.db"),
    (None, None, ""),
])
def test_effective_registry_uri(tracking, registry, expected):
    src = SourceConfig(name="s", kind="mlflow", platform="databricks", tracking_uri=tracking, registry_uri=registry)
    assert src.effective_registry_uri == expected
