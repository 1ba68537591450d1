# One command sets up and runs the main job (make run), one sets up and runs the tests (make test).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEBIAN_DATA := /usr/share/datasets/fashion-mnist

.PHONY: setup data graphviz run test lint docs browser docs-check bench clean

# one environment for everything: the package, its tests, and the docs tools
$(BIN)/archlab: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -e '.[test,docs,umap]'
	# the attacks' outside reference in the tests; --no-deps: its pin requests~=2.25 clashes
	# with Sphinx's requests (its real needs, torch and scipy, come with the line above)
	$(BIN)/python -m pip install -q --no-deps 'torchattacks>=3.5'
	# umap-learn's numba functions compiled once now (~60 s), not in the first `map --method umap`
	$(BIN)/python -c "from archlab.analysis.embedding import compile_umap; compile_umap()"
	touch $@

setup: $(BIN)/archlab

# apt-get as root, or through sudo where it needs no password; empty where neither works
APT := $(shell if [ "$$(id -u)" = 0 ]; then echo apt-get; elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then echo "sudo apt-get"; fi)

# Fashion-MNIST from Debian's package where apt-get can install it (no internet needed);
# elsewhere archlab falls back to torchvision's download or --data-dir.
data:
	@if [ ! -d $(DEBIAN_DATA) ] && command -v apt-get >/dev/null 2>&1 && [ -n "$(APT)" ]; then \
		$(APT) update -qq && $(APT) install -y -qq dataset-fashion-mnist; \
	elif [ ! -d $(DEBIAN_DATA) ]; then \
		echo "note: $(DEBIAN_DATA) not installed; archlab will download Fashion-MNIST or use --data-dir"; \
	fi

# Graphviz's dot, which `archlab draw` needs for models that branch, where apt-get can
# install it; elsewhere archlab draw says how to install it when it needs it.
graphviz:
	@if ! command -v dot >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ -n "$(APT)" ]; then \
		$(APT) update -qq && $(APT) install -y -qq graphviz; \
	elif ! command -v dot >/dev/null 2>&1; then \
		echo "note: Graphviz's dot not installed; archlab draw needs it for models that branch"; \
	fi

run: setup data graphviz
	$(BIN)/archlab shapes cnn
	$(BIN)/archlab draw cnn
	$(BIN)/archlab params dnn cnn
	$(BIN)/archlab data
	$(BIN)/archlab train
	$(BIN)/archlab explain --index 42
	$(BIN)/archlab compare

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	@if command -v node >/dev/null 2>&1; then for f in src/archlab/explorer/static/*.js tests/js/*.js; do node --check "$$f" || exit 1; done; else echo "note: no node here; skipping the explorer's JavaScript check (apt-get install nodejs)"; fi

# browser first: the explorer's browser test runs in pytest where Chromium is installed
test: setup data graphviz lint browser
	$(BIN)/python -m pytest
	$(MAKE) docs docs-check

# The site, built by running examples/ on the real data; warnings are errors.
docs: setup data graphviz
	$(BIN)/sphinx-build -W --keep-going -q -b html docs docs/_build/html
	@echo "open docs/_build/html/index.html"

# Debian's Chromium and ChromeDriver for the browser check, where apt-get can install them.
browser:
	@if ! command -v chromedriver >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ -n "$(APT)" ]; then \
		$(APT) update -qq && $(APT) install -y -qq chromium chromium-driver; \
	fi

# Load every page in headless Chromium with no network but the site: nothing loaded from
# another host, no failed request, no raw TeX, no empty page, images loaded, no broken
# links; screenshots under docs/_build/screenshots.
docs-check: browser
	@if command -v chromedriver >/dev/null 2>&1; then \
		$(BIN)/python docs/check_site.py; \
	else \
		echo "note: no chromium/chromedriver here; skipping the browser check of the docs"; \
	fi

bench: setup data
	$(BIN)/python benchmarks/shapes_startup.py
	$(BIN)/python benchmarks/startup.py
	$(BIN)/python benchmarks/train_vs_lecture.py
	$(BIN)/python benchmarks/explain_speed.py
	$(BIN)/python benchmarks/explore.py --zoo

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache docs/_build docs/auto_examples docs/sg_execution_times.rst docs/cli.rst docs/api.rst
