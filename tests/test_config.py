"""Bad configs: exit 2, one message naming file, source and field, and nothing written."""
from __future__ import annotations

import pytest

from collectors.config import KINDS
from tests.conftest import run_cli, write_config

GOOD = {"name": "dbx", "kind": "mlflow", "platform": "databricks", "tracking_uri": "sqlite:///x/mlflow.db"}


def cli_main(args, capsys) -> tuple[int, str, str]:
    from collectors.__main__ import main

    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def source_with(**changes):
    s = {**GOOD, **changes}
    return {k: v for k, v in s.items() if v is not None}


# (sources, source label in the message, field, words in the message)
BAD_SOURCES = {
    "unknown kind": ([source_with(kind="mlfloww")], "'dbx'", "kind", "unknown kind 'mlfloww'"),
    "unknown platform": ([source_with(platform="aws")], "'dbx'", "platform", "unknown platform 'aws'"),
    "missing tracking_uri": ([source_with(tracking_uri=None)], "'dbx'", "tracking_uri", "missing"),
    "missing platform": ([source_with(platform=None)], "'dbx'", "platform", "missing"),
    "missing name": ([GOOD, source_with(name=None)], "#2", "name", "missing"),
    "duplicate names": ([GOOD, source_with(platform="fabric")], "'dbx'", "name", "duplicate"),
    "secret key": ([source_with(token="dapi0123456789abcdef0123456789abcdef")], "'dbx'", "token", "secrets"),
    "secret-like key": ([source_with(client_password="hunter2")], "'dbx'", "client_password", "secrets"),
    "unknown field": ([source_with(trackng_uri="x")], "'dbx'", "trackng_uri", "unknown field"),
    "wrong type": ([source_with(lookback_seconds="60")], "'dbx'", "lookback_seconds", "must be int"),
    "bool is not int": ([source_with(lookback_seconds=True)], "'dbx'", "lookback_seconds", "must be int"),
    "negative lookback": ([source_with(lookback_seconds=-1)], "'dbx'", "lookback_seconds", "between 0 and"),
    "name with spaces": ([source_with(name="my source")], "'my source'", "name", "no spaces"),
    "name with markup": ([source_with(name="x[/]")], "'x[/]'", "name", "A-Z a-z 0-9 . _ -"),
    "name with NUL": ([source_with(name="a\x00b")], "'a\\x00b'", "name", "A-Z a-z 0-9 . _ -"),
    "name with ESC": ([source_with(name="a\x1b[31mb")], "'a\\x1b[31mb'", "name", "A-Z a-z 0-9 . _ -"),
    "name with markdown": ([source_with(name="**bold**")], "'**bold**'", "name", "A-Z a-z 0-9 . _ -"),
    "lookback too large": ([source_with(lookback_seconds=10**12)], "'dbx'", "lookback_seconds",
                           "must be between 0 and 2592000"),
    "full_every_hours negative": ([source_with(full_every_hours=-1)], "'dbx'", "full_every_hours",
                                  "must be between 0 and 8784"),
    "mlflow http timeout 0": ([source_with(http_timeout_seconds=0)], "'dbx'", "http_timeout_seconds",
                              "must be between 1 and 600"),
    "mlflow retry timeout huge": ([source_with(retry_timeout_seconds=10**9)], "'dbx'", "retry_timeout_seconds",
                                  "must be between 1 and 3600"),
    "mlflow timeout not int": ([source_with(http_timeout_seconds="30")], "'dbx'", "http_timeout_seconds", "must be int"),
    "lineage depth huge": ([{"name": "uc", "kind": "databricks", "platform": "databricks", "lineage_depth": 10**6}],
                           "'uc'", "lineage_depth", "must be between 0 and 10"),
    "azure metrics window huge": ([{"name": "aml", "kind": "azureml", "platform": "azureml", "subscription_id": "s",
                                    "resource_group": "r", "workspace": "w", "metrics_window_hours": 10**7}],
                                  "'aml'", "metrics_window_hours", "must be between 1 and 2232"),
    "azure timeout 0": ([{"name": "srch", "kind": "azuresearch", "platform": "azureml",
                          "search_endpoint": "https://s.search.windows.net", "http_timeout_seconds": 0}],
                        "'srch'", "http_timeout_seconds", "must be between 1 and 600"),
    "password in tracking_uri": ([source_with(tracking_uri="https://alice:pa55w0rd@mlflow.example.com")], "'dbx'",
                                 "tracking_uri", "contains a password"),
    "token in query": ([source_with(tracking_uri="https://mlflow.example.com/?token=t0k3nvalue")], "'dbx'",
                       "tracking_uri", "secret query parameter 'token'"),
    "access_token in registry_uri": ([source_with(registry_uri="https://r.example.com/x?a=1&access_token=t0k3nvalue")],
                                     "'dbx'", "registry_uri", "secret query parameter 'access_token'"),
    "sas sig in endpoint": ([{"name": "srch", "kind": "azuresearch", "platform": "azureml",
                              "search_endpoint": "https://s.blob.core.windows.net/c?sv=1&sig=S1GN4TUREvalue"}],
                            "'srch'", "search_endpoint", "secret query parameter 'sig'"),
    "oauth code in host": ([{"name": "uc", "kind": "databricks", "platform": "databricks",
                             "host": "https://adb-1.azuredatabricks.net/?code=C0DEvalue"}],
                           "'uc'", "host", "secret query parameter 'code'"),
    "experiments not names": ([source_with(experiments=["a", 1])], "'dbx'", "experiments", "experiment names"),
}


@pytest.mark.parametrize("case", list(BAD_SOURCES))
def test_bad_source_exits_2_naming_file_source_and_field(case, tmp_path, capsys):
    sources, label, field, words = BAD_SOURCES[case]
    cfg = write_config(tmp_path / "governance.toml", sources, store=tmp_path / "data" / "w.duckdb")
    code, out, err = cli_main(["snapshot", "--config", cfg], capsys)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1, err   # one message, not hard-wrapped at 80 columns
    message = err.strip()
    assert str(cfg) in message
    assert f"source {label}" in message and f"field '{field}'" in message and words in message, message
    assert not (tmp_path / "data").exists()   # nothing written, not even the store's directory


def test_every_kind_the_config_accepts_has_a_collector():
    """A kind the config let through but no collector handles would fail mid-snapshot, not at load."""
    from collectors.runner import SOURCE_KINDS

    assert set(KINDS) == set(SOURCE_KINDS)


@pytest.mark.parametrize("secret, changes", [
    ("dapi0123456789abcdef", {"token": "dapi0123456789abcdef0123456789abcdef"}),
    ("pa55w0rd", {"tracking_uri": "https://alice:pa55w0rd@mlflow.example.com"}),
    ("t0k3nvalue", {"tracking_uri": "https://mlflow.example.com/?token=t0k3nvalue"}),
    ("S1GN4TURE", {"registry_uri": "https://mlflow.example.com/?sig=S1GN4TURE"}),
])
def test_secret_values_are_not_echoed(secret, changes, tmp_path, capsys):
    cfg = write_config(tmp_path / "g.toml", [source_with(**changes)])
    code, _, err = cli_main(["snapshot", "--config", cfg], capsys)
    assert code == 2 and "source 'dbx'" in err and secret not in err, err


def test_relative_store_path_outside_the_config_folder_needs_an_absolute_path(tmp_path, capsys):
    from collectors.config import ConfigError, load_config

    cfg = write_config(tmp_path / "cfg" / "g.toml", [GOOD], store="../x.duckdb")
    code, _, err = cli_main(["snapshot", "--config", cfg], capsys)
    message = " ".join(err.split())
    assert code == 2 and str(cfg) in message and "[store] field 'path'" in message and "absolute path" in message
    assert not (tmp_path / "x.duckdb").exists()
    write_config(cfg, [GOOD], store="sub/../data/x.duckdb")      # stays inside: fine
    assert load_config(cfg).store_path.resolve() == (tmp_path / "cfg" / "data" / "x.duckdb")
    write_config(cfg, [GOOD], store=str(tmp_path / "x.duckdb"))   # explicit absolute path: fine
    assert load_config(cfg).store_path == tmp_path / "x.duckdb"
    with pytest.raises(ConfigError):
        load_config(write_config(cfg, [GOOD], store="data/../../x.duckdb"))


def test_integer_bounds_accept_their_limits():
    from collectors.config import INT_BOUNDS, parse_config

    for key in ("lookback_seconds", "full_every_hours"):            # SourceConfig fields
        for value in INT_BOUNDS[key]:
            [s] = parse_config({"sources": [source_with(**{key: value})]}).sources
            assert getattr(s, key) == value and key not in s.options
    for key in ("http_timeout_seconds", "retry_timeout_seconds"):   # options read by the kind's collector
        for value in INT_BOUNDS[key]:
            [s] = parse_config({"sources": [source_with(**{key: value})]}).sources
            assert s.options[key] == value


@pytest.mark.parametrize("text, words", [
    ("[[sources]\nname = 'x'\n", "not valid TOML"),
    ("[store]\npath = ''\n", "field 'path'"),
    ("[store]\npath = 'w.duckdb'\ncolour = 'red'\n", "unknown field(s) ['colour']"),
    ("[stor]\npath = 'w.duckdb'\n", "unknown top-level key(s) ['stor']"),
    ("sources = 'dbx'\n", "array of tables"),
    ("[[sources]]\nname = 'a'\nkind = 'mlflow'\nplatform = 'fabric'\ntracking_uri = 'sqlite:///m.db'\n"
     "[[sources]]\nname = 'b'\nkind = 'nope'\nplatform = 'fabric'\n", "source 'b': field 'kind'"),
    ("[store]\npath = 'w.duckdb'\n", "no [[sources]] configured"),
])
def test_bad_files_exit_2(text, words, tmp_path, capsys):
    cfg = tmp_path / "governance.toml"
    cfg.write_text(text, encoding="utf-8")
    code, out, err = cli_main(["snapshot", "--config", cfg], capsys)
    message = err.strip()
    assert code == 2 and words in message and str(cfg) in message, message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["governance.toml"]   # no store, no dirs


def test_missing_and_unreadable_files(tmp_path, capsys):
    code, _, err = cli_main(["snapshot", "--config", tmp_path / "nope.toml"], capsys)
    assert code == 2 and "nope.toml" in err and "not found" in err
    (tmp_path / "dir.toml").mkdir()
    code, _, err = cli_main(["snapshot", "--config", tmp_path / "dir.toml"], capsys)
    assert code == 2 and "dir.toml" in err and "cannot read" in err
    (tmp_path / "latin1.toml").write_bytes("name = 'caf\xe9'\n".encode("latin-1"))
    code, _, err = cli_main(["snapshot", "--config", tmp_path / "latin1.toml"], capsys)
    assert code == 2 and "latin1.toml" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir.toml", "latin1.toml"]


def test_good_config_parses_with_defaults(tmp_path):
    from collectors.config import load_config

    cfg = write_config(tmp_path / "sub" / "governance.toml",
                       [GOOD, source_with(name="fab", platform="fabric", registry_uri="sqlite:///r.db",
                                          experiments=["a"], git_sha_param="commit")], store=None)
    config = load_config(cfg)
    assert config.store_path == tmp_path / "sub" / "data" / "waymark.duckdb"   # relative to the config file
    dbx, fab = config.sources
    assert (dbx.git_sha_param, dbx.lookback_seconds, dbx.registry_uri, dbx.experiments) == ("git_sha", 3600, None, ())
    assert (fab.git_sha_param, fab.registry_uri, fab.experiments) == ("commit", "sqlite:///r.db", ("a",))
    assert config.source("fab") is fab


def test_real_cli_bad_config_exits_2_and_writes_nothing(tmp_path):
    cfg = write_config(tmp_path / "governance.toml", [source_with(kind="mlflow2")], store=tmp_path / "w.duckdb")
    proc = run_cli("snapshot", "--config", cfg)
    assert proc.returncode == 2 and proc.stdout == ""
    err = " ".join(proc.stderr.split())
    assert "config error" in err and "source 'dbx'" in err and "field 'kind'" in err
    assert not (tmp_path / "w.duckdb").exists()
    bad = tmp_path / "broken.toml"
    bad.write_text("[[sources]\n", encoding="utf-8")
    proc = run_cli("snapshot", "--config", bad)
    assert proc.returncode == 2 and "not valid TOML" in " ".join(proc.stderr.split())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.toml", "governance.toml"]
