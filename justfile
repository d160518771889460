# ShopStream recipes. `just` lists them.
set dotenv-load
set shell := ["bash", "-euo", "pipefail", "-c"]

python := env_var_or_default("PYTHON", "python3")
venv := ".venv"
bin := venv / "bin"

# list the recipes
default:
    @just --list

# create or refresh .venv when it is missing or pyproject.toml changed
venv:
    #!/usr/bin/env bash
    set -euo pipefail
    if [ -x {{bin}}/python ] && [ {{venv}}/.installed -nt pyproject.toml ]; then exit 0; fi
    {{python}} -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
        || { echo "ShopStream needs Python 3.11+; set PYTHON=/path/to/python3.11" >&2; exit 1; }
    [ -x {{bin}}/python ] || {{python}} -m venv {{venv}}
    {{bin}}/python -m pip install --quiet --upgrade pip
    {{bin}}/python -m pip install --quiet -e '.[dev]'
    touch {{venv}}/.installed

# run everything in one process: API, relay and consumers (embedded PostgreSQL/Redis unless URLs are set)
run: venv
    {{bin}}/shopstream serve

# the HTTP API only (pass --workers N)
api *args: venv
    {{bin}}/shopstream api {{args}}

# relays and consumers only, for all contexts or one (identity, catalogue)
worker context="": venv
    {{bin}}/shopstream worker {{ if context == "" { "" } else { "--context " + context } }}

# apply pending database migrations
migrate: venv
    {{bin}}/shopstream migrate

# dead letters: `just dlq list`, `just dlq replay 7`, `just dlq drop 7`
dlq *args: venv
    {{bin}}/shopstream dlq {{args}}

# reset one projection and replay it from the event log
rebuild name: venv
    {{bin}}/shopstream projections rebuild {{name}}

# the whole test suite; extra arguments go to pytest
test *args: venv
    {{bin}}/pytest {{args}}

# settings, migrations, embedded servers
test-platform *args: venv
    {{bin}}/pytest tests/platform {{args}}

# the HTTP contract
test-api *args: venv
    {{bin}}/pytest tests/api {{args}}

# the messaging core (bus, outbox, relay, consumers) and its reliability under faults
test-messaging *args: venv
    {{bin}}/pytest tests/messaging {{args}}

# the identity context: domain, handlers, routes
test-identity *args: venv
    {{bin}}/pytest tests/identity {{args}}

# end to end through `shopstream serve`
test-e2e *args: venv
    {{bin}}/pytest tests/e2e {{args}}

# every benchmark
bench: bench-messaging

# relay and consumer throughput beside raw redis-py/asyncpg baselines (BENCH_DATABASE_URL, BENCH_REDIS_URL)
bench-messaging *args: venv
    {{bin}}/python -m bench.messaging {{args}}

# ruff lint and format check
lint: venv
    {{bin}}/ruff check .
    {{bin}}/ruff format --check .

# format the code
fmt: venv
    {{bin}}/ruff format .
    {{bin}}/ruff check --fix .

# static types
typecheck: venv
    {{bin}}/mypy shopstream bus contexts observability

# lint, types and tests
check: lint typecheck test
