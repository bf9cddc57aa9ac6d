"""Who is using the app: `st.user` (OIDC sign-in, `[auth]` in .streamlit/secrets.toml) handed to
the one resolver in gates/identity.py, for every page that records a person (Promotion gates,
Checklist). Tests drive it through AppTest's `secrets` and `user`."""
from __future__ import annotations

import streamlit as st

from collectors.config import Config
from gates.identity import Identity, resolve


def auth_configured() -> bool:
    """OIDC sign-in is configured when secrets.toml has an [auth] table."""
    try:
        return "auth" in st.secrets
    except FileNotFoundError:
        return False


def current_identity(config: Config) -> Identity | None:
    """The signed-in user (verified) with OIDC configured, else an unverified local identity
    (WAYMARK_USER, `[review] local_identity`, the OS user); None when signed out."""
    configured = auth_configured()
    user = st.user.to_dict() if configured else None
    return resolve(config, user, configured)
