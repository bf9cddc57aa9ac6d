# The two commands a newcomer needs: `make demo` (run the app on the embedded demo workspace)
# and `make test` (install what the tests need and run them). Both set up .venv on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test setup browser postgres bench clean-demo

$(STAMP): requirements.txt requirements-dev.txt
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/streamlit run app.py

# Chromium for the browser tests comes from Debian's packages (Playwright's own download is not reachable).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "browser tests need Debian's chromium: sudo apt-get install chromium"; fi; }

# PostgreSQL for the DuckLake store's tests (its catalog): Debian's server binaries; the tests run
# initdb into a temporary folder and start and stop it themselves on a port of 127.0.0.1.
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; \
	  else echo "the DuckLake tests need Debian's postgresql: sudo apt-get install postgresql"; fi; }

# Two workers, one test file each at a time (module fixtures stay in one process): 8 min instead of 15.
test: $(STAMP) browser postgres
	$(BIN)/python -m pytest -n 2 --dist loadfile

bench: $(STAMP)
	$(BIN)/python bench/collect_mlflow.py

clean-demo:
	rm -rf data/demo
