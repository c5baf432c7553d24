.PHONY: demo test ci lint
PY := .venv/bin/python

.venv/installed: requirements.txt requirements-dev.txt
	python3 -m venv .venv && .venv/bin/pip install -q -r requirements-dev.txt && touch $@

demo:
	python3 -m venv .venv && .venv/bin/pip install -q -r requirements.txt && DEBUG=1 $(PY) manage.py demo

test: .venv/installed
	$(PY) -m pytest

lint: .venv/installed
	$(PY) -m ruff check .

ci:
	bash .ci/run
