.PHONY: demo demo-edge demo-edge-cut demo-edge-restore test ci lint bench bench-quick bench-stampede bench-tools
PY := .venv/bin/python

.venv/installed: requirements.txt requirements-dev.txt
	python3 -m venv .venv && .venv/bin/pip install -q -r requirements-dev.txt && touch $@

demo:
	python3 -m venv .venv && .venv/bin/pip install -q -r requirements.txt && DEBUG=1 $(PY) manage.py demo

# The two-node demo (docs/edge.md, "A two-node demo"): a cloud on :8000 and an edge on :8001.
# While it runs, cut and restore the edge's uplink from another terminal.
demo-edge:
	python3 -m venv .venv && .venv/bin/pip install -q -r requirements.txt && DEBUG=1 $(PY) manage.py demo_edge $(DEMO_ARGS)

demo-edge-cut:
	DEBUG=1 $(PY) manage.py demo_edge cut $(DEMO_ARGS)

demo-edge-restore:
	DEBUG=1 $(PY) manage.py demo_edge restore $(DEMO_ARGS)

test: .venv/installed
	$(PY) -m pytest

lint: .venv/installed
	$(PY) -m ruff check .
	.venv/bin/lint-imports

ci:
	bash .ci/run

# Benchmarks (bench/run.py; README, "Performance"): PostgreSQL and Redis must be running.
# BENCH_ARGS passes options through, e.g. make bench BENCH_ARGS="--only buy --servers uvicorn".
bench: .venv/installed bench-tools
	$(PY) bench/run.py $(BENCH_ARGS)

bench-quick: .venv/installed bench-tools
	$(PY) bench/run.py --quick $(BENCH_ARGS)

# The drop stampede, overload, capacity and the reconnect storm on one process and on two
# behind HAProxy (bench/stampede.py; docs/performance.md, "Drop stampede"). Needs haproxy.
bench-stampede: .venv/installed
	$(PY) bench/stampede.py $(BENCH_ARGS)

# wrk for the framework ceiling (bench/run.py falls back to a Python load generator without it).
bench-tools:
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get install -y -q wrk >/dev/null; } || \
		echo "wrk not installed (apt-get install wrk): the ceiling uses the Python load generator"
