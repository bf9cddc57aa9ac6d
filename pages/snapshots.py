"""Snapshots: the history of collection passes per source, each pass's report, and "snapshot now"."""
import altair as alt
import streamlit as st

from ui import context, loaders
from ui.format import show_table
from ui.safe_text import label, md
from ui.session import store_key, workspace

ws = workspace()
key = store_key()

st.title("Snapshots")
st.caption("Every collection pass, good or failed. A failed pass never replaces the last good one.")

sources = [s.name for s in ws.config.sources]
with st.container(border=True):
    col_source, col_mode, col_button = st.columns([3, 2, 2], vertical_alignment="bottom")
    target = col_source.selectbox("Source to snapshot", ["all sources"] + sources)
    full = col_mode.toggle("Full re-read", help="Re-read everything and record removals, instead of an incremental pass")
    clicked = col_button.button("Snapshot now", type="primary", width="stretch")
if clicked:
    # One source at a time, in config order (a databricks source follows its mlflow source): the
    # bar moves per source and each result shows as soon as that source is done.
    chosen = sources if target == "all sources" else [target]
    bar = st.progress(0.0, text=f"Snapshot of {len(chosen)} source(s)…")
    for i, source in enumerate(chosen):
        bar.progress(i / len(chosen), text=f"Source {i + 1} of {len(chosen)}: {label(source)}…")
        code, output = context.run_snapshot(ws.config_path, source, full)
        outcomes = loaders.snapshot_outcomes(output)
        if outcomes is None:
            # Not the JSON report (a usage or config error): show the CLI's words verbatim.
            st.error(f"{md(source)}: the snapshot command printed:")
            st.code(output, language=None)
            continue
        for o in outcomes:
            if o["ok"]:
                st.success(f"**{md(o['source'])}**: snapshot {o['snapshot_id']} ({md(o['mode'])}, "
                           f"{o['seconds']:.1f} s) — {o['added']:,} added, {o['changed']:,} changed, "
                           f"{o['removed']:,} removed, {len(o['warnings'])} warning(s)",
                           icon=":material/check_circle:")
            else:
                st.error(f"**{md(o['source'])}** failed: {md('; '.join(o['errors'][:2]))}", icon=":material/error:")
            if o["warnings"]:
                with st.expander(f"Warnings of {label(o['source'])} ({len(o['warnings'])})"):
                    for warning in o["warnings"]:
                        st.text(warning)
    bar.progress(1.0, text=f"Done: {len(chosen)} source(s).")
    loaders.clear()
    key = store_key()

history = loaders.snapshot_history(*key, None)
if history.empty:
    st.info("No snapshot yet.")
    st.stop()

# A pasted link (`?source=…&snapshot=…`) chooses the source and the pass once per session; the
# widgets then write the URL.
params = st.query_params
source_options = ["all"] + sorted(history["source"].unique())
wanted_pass = int(params["snapshot"]) if params.get("snapshot", "").isdigit() else None
if "snap_source" not in st.session_state and params.get("source") in source_options:
    st.session_state["snap_source"] = params["source"]
if "snap_pass" not in st.session_state and wanted_pass in set(history["snapshot_id"].tolist()):
    st.session_state["snap_pass"] = wanted_pass
    if st.session_state.get("snap_source", "all") not in ("all", None) and wanted_pass not in set(
            history.loc[history["source"] == st.session_state["snap_source"], "snapshot_id"].tolist()):
        st.session_state["snap_source"] = "all"     # the linked pass wins over a mismatching source
# Segmented-control options render Markdown (selectbox options do not): source names escaped.
filter_source = st.segmented_control("Show", source_options, format_func=label, key="snap_source",
                                     default=None if "snap_source" in st.session_state else "all")
shown = history if filter_source in (None, "all") else history[history["source"] == filter_source]

st.altair_chart(
    alt.Chart(shown).mark_circle(size=120).encode(
        x=alt.X("finished_at:T", title="finished", axis=alt.Axis(format="%d %b %H:%M", labelOverlap=True)),
        y=alt.Y("source:N", title=None),
        color=alt.Color("status:N", scale=alt.Scale(domain=["ok", "failed"], range=["#1f6f5c", "#c0392b"])),
        tooltip=["snapshot_id", "source", "status", "mode", "finished_at", "added", "changed", "removed"],
    ).properties(height=60 + 40 * shown["source"].nunique()),
    width="stretch")

show_table(
    shown, ["source", "status", "started_at", "added", "changed", "removed", "warnings_n", "errors_n", "mode",
            "seconds", "snapshot_id", "platform"],
    {"snapshot_id": st.column_config.NumberColumn("Snapshot", format="%d"),
     "started_at": st.column_config.DatetimeColumn("Started", format="YYYY-MM-DD HH:mm:ss"),
     "seconds": st.column_config.NumberColumn("Seconds", format="%.1f"),
     "warnings_n": "Warnings", "errors_n": "Errors"},
    status=("status", "mode"), empty="No pass of this source.")

st.subheader("Report of one pass")
pass_ids = shown["snapshot_id"].tolist()
if st.session_state.get("snap_pass") not in (None, *pass_ids):
    del st.session_state["snap_pass"]       # a pass the source filter no longer shows
chosen = st.selectbox("Snapshot", pass_ids, key="snap_pass",
                      format_func=lambda sid: f"#{sid} · " + " · ".join(
                          str(v) for v in shown.loc[shown["snapshot_id"] == sid, ["source", "status", "mode"]].iloc[0]))
params.from_dict({k: v for k, v in (("source", None if filter_source in (None, "all") else filter_source),
                                    ("snapshot", None if chosen is None else str(chosen))) if v is not None})
report = loaders.snapshot_report(shown, chosen)
if report["errors"]:
    for error in report["errors"]:
        st.error(md(error))
show_table(report["counts"], config={"entity": "Entity"}, empty="This pass recorded no counts.")
if report["warnings"]:
    with st.expander(f"{len(report['warnings'])} warning(s)"):
        for warning in report["warnings"]:
            st.text(warning)
elif not report["errors"]:
    st.caption("No warnings.")

st.subheader("Last full pass")
st.caption("Incremental passes cannot see a tag changed on a finished run or a deleted run restored; a full "
           "pass does. A pass is full when the last full one is older than the source's `full_every_hours`.")
st.dataframe(
    loaders.last_full_passes(*key, tuple(sources)), hide_index=True, width="stretch",
    column_config={
        "source": "Source", "ago": "Age", "full_reason": "Why full",
        "last_full_at": st.column_config.DatetimeColumn("Last full pass", format="YYYY-MM-DD HH:mm:ss"),
        "snapshot_id": st.column_config.NumberColumn("Snapshot", format="%d"),
    })
