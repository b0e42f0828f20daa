# cvatkit: the two commands are `make demo` and `make test`; both set up .venv first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.cvatkit-installed
DEMO_DIR ?= build/demo
# Where `make demo` publishes the model: empty = a local S3 server (SeaweedFS) it starts.
DEMO_STORE ?=
PYTEST_ARGS ?=

.PHONY: setup demo test lab dashboard lock bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[test]"
	@touch $(STAMP)

# The sample task -> TFRecords -> the default model trained on the CPU -> exported, drawn
# and evaluated on the sample's held-out frames, which it also pre-annotates (a CVAT 1.1
# file) -> published to the model store.
demo: setup
	@rm -rf $(DEMO_DIR)
	$(BIN)/cvatkit sample $(DEMO_DIR)/sample
	$(BIN)/cvatkit prepare $(DEMO_DIR)/sample/task.zip $(DEMO_DIR)/dataset --val-split 0
	$(BIN)/cvatkit prepare $(DEMO_DIR)/sample/test.zip $(DEMO_DIR)/test --val-split 1
	$(BIN)/cvatkit train --data $(DEMO_DIR)/dataset --eval-data $(DEMO_DIR)/test \
		--run-dir $(DEMO_DIR)/run --hparams-file demo/sample.hparams
	$(BIN)/cvatkit predict $(DEMO_DIR)/run $(DEMO_DIR)/sample/test.zip --out $(DEMO_DIR)/predictions --draw 12
	$(BIN)/cvatkit evaluate $(DEMO_DIR)/run $(DEMO_DIR)/sample/test.zip --json $(DEMO_DIR)/evaluation.json
	$(BIN)/cvatkit annotate $(DEMO_DIR)/run --source $(DEMO_DIR)/sample/test.zip --clear-existing \
		--out $(DEMO_DIR)/pre-annotations.zip
ifeq ($(DEMO_STORE),)
	$(BIN)/cvatkit s3-serve $(DEMO_DIR)/s3 --detach > $(DEMO_DIR)/s3.env
	. ./$(DEMO_DIR)/s3.env && $(BIN)/cvatkit publish $(DEMO_DIR)/run --store s3://models/demo \
		--namespace demo --create-bucket && \
		$(BIN)/cvatkit list --store s3://models/demo --namespace demo; \
		status=$$?; $(BIN)/cvatkit s3-serve $(DEMO_DIR)/s3 --stop; exit $$status
else
	$(BIN)/cvatkit publish $(DEMO_DIR)/run --store $(DEMO_STORE) --namespace demo
	$(BIN)/cvatkit list --store $(DEMO_STORE) --namespace demo
endif
	@echo "demo: run in $(DEMO_DIR)/run (events.jsonl, checkpoints/, tensorboard/), model in $(DEMO_DIR)/run/export, published to $(or $(DEMO_STORE),the local S3 server in $(DEMO_DIR)/s3)"
	@echo "      pictures in $(DEMO_DIR)/predictions (gallery.png, pictures/), evaluation in $(DEMO_DIR)/evaluation.json, pre-annotations for CVAT in $(DEMO_DIR)/pre-annotations.zip"

test: setup
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

lab: setup
	$(BIN)/jupyter lab --ip=127.0.0.1 --notebook-dir=notebooks

dashboard: setup
	$(BIN)/voila --Voila.ip=127.0.0.1 --no-browser notebooks/dashboard.ipynb

# Refresh the pins after changing pyproject.toml's dependencies.
lock: setup
	$(BIN)/python -m pip freeze --exclude-editable --disable-pip-version-check > constraints.txt

bench: setup
	$(BIN)/python bench/convert.py
	$(BIN)/python bench/train_throughput.py
	$(BIN)/python bench/publish.py

clean:
	rm -rf build .pytest_cache
