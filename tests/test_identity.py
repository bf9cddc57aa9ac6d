"""One identity resolver (gates/identity.py) for the review log and the checklist log: canonical
names (NFKC, invisible characters removed, casefolded), `[[review.identities]]` aliases, which
sources are verified, the config's validation — and, through AppTest, the same person recorded
under the same name by the Promotion gates page and the Checklist page."""
from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from collectors.config import ConfigError, parse_config
from gates.identity import Directory, Identity, normalise, resolve

APP = str(Path(__file__).resolve().parent.parent / "app.py")
TIMEOUT = 120
REVIEW = {"local_identity": "reviewer@contoso.com",
          "reviewers": [{"identity": "alice@contoso.com", "models": ["churn*"]}],
          "identities": [{"identity": "alice@contoso.com", "also_known_as": ["alice", "a.smith"]},
                         {"identity": "svc-ci@contoso.com", "also_known_as": ["7f3c0d2e-ci"]}]}


def config(review: dict | None = None, tmp_path: Path | None = None):
    return parse_config({"review": REVIEW if review is None else review},
                        (tmp_path / "governance.toml") if tmp_path else None)


@pytest.mark.parametrize("variant", [
    "alice@contoso.com", "Alice@Contoso.COM", "  alice@contoso.com\t",
    "alice\u200b@contoso.com",          # zero-width space
    "al\u200dice@contoso.com",          # zero-width joiner
    "\u202ealice@contoso.com\u202c",    # bidi override + pop
    "\u2066alice@contoso.com\u2069",    # bidi isolate
    "ali\u00adce@contoso.com",          # soft hyphen
    "alice\ufe0f@contoso.com",          # variation selector
    "\ufeffalice@contoso.com",          # byte order mark
    "ａｌｉｃｅ@ｃｏｎｔｏｓｏ.ｃｏｍ",      # full-width (NFKC)
])
def test_variants_of_one_name_normalise_to_one_form(variant):
    assert normalise(variant) == "alice@contoso.com"


def test_nothing_visible_is_no_name():
    assert normalise("\u200b\u2060\u00ad ") == "" and normalise(None) == ""
    assert normalise("bob smith") == normalise("Bob\u00a0 Smith") == "bob smith"


def test_aliases_map_platform_names_to_the_identity():
    names = Directory(config().review)
    assert names.canonical("alice") == names.canonical("A.Smith") == "alice@contoso.com"
    assert names.canonical("al\u200bice") == "alice@contoso.com"
    assert names.lookup("7F3C0D2E-CI") == "svc-ci@contoso.com"
    assert names.lookup("mallory") is None and names.canonical("Mallory") == "mallory"
    assert names.same_person("alice", "ALICE@contoso.com") and not names.same_person("alice", "bob")
    assert not names.same_person("", "")


def test_resolver_order_and_which_identities_are_verified():
    cfg = config()
    signed_in = {"is_logged_in": True, "email": "Alice@Contoso.com", "name": "Alice Smith"}
    me = resolve(cfg, signed_in, True, env={"WAYMARK_USER": "bob"})
    assert me == Identity("alice@contoso.com", True, "oidc") and me.may_write_registry
    # A signed-in user without email: preferred_username, mapped through the aliases; never the display name.
    assert resolve(cfg, {"is_logged_in": True, "preferred_username": "a.smith", "name": "Bob"}, True).name \
        == "alice@contoso.com"
    # OIDC configured but nobody signed in: nobody, whatever the config or environment claims.
    assert resolve(cfg, {"is_logged_in": False}, True, env={"WAYMARK_USER": "alice"}) is None
    # Without OIDC every identity is an unverified claim: WAYMARK_USER, then local_identity, then the OS user.
    env_me = resolve(cfg, None, False, env={"WAYMARK_USER": "Alice"}, os_user=lambda: "root")
    assert env_me == Identity("alice@contoso.com", False, "env") and not env_me.may_write_registry
    assert resolve(cfg, None, False, env={}, os_user=lambda: "root") == Identity("reviewer@contoso.com", False,
                                                                                  "config")
    assert resolve(config({}), None, False, env={"WAYMARK_USER": "\u200b"}, os_user=lambda: "Root") \
        == Identity("root", False, "os")
    assert resolve(config({}), None, False, env={}, os_user=lambda: None) is None
    # A user dict claiming a login means nothing when OIDC is not configured.
    assert not resolve(cfg, signed_in, False, env={}).verified
    assert "unverified" in env_me.label and "verified, oidc" in me.label


@pytest.mark.parametrize("review, needle", [
    ({"identities": [{"identity": "a@x", "also_known_as": ["al"]}, {"identity": "b@x", "also_known_as": ["AL"]}]},
     "[[review.identities]] #2 (b@x): the name 'AL' is already an identity or alias of 'a@x'"),
    ({"identities": [{"identity": "a@x"}, {"identity": "A@X"}]}, "identity 'A@X' is listed twice"),
    ({"identities": [{"identity": "\u200b\u200c"}]}, "[[review.identities]] #1: field 'identity'"),
    ({"identities": [{"identity": "a@x", "also_known_as": "al"}]}, "field 'also_known_as': must be a list"),
    ({"identities": [{"identity": "a@x", "aliases": ["al"]}]}, "unknown field 'aliases'"),
    ({"local_identity": "\u2066\u2069"}, "[review] field 'local_identity'"),
    ({"reviewers": [{"identity": "\u00ad"}]}, "[[review.reviewers]] #1: field 'identity'"),
    ({"allow_unknown_authors": "yes"}, "'allow_unknown_authors': must be true or false"),
])
def test_bad_identity_config_is_refused_naming_file_and_field(tmp_path, review, needle):
    with pytest.raises(ConfigError) as err:
        config(review, tmp_path)
    assert str(tmp_path / "governance.toml") in str(err.value) and needle in str(err.value), str(err.value)


def test_identity_config_defaults():
    cfg = config({})
    assert cfg.review.identities == () and cfg.review.allow_unknown_authors is False
    assert config().review.identities[0].also_known_as == ("alice", "a.smith")


# -- one person, one name, in both logs (AppTest of the two pages) ----------------------------------
def _config_for_dana(config_path: Path) -> Path:
    from tests.test_gates_page import with_review

    with_review(config_path)
    config_path.write_text(config_path.read_text(encoding="utf-8")
                           + '[[review.reviewers]]\nidentity = "dana@waymark.demo"\nmodels = ["*"]\n'
                             '[[review.identities]]\nidentity = "dana@waymark.demo"\nalso_known_as = ["dana"]\n',
                           encoding="utf-8")
    return config_path


def _as(at: AppTest, user: dict | None) -> AppTest:
    if user is not None:
        at.secrets["auth"] = {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "x" * 32,
                              "client_id": "waymark", "client_secret": "not-used",
                              "server_metadata_url": "https://login.example/.well-known/openid-configuration"}
        at.user = user
    return at


def _save_checklist_item(config_path: Path, user: dict | None) -> None:
    at = _as(AppTest.from_file(APP, default_timeout=TIMEOUT), user)
    at.run()
    at.switch_page("pages/checklist.py").run()
    assert not at.exception, at.exception
    next(s for s in at.selectbox if s.label == "Status").set_value("in_progress")
    next(b for b in at.button if b.label == "Save").click().run()
    assert not at.exception, at.exception
    assert any("Saved" in s.value for s in at.success)


def _reject_on_gates_page(config_path: Path, user: dict | None) -> None:
    at = _as(AppTest.from_file(APP, default_timeout=TIMEOUT), user)
    at.run()
    at.switch_page("pages/promotion_gates.py").run()
    box = at.selectbox[0]
    box.select_index(next(i for i, label in enumerate(box.options) if label.startswith("churn-prediction-gbm v3")))
    at.run()
    at.radio[0].set_value("reject")
    at.text_area[0].set_value("roc_auc below the threshold")
    at.button[0].click().run()
    assert not at.exception, at.exception
    assert any("Recorded review" in s.value for s in at.success), [e.value for e in at.error]


@pytest.mark.parametrize("user, env_user, expected", [
    (None, "Dana", ("dana@waymark.demo", False)),                  # unverified: WAYMARK_USER, mapped by alias
    ({"is_logged_in": True, "email": "Dana@Waymark.Demo"}, None, ("dana@waymark.demo", True)),   # OIDC
])
def test_the_same_person_has_one_name_in_the_review_log_and_the_checklist_log(monkeypatch, demo_copy, user,
                                                                             env_user, expected):
    from checklist.manual import manual_log
    from gates.reviews import read_log
    from store import Store

    config_path = _config_for_dana(demo_copy / "governance.toml")
    monkeypatch.setenv("WAYMARK_CONFIG", str(config_path))
    if env_user:
        monkeypatch.setenv("WAYMARK_USER", env_user)
    else:
        monkeypatch.delenv("WAYMARK_USER", raising=False)
    _save_checklist_item(config_path, user)
    _reject_on_gates_page(config_path, user)
    store = Store(demo_copy / "waymark.duckdb")
    (review,) = read_log(store)
    edits = manual_log(store)
    assert (review.reviewer, review.reviewer_verified) == expected
    assert list(zip(edits["who"], edits["who_verified"])) == [expected]


def test_the_example_config_documents_the_review_section_and_it_parses(tmp_path):
    """Uncommenting the [review] block of governance.example.toml gives a valid config with every key."""
    from collectors.config import load_config

    text = (Path(__file__).resolve().parent.parent / "governance.example.toml").read_text(encoding="utf-8")
    block = text[text.index("# [review]"):]
    lines = [line[2:] for line in block.splitlines() if line.startswith("# ") and not line.startswith("# #")]
    path = tmp_path / "governance.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    review = load_config(path).review
    assert review.local_identity and review.policy_dir and review.allow_unknown_authors is False
    assert [r.identity for r in review.reviewers] == ["alice@contoso.com", "bob@contoso.com"]
    names = Directory(review)
    assert names.canonical("svc-churn-training") == "churn-ci@contoso.com" and names.canonical("ASmith") \
        == "alice@contoso.com"
