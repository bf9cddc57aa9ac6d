"""Endpoint health for the page: the `health` package's answers, cached per store state."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from collectors.config import Slo
from health.series import SERIES_COLUMNS, series_for
from health.status import AMBER, COLUMNS, ERROR, GREEN, GREY, RED, slo_rows  # noqa: F401 (the page's names)
from health.status import health_frame, health_rows
from store import Store, StoreMissing
from ui.shared_reader import SharedReader

TTL = 300


@st.cache_data(ttl=TTL, show_spinner=False)
def endpoint_health(store_path: str, stamp: int, slos: tuple[Slo, ...]) -> pd.DataFrame:
    try:
        with SharedReader(Store(store_path)).open() as store:    # a dozen reads, one connection
            return health_frame(health_rows(store, slos))
    except StoreMissing:
        return pd.DataFrame(columns=COLUMNS)


@st.cache_data(ttl=TTL, show_spinner=False)
def endpoint_series(store_path: str, stamp: int, source: str, endpoint: str, hours: float) -> pd.DataFrame:
    try:
        with SharedReader(Store(store_path)).open() as store:
            return series_for(store, source, endpoint, hours)
    except StoreMissing:
        return pd.DataFrame(columns=SERIES_COLUMNS)
