# One command sets up and runs the main job (make run), one sets up and runs the tests (make test).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEBIAN_DATA := /usr/share/datasets/fashion-mnist

.PHONY: setup data run test lint bench clean

$(BIN)/archlab: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@

setup: $(BIN)/archlab

# Fashion-MNIST from Debian's package where apt-get can install it (no internet needed);
# elsewhere archlab falls back to torchvision's download or --data-dir.
data:
	@if [ ! -d $(DEBIAN_DATA) ] && command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist; \
	elif [ ! -d $(DEBIAN_DATA) ]; then \
		echo "note: $(DEBIAN_DATA) not installed; archlab will download Fashion-MNIST or use --data-dir"; \
	fi

run: setup data
	$(BIN)/archlab shapes cnn
	$(BIN)/archlab params dnn cnn

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: setup data lint
	$(BIN)/python -m pytest

bench: setup data
	$(BIN)/python benchmarks/shapes_startup.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
