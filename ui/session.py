"""The workspace chosen by app.py, handed to pages through session state."""
from __future__ import annotations

import streamlit as st

from ui.context import Workspace, load_workspace

_KEY = "waymark_workspace"


def set_workspace(workspace: Workspace) -> None:
    st.session_state[_KEY] = workspace


def _route_through_app() -> None:
    """A link to a page opened on a freshly started server: Streamlit still runs its v1 multipage
    mode (the `pages/` folder beside app.py), which runs the page script alone — no sign-in, no
    sidebar — until some session has run app.py's st.navigation. Switch v1 off, as st.navigation
    does, and rerun: the same page (its URL path) then runs inside app.py's frame."""
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()


def workspace() -> Workspace:
    ws = st.session_state.get(_KEY)
    if ws is None:  # a page opened without the router (e.g. a direct AppTest of one page)
        _route_through_app()
        ws = load_workspace()
        if ws is None:
            st.error("No workspace: start the app with `streamlit run app.py`.")
            st.stop()
        set_workspace(ws)
    return ws


def store_key() -> tuple[str, int]:
    """(store path, stamp): the arguments every cached loader takes."""
    from ui.loaders import store_stamp

    ws = workspace()
    return str(ws.store_path), store_stamp(ws.store_path)
