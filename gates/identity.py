"""Who is acting: one resolver for every log that records a person (review log, checklist log).

An identity is *verified* only when it comes from the app's OIDC sign-in (`st.login`, e.g. Entra
ID, read as `st.user`). Anything else — `WAYMARK_USER`, `[review] local_identity`, the OS user —
is a claim nobody checked: it is recorded as unverified and never changes a registry.

Names are compared and recorded in one canonical form (`normalise`, collectors/config_review.py:
the config validates names with it too), so `Alice@Contoso.com`, a variant with a zero-width space
and a full-width `ａｌｉｃｅ` are the same person. `[[review.identities]]` maps the names a person
has on the platforms (`also_known_as`: the MLflow user of their runs, a short login) to the one
identity recorded in the logs.
"""
from __future__ import annotations

import getpass
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from collectors.config_review import normalise

if TYPE_CHECKING:
    from collectors.config import Config
    from collectors.config_review import ReviewConfig

# How a name came to us; only "oidc" is verified.
OIDC, ENV, CONFIG, OS_USER = "oidc", "env", "config", "os"
SOURCE_LABELS = {OIDC: "signed in with OIDC", ENV: "WAYMARK_USER", CONFIG: "[review] local_identity",
                 OS_USER: "operating-system user", "local": "local identity"}


@dataclass(frozen=True)
class Identity:
    """A person as recorded: `name` is canonical (see `Directory.canonical`)."""
    name: str
    verified: bool
    source: str          # oidc | env | config | os ("local" in entries written before these sources)

    @property
    def label(self) -> str:
        if self.verified:
            return f"{self.name} (verified, {self.source})"
        return f"{self.name} (unverified: {SOURCE_LABELS.get(self.source, self.source)})"

    @property
    def may_write_registry(self) -> bool:
        """Registry writes need a verified (OIDC) identity: a typed-in name can never move an alias."""
        return self.verified and self.source == OIDC


class Directory:
    """The people the config knows: `[[review.identities]]` (identity + also_known_as) and the
    `[[review.reviewers]]` identities. `canonical` maps any of their names to the identity."""

    def __init__(self, review: "ReviewConfig | None" = None):
        self._names: dict[str, str] = {}
        if review is None:
            return
        for known in review.identities:
            canonical = normalise(known.identity)
            for name in (known.identity, *known.also_known_as):
                self._names[normalise(name)] = canonical
        for reviewer in review.reviewers:
            key = normalise(reviewer.identity)
            self._names.setdefault(key, key)

    def lookup(self, name: str | None) -> str | None:
        """The known identity behind this name, or None when the config does not know it."""
        return self._names.get(normalise(name)) if normalise(name) else None

    def canonical(self, name: str | None) -> str:
        """The name to record and compare: the known identity, else the normalised name."""
        key = normalise(name)
        return self._names.get(key, key)

    def same_person(self, a: str | None, b: str | None) -> bool:
        ca, cb = self.canonical(a), self.canonical(b)
        return bool(ca) and ca == cb


def directory(config: "Config | None") -> Directory:
    return Directory(config.review if config is not None else None)


def _os_user() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return None


def oidc_name(user: Mapping[str, Any] | None) -> str | None:
    """The stable name of a signed-in OIDC user: email, else preferred_username, else sub.
    (The display `name` is not unique, so it never identifies anyone.)"""
    if not user or not user.get("is_logged_in"):
        return None
    for claim in ("email", "preferred_username", "upn", "sub"):
        value = user.get(claim)
        if isinstance(value, str) and normalise(value):
            return value
    return None


def resolve(config: "Config | None", user: Mapping[str, Any] | None, auth_configured: bool,
            env: Mapping[str, str] | None = None, os_user=_os_user) -> Identity | None:
    """The one answer to "who is acting", for the gates and the checklist alike.

    With OIDC configured: the signed-in user (verified), or None when nobody is signed in.
    Without it, unverified, first found of: WAYMARK_USER, `[review] local_identity`, the OS user.
    `user` is `st.user` as a dict; `env` and `os_user` are injectable for tests.
    """
    names = directory(config)
    if auth_configured:
        claimed = oidc_name(user)
        return Identity(names.canonical(claimed), True, OIDC) if claimed else None
    env = os.environ if env is None else env
    local = config.review.local_identity if config is not None else None
    for claimed, source in ((env.get("WAYMARK_USER"), ENV), (local, CONFIG), (os_user(), OS_USER)):
        if normalise(claimed):
            return Identity(names.canonical(claimed), False, source)
    return None


def canonical_identity(config: "Config | None", identity: Identity) -> Identity:
    """The same identity with its name in canonical form (for identities built outside `resolve`)."""
    name = directory(config).canonical(identity.name)
    return identity if name == identity.name else Identity(name, identity.verified, identity.source)
