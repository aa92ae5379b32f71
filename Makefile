# Developer entry points. Everything runs locally (no Docker needed): see infra/README.md.
.DEFAULT_GOAL := help
VENV := .venv/bin

.PHONY: help bootstrap up down status logs reset test lint typecheck asyncapi strimzi bench bench-smoke soak

help:
	@echo "make up | down | status | logs | reset | test | lint | typecheck | asyncapi | strimzi"
	@echo "make bench        every benchmark, one table against the goals, .data/bench/results.json"
	@echo "make bench-smoke  every benchmark in smoke mode: they still work (figures mean nothing)"
	@echo "make soak         the whole platform under steady load for 10 minutes: memory, CPU, lag"

bootstrap:
	@infra/bootstrap.sh

up: bootstrap
	$(VENV)/panjereh up

down: bootstrap
	$(VENV)/panjereh down

status: bootstrap
	$(VENV)/panjereh status

logs: bootstrap
	$(VENV)/panjereh logs

reset: bootstrap
	$(VENV)/panjereh reset

# Lint and types first (seconds), then the suite; the test session starts its own
# isolated Kafka and PostgreSQL, so nothing else is needed.
test: bootstrap
	$(VENV)/ruff check .
	$(VENV)/ruff format --check .
	$(VENV)/mypy
	$(VENV)/python -m pytest -q

lint: bootstrap
	$(VENV)/ruff check .
	$(VENV)/ruff format --check .

typecheck: bootstrap
	$(VENV)/mypy

asyncapi: bootstrap
	$(VENV)/panjereh asyncapi > docs/asyncapi.yaml

strimzi: bootstrap
	$(VENV)/panjereh strimzi > deploy/helm/panjereh/files/register.yaml

# Every benchmark on the benchmarks' own Kafka and PostgreSQL (.data/bench-<slot>, ports
# shifted by PANJEREH_TEST_SLOT), one at a time: run it on a quiet machine.
bench: bootstrap
	$(VENV)/python benchmarks/run_all.py

bench-smoke: bootstrap
	$(VENV)/python benchmarks/run_all.py --smoke

# A platform of its own (.data/soak-<slot>) under the simulator for ten minutes after two of
# warm-up; fails if a process's memory grew by more than 10%. SOAK_ARGS="--minutes 30".
soak: bootstrap
	$(VENV)/python benchmarks/soak.py $(SOAK_ARGS)
