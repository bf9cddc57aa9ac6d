"""Waymark: the router and frame. Picks the workspace (config or embedded demo), draws the sidebar,
and hands over to the page the user chose. Pages only lay out what `ui.loaders` returns."""
import duckdb
import streamlit as st

from collectors.config import ConfigError
from store import StoreError
from store import db
from ui import context, loaders
from ui.safe_text import label, md
from ui.icon import page_icon
from ui.session import set_workspace

# The icon is drawn locally: a `:material/…:` page icon makes the browser fetch it from Google.
st.set_page_config(page_title="Waymark", page_icon=page_icon(), layout="wide")


def require_login() -> None:
    """With OIDC configured in secrets.toml ([auth]), every page needs a signed-in user."""
    try:
        auth_configured = "auth" in st.secrets
    except FileNotFoundError:
        auth_configured = False
    if auth_configured and not st.user.is_logged_in:
        st.title("Waymark")
        st.write("Sign in to see the governance dashboard.")
        st.button("Sign in", on_click=st.login, type="primary")
        st.stop()


def open_workspace() -> context.Workspace:
    try:
        workspace = context.load_workspace()
    except ConfigError as e:
        st.error(f"Configuration problem — nothing was read or written.\n\n{md(e)}", icon=":material/warning:")
        st.stop()
    except StoreError as e:
        st.error(f"The store cannot be opened.\n\n{md(e)}", icon=":material/warning:")
        st.stop()
    if workspace is None:
        # No page can open before the demo exists: hide the page list the pages/ folder would show.
        st.html("<style>[data-testid='stSidebarNav']{display:none}</style>")
        with st.status("Building the demo workspace (first start only)…", expanded=True) as status:
            bar = st.progress(1, text="starting the demo build…")
            try:
                build_with_moving_bar(bar)
            except RuntimeError as e:
                status.update(label="Demo build failed", state="error")
                st.code(str(e))
                st.stop()
            status.update(label="Demo workspace ready", state="complete")
        workspace = context.load_workspace()
        assert workspace is not None
    return workspace


def build_with_moving_bar(bar) -> None:
    """The build reports a few milestones, seconds apart; between them the bar creeps on by time
    (never past the next milestone), so it moves from the first second. The build runs in a
    thread; only this (the script) thread touches the page."""
    import threading
    import time

    reported = {"pct": 1, "msg": "starting the demo build…", "error": None}

    def run() -> None:
        try:
            context.build_demo(lambda pct, msg: reported.update(pct=pct, msg=msg))
        except RuntimeError as e:
            reported["error"] = e

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    started, last_pct, shown = time.monotonic(), 0, 1.0
    while worker.is_alive():
        worker.join(timeout=0.5)
        if reported["pct"] != last_pct:
            last_pct = reported["pct"]
            shown = max(shown, float(last_pct))
        else:
            # Half a percent per second, up to just under the next ten.
            shown = min(shown + 0.25, float((last_pct // 10 + 1) * 10 - 1))
        elapsed = int(time.monotonic() - started)
        bar.progress(min(int(shown), 99), text=f"{reported['msg']} ({elapsed} s)")
    if reported["error"] is not None:
        raise reported["error"]
    bar.progress(100, text="done")


def sidebar(workspace: context.Workspace) -> None:
    with st.sidebar:
        st.caption("Demo workspace" if workspace.is_demo else f"Config: {md(workspace.config_path)}")
        status = loaders.source_status(str(workspace.store_path), loaders.store_stamp(workspace.store_path))
        if status.empty:
            st.info("No snapshot yet. Open **Snapshots** and take one.")
            return
        for row in status.itertuples():
            # Source names come from the store, which may hold sources no longer in (or never
            # validated by) this config: escaped like any collected text. Ages are ours.
            dot = {"ok": ":green[●]", "failing": ":red[●]"}.get(row.state, ":gray[●]")
            st.markdown(f"{dot} **{label(row.source, 80)}** · {label(row.platform, 40)}  \n"
                        f"last good: {row.age}")


def show_store_busy() -> None:
    """Readers retry while a collector writes; past the retry budget, say so plainly."""
    st.warning(f"The store is busy: a collector has held it for more than {db.READ_RETRY_SECONDS:g} s; "
               "try again in a moment.", icon=":material/hourglass_top:")
    st.stop()


require_login()
try:
    workspace = open_workspace()
    set_workspace(workspace)
    sidebar(workspace)
except duckdb.Error as e:
    if not db.is_lock_conflict(e):
        raise
    show_store_busy()
page = st.navigation({
    "Governance": [
        st.Page("pages/overview.py", title="Overview", icon=":material/explore:", default=True),
    ],
    "Migration": [
        st.Page("pages/checklist.py", title="Checklist", icon=":material/checklist:"),
    ],
    "Audit": [
        st.Page("pages/audit_trace.py", title="Audit trace", icon=":material/fact_check:"),
        st.Page("pages/lineage_explorer.py", title="Lineage explorer", icon=":material/account_tree:"),
    ],
    "Review": [
        st.Page("pages/promotion_gates.py", title="Promotion gates", icon=":material/rule:"),
    ],
    "Operations": [
        st.Page("pages/snapshots.py", title="Snapshots", icon=":material/history:"),
        st.Page("pages/endpoint_health.py", title="Endpoint health", icon=":material/monitor_heart:"),
    ],
})
try:
    page.run()
except duckdb.Error as e:
    if not db.is_lock_conflict(e):
        raise
    show_store_busy()
