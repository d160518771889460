# ShopStream recipes. `just` lists them.
set dotenv-load
set shell := ["bash", "-euo", "pipefail", "-c"]

python := env_var_or_default("PYTHON", "")  # empty: the first of python3, python3.13, python3.12, python3.11 that is 3.11+
venv := ".venv"
bin := venv / "bin"

# list the recipes
default:
    @just --list

# create or refresh .venv when it is missing, pyproject.toml changed or PYTHON names another version (`just venv dev` adds test and lint tools)
venv extras="":
    #!/usr/bin/env bash
    set -euo pipefail
    stamp="{{venv}}/.installed{{ if extras == "" { "" } else { "-" + extras } }}"
    supported() { "$1" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; }
    version() { "$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])'; }
    need="ShopStream needs Python 3.11+ (3.11 to 3.13 tested)"
    python="{{python}}"
    if [ -n "$python" ]; then
        supported "$python" || { echo "$need; PYTHON=$python is not" >&2; exit 1; }
        if [ -x {{bin}}/python ] && [ "$(version {{bin}}/python)" != "$(version "$python")" ]; then
            echo "PYTHON is $(version "$python"), {{venv}} has $(version {{bin}}/python): making {{venv}} anew" >&2
            rm -rf {{venv}}
        fi
    fi
    if [ -x {{bin}}/python ] && [ "$stamp" -nt pyproject.toml ]; then exit 0; fi
    if [ -z "$python" ]; then
        for candidate in python3 python3.13 python3.12 python3.11; do
            if supported "$candidate"; then python=$candidate; break; fi
        done
        [ -n "$python" ] || { echo "$need; set PYTHON=/path/to/python3.13" >&2; exit 1; }
    fi
    [ -x {{bin}}/python ] || "$python" -m venv {{venv}}
    spec="."
    [ -z "{{extras}}" ] || spec=".[{{extras}}]"
    echo "installing ShopStream ($spec) into {{venv}} ..." >&2
    {{bin}}/python -m pip install --quiet --no-compile --disable-pip-version-check -e "$spec"
    touch "$stamp" "{{venv}}/.installed"  # the dev install holds the runtime one too

# run everything in one process: API, relay and consumers (embedded PostgreSQL/Redis unless URLs are set)
run: venv
    {{bin}}/shopstream serve

# the HTTP API only (pass --workers N)
api *args: venv
    {{bin}}/shopstream api {{args}}

# relays and consumers only, for all contexts or one (a name from shopstream/contexts.py)
worker context="": venv
    {{bin}}/shopstream worker {{ if context == "" { "" } else { "--context " + context } }}

# apply pending database migrations
migrate: venv
    {{bin}}/shopstream migrate

# outbox backlog, streams, consumer groups, lag and dead letters (`just status --json` for scripts)
status *args: venv
    {{bin}}/shopstream status {{args}}

# dead letters: `just dlq list`, `just dlq replay 7`, `just dlq drop 7`
dlq *args: venv
    {{bin}}/shopstream dlq {{args}}

# rebuild one projection from the event log into shadow tables while the live one serves, then swap (progress shown; a stopped or killed rebuild resumes)
rebuild name: venv
    {{bin}}/shopstream projections rebuild {{name}}

# each projection's version, events applied, lag and any rebuild in progress (`just projections --json`)
projections *args: venv
    {{bin}}/shopstream projections status {{args}}

# the whole test suite; extra arguments go to pytest
test *args: (venv "dev")
    {{bin}}/pytest {{args}}

# settings, migrations, embedded servers
test-platform *args: (venv "dev")
    {{bin}}/pytest tests/platform {{args}}

# the HTTP contract
test-api *args: (venv "dev")
    {{bin}}/pytest tests/api {{args}}

# the messaging core (bus, outbox, relay, consumers) and its reliability under faults
test-messaging *args: (venv "dev")
    {{bin}}/pytest tests/messaging {{args}}

# one context's tests: domain, handlers, projections, routes (`just test-context identity`)
test-context name *args: (venv "dev")
    {{bin}}/pytest tests/{{name}} {{args}}

# end to end through `shopstream serve`
test-e2e *args: (venv "dev")
    {{bin}}/pytest tests/e2e {{args}}

# deploy/: promtool on the Prometheus config and alert rules, dashboard and alert queries against /metrics, compose and Kubernetes schemas
deploy-check *args: (venv "dev")
    {{bin}}/pytest tests/deploy {{args}}

# the end-to-end report: command path, sustained pipeline rate, commit-to-read-model lag, backlog drain, a 100,000-event rebuild, search latency, CPU per command by component, beside baselines, checked against the targets; written to bench/results/ with a plot (needs wrk; under 12 minutes)
bench *args: (venv "bench")
    {{bin}}/python -m bench.report {{args}}

# relay and consumer throughput beside raw redis-py/asyncpg baselines (BENCH_DATABASE_URL, BENCH_REDIS_URL)
bench-messaging *args: venv
    {{bin}}/python -m bench.messaging {{args}}

# POST /customers requests/s beside a bare Litestar + asyncpg endpoint, driven by wrk (BENCH_DATABASE_URL, BENCH_REDIS_URL)
bench-commands *args: venv
    {{bin}}/python -m bench.commands {{args}}

# search latency (q, price range + facet, category subtree) on 50,000 products beside the unfiltered list, by wrk at 1 and 16 clients
bench-search *args: venv
    {{bin}}/python -m bench.search {{args}}

# Schemathesis against a `shopstream serve` it starts (every check and phase, stateful too); N examples per operation, roles e.g. admin,seller,customer
fuzz examples="100" roles="admin" *args: (venv "dev")
    {{bin}}/python -m fuzz.run --max-examples {{examples}} --roles {{roles}} {{args}}

# pin the image's packages (deploy/constraints.txt) to the newest releases pyproject.toml allows, for the Python of deploy/Dockerfile
constraints: (venv "dev")
    {{bin}}/uv pip compile --quiet --upgrade --universal --no-annotate pyproject.toml -o deploy/constraints.txt \
        --python-version "$(sed -nE 's/^FROM python:([0-9]+\.[0-9]+)-slim.*/\1/p' deploy/Dockerfile)"

# ruff lint and format check, and the import contracts (layers, independent contexts, no cycles)
lint: (venv "dev")
    {{bin}}/ruff check .
    {{bin}}/ruff format --check .
    {{bin}}/lint-imports

# format the code
fmt: (venv "dev")
    {{bin}}/ruff format .
    {{bin}}/ruff check --fix .

# static types
typecheck: (venv "dev")
    {{bin}}/mypy shopstream bus contexts observability

# lint, types and tests
check: lint typecheck test
