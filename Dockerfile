# Waymark dashboard (and collector) image. Slim base, runtime packages only, non-root.
# Build:  docker build -t waymark .        (or: podman build -t waymark .)
# Run:    docker run -p 8501:8501 -v $PWD/governance.toml:/config/governance.toml:ro waymark
# The same image runs the collector:  docker run … waymark python -m collectors snapshot --config /config/governance.toml
ARG PYTHON_IMAGE=python:3.11-slim
FROM ${PYTHON_IMAGE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    WAYMARK_CONFIG=/config/governance.toml \
    STREAMLIT_SERVER_PORT=8501 \
    STREAMLIT_SERVER_ADDRESS=0.0.0.0 \
    STREAMLIT_BROWSER_GATHER_USAGE_STATS=false

WORKDIR /app
# Dependencies first, so a code change does not reinstall them.
COPY requirements.txt ./
RUN pip install -r requirements.txt

COPY app.py ./
COPY .streamlit/config.toml .streamlit/config.toml
COPY pages/ pages/
COPY ui/ ui/
COPY collectors/ collectors/
COPY store/ store/
COPY lineage/ lineage/
COPY gates/ gates/
COPY checklist/ checklist/
COPY health/ health/
COPY demo/ demo/
COPY data/plan/ data/plan/
COPY deploy/ deploy/

# Non-root; the store and the app's generated files live under /app/data (mount a volume there
# for the single-user DuckDB store), the config is mounted read-only under /config.
RUN useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin waymark \
    && mkdir -p /app/data /app/deploy/data /config \
    && chown -R waymark /app/data /app/deploy/data
USER 10001

EXPOSE 8501
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8501/_stcore/health', timeout=4).status == 200 else 1)"

CMD ["streamlit", "run", "app.py"]
