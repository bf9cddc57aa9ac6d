"""The [review] table's records, and the canonical form of a person's name that the config
validates them with and every log records (gates/identity.py).

Canonical form: Unicode NFKC, invisible characters removed (format/control characters and every
Default_Ignorable code point: zero-width spaces and joiners, bidi controls, soft hyphen, variation
selectors, fillers, tags), whitespace collapsed, casefolded — so `Alice@Contoso.com`, a variant
with a zero-width space or a right-to-left mark, and a full-width `ａｌｉｃｅ` are one person.
"""
from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from pathlib import Path

# Unicode's Default_Ignorable_Code_Point (DerivedCoreProperties.txt): rendered as nothing.
_IGNORABLE = ((0x00AD, 0x00AD), (0x034F, 0x034F), (0x061C, 0x061C), (0x115F, 0x1160), (0x17B4, 0x17B5),
              (0x180B, 0x180F), (0x200B, 0x200F), (0x202A, 0x202E), (0x2060, 0x206F), (0x3164, 0x3164),
              (0xFE00, 0xFE0F), (0xFEFF, 0xFEFF), (0xFFA0, 0xFFA0), (0xFFF0, 0xFFF8), (0x1BCA0, 0x1BCA3),
              (0x1D173, 0x1D17A), (0xE0000, 0xE0FFF))


def _visible(ch: str) -> bool:
    cp = ord(ch)
    if unicodedata.category(ch) in ("Cf", "Cc", "Cs", "Co", "Cn") and not ch.isspace():
        return False
    return not any(lo <= cp <= hi for lo, hi in _IGNORABLE)


def normalise(name: str | None) -> str:
    """The canonical form of a person's name ('' when nothing visible is left)."""
    if not name:
        return ""
    text = unicodedata.normalize("NFKC", str(name))
    text = "".join(ch for ch in text if _visible(ch))
    text = unicodedata.normalize("NFKC", text.casefold())
    return " ".join(text.split())


@dataclass(frozen=True)
class Reviewer:
    """Who may review which models (`models`: fnmatch globs over registered model names)."""
    identity: str
    models: tuple[str, ...] = ("*",)


@dataclass(frozen=True)
class KnownIdentity:
    """One person (`identity`, as recorded in the logs) and the names they have on the platforms."""
    identity: str
    also_known_as: tuple[str, ...] = ()


@dataclass(frozen=True)
class ReviewConfig:
    """The optional [review] table: reviewer roles, identities, the local identity, gate policies."""
    # Used when no OIDC login ([auth] in secrets.toml) is configured; shown as unverified.
    local_identity: str | None = None
    reviewers: tuple[Reviewer, ...] = ()
    # Folder of per-model policy files (<model name>.toml, default.toml); None: gates/default_policy.toml.
    policy_dir: Path | None = None
    # [[review.identities]]: platform user names (a run's MLflow user…) mapped to reviewer identities.
    identities: tuple[KnownIdentity, ...] = ()
    # A run whose author matches no known identity blocks its approval unless this is true.
    allow_unknown_authors: bool = False
