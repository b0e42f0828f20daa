# cvatkit: the two commands are `make demo` and `make test`; both set up .venv first.
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.cvatkit-installed
DEMO_DIR ?= build/demo
# Where `make demo` publishes the model: empty = a local S3 server (SeaweedFS) it starts.
DEMO_STORE ?=
PYTEST_ARGS ?=

.PHONY: setup demo test test-fast docs lab dashboard lock bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[test,cluster,docs]"
	@touch $(STAMP)

# The sample task -> TFRecords -> SSD MobileNetV2 0.5 (ssd-mobilenet-v2-small, the
# catalog's model for small tasks) trained on the CPU -> exported, drawn
# and evaluated on the sample's held-out frames, which it also pre-annotates (a CVAT 1.1
# file) -> published to the model store. The two notebooks run headless under papermill.
# The demo trains from random weights (weights none): its shapes are not COCO's objects,
# and it must run offline.
PAPERMILL := $(BIN)/papermill --log-output --no-progress-bar -k python3
TRAIN_NB = $(PAPERMILL) notebooks/train.ipynb $(DEMO_DIR)/notebooks/train.ipynb \
	-p interactive False -p workdir $(DEMO_DIR) -p run_name run \
	-p model ssd-mobilenet-v2-small -p weights none \
	-p hparams_file demo/sample.hparams -p store_namespace demo -p create_bucket True
demo: setup
	@rm -rf $(DEMO_DIR)
	@mkdir -p $(DEMO_DIR)/notebooks
ifeq ($(DEMO_STORE),)
	$(BIN)/cvatkit s3-serve $(DEMO_DIR)/s3 --detach > $(DEMO_DIR)/s3.env
	. ./$(DEMO_DIR)/s3.env && $(TRAIN_NB) -p store s3://models/demo && \
		$(BIN)/cvatkit list --store s3://models/demo --store-namespace demo | tee $(DEMO_DIR)/models.txt; \
		status=$$?; $(BIN)/cvatkit s3-serve $(DEMO_DIR)/s3 --stop; exit $$status
else
	$(TRAIN_NB) -p store $(DEMO_STORE)
	$(BIN)/cvatkit list --store $(DEMO_STORE) --store-namespace demo | tee $(DEMO_DIR)/models.txt
endif
	$(PAPERMILL) notebooks/inference.ipynb $(DEMO_DIR)/notebooks/inference.ipynb \
		-p interactive False -p model $(DEMO_DIR)/runs/run \
		-p frames $(DEMO_DIR)/sample/test.zip -p out $(DEMO_DIR)/predictions
	$(BIN)/cvatkit annotate $(DEMO_DIR)/runs/run --source $(DEMO_DIR)/sample/test.zip \
		--clear-existing --out $(DEMO_DIR)/pre-annotations.zip
	@echo
	@echo "demo: executed notebooks in $(DEMO_DIR)/notebooks/ (train.ipynb, inference.ipynb)"
	@echo "      run in $(DEMO_DIR)/runs/run (events.jsonl, checkpoints/, tensorboard/), model in $(DEMO_DIR)/runs/run/export"
	@echo "      pictures in $(DEMO_DIR)/predictions/ (gallery.png, pictures/), pre-annotations for CVAT in $(DEMO_DIR)/pre-annotations.zip"
	@echo "      model published as $$(head -n 1 $(DEMO_DIR)/models.txt)"
ifeq ($(DEMO_STORE),)
	@echo "      (on the local S3 server in $(DEMO_DIR)/s3, stopped now; to reach it again:"
	@echo "       $(BIN)/cvatkit s3-serve $(DEMO_DIR)/s3 --detach > $(DEMO_DIR)/s3.env && . ./$(DEMO_DIR)/s3.env)"
endif

# The documentation site (docs/, mkdocs.yml) in build/site; a warning (a broken link or
# anchor) fails it.
docs: setup
	$(BIN)/mkdocs build --strict --quiet

test: setup
	$(BIN)/python -m pytest -q -rs $(PYTEST_ARGS)

# The edit loop: every test but the slow ones (those that train a model, or start a
# notebook kernel, a browser or a server process: `pytest -m slow` lists them).
test-fast: setup
	$(BIN)/python -m pytest -q -m "not slow" $(PYTEST_ARGS)

lab: setup
	$(BIN)/jupyter lab --ip=127.0.0.1 --notebook-dir=notebooks

dashboard: setup
	CVATKIT_WORKDIR=$(CURDIR)/build/dashboard $(BIN)/voila --Voila.ip=127.0.0.1 --no-browser notebooks/dashboard.ipynb

# Refresh the pins after changing pyproject.toml's dependencies.
lock: setup
	$(BIN)/python -m pip freeze --exclude-editable --disable-pip-version-check > constraints.txt

bench: setup
	$(BIN)/python bench/convert.py
	$(BIN)/python bench/train_throughput.py
	$(BIN)/python bench/publish.py
	$(BIN)/python bench/list_store.py
	$(BIN)/python bench/predict.py
	$(BIN)/python bench/ui_overhead.py
	$(BIN)/python bench/transfer.py

clean:
	rm -rf build .pytest_cache
