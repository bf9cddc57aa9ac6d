"""The documented example config stays valid and documents every key the loader accepts."""
from pathlib import Path

from collectors.config import _SOURCE_FIELDS, load_config

EXAMPLE = Path(__file__).resolve().parent.parent / "governance.example.toml"


def test_example_config_loads():
    config = load_config(EXAMPLE)
    assert [s.name for s in config.sources] == ["dbx-prod", "fabric-ds"]
    assert config.sources[1].token_scope.endswith("/.default")


def test_example_config_documents_every_source_key():
    text = EXAMPLE.read_text(encoding="utf-8")
    undocumented = [key for key in _SOURCE_FIELDS if f"{key} =" not in text and f"{key}  " not in text]
    assert undocumented == []
