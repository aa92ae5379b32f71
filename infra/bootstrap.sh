#!/usr/bin/env bash
# Prepare this machine to run and test Panjereh: system packages (Debian/Ubuntu, only the
# missing ones) and the project's virtualenv in .venv. Idempotent and quick when nothing
# is missing, so `make up` / `make test` run it every time.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
export DEBIAN_FRONTEND=noninteractive

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi

missing=()
need() { missing+=("$@"); }

# Debian splits `venv`'s ensurepip into python3-venv; only needed while .venv is absent.
if [ ! -x .venv/bin/python ] && ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
    need python3-venv
fi
command -v java >/dev/null 2>&1 || need openjdk-17-jre-headless
command -v mvn >/dev/null 2>&1 || need maven
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || need postgresql
command -v kcat >/dev/null 2>&1 || need kcat
command -v docker-compose >/dev/null 2>&1 || need docker-compose
# The metrics dashboard is tested in headless Chromium.
command -v chromium >/dev/null 2>&1 || need chromium
# promtool checks the alert rules (deploy/helm/panjereh/files/monitoring) in the suite.
command -v promtool >/dev/null 2>&1 || need prometheus
# initdb with --locale=C.UTF-8 needs that locale (present on Debian 12 by default).

if [ "${#missing[@]}" -gt 0 ]; then
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "bootstrap: please install: ${missing[*]} (no apt-get on this machine)" >&2
        exit 1
    fi
    echo "bootstrap: installing ${missing[*]}"
    $SUDO apt-get update -q
    $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
    # The Debian package starts a system-wide cluster on 5432; we run our own, on our own
    # port, so that one is not needed (harmless if it keeps running).
fi

if [ ! -x .venv/bin/python ]; then
    echo "bootstrap: creating .venv"
    python3 -m venv .venv
fi

stamp=.venv/.panjereh-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ clients/pyproject.toml -nt "$stamp" ]; then
    echo "bootstrap: installing the project into .venv"
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -e '.[dev]'
    # The agency side, a package of its own that agencies install.
    .venv/bin/python -m pip install -q --no-deps -e clients
    touch "$stamp"
fi

# Helm, whose lint and render of deploy/helm/panjereh run in the suite: built from its Go
# module at a pinned version (there is no Debian package), once; a few minutes.
HELM_VERSION=v3.22.0
go=$(command -v go || echo /usr/local/go/bin/go)
if [ ! -x "$go" ]; then
    echo "bootstrap: please install Go 1.24 or newer (it builds helm $HELM_VERSION)" >&2
    exit 1
fi
# The binary's own build information names the module version it was built from.
if ! "$go" version -m .venv/bin/helm 2>/dev/null | grep -Eq "mod[[:space:]]+helm.sh/helm/v3[[:space:]]+$HELM_VERSION"; then
    echo "bootstrap: building helm $HELM_VERSION into .venv/bin"
    GOBIN="$PWD/.venv/bin" GOFLAGS=-trimpath "$go" install "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
fi

# Debian 12's kcat links librdkafka 2.0, whose SCRAM exchange Kafka 4 refuses (fixed in
# librdkafka 2.6.1). .venv/bin/kcat runs the same kcat on the newer librdkafka that the
# confluent-kafka wheel ships.
bundled=$(ls .venv/lib/python3*/site-packages/confluent_kafka.libs/librdkafka-*.so.1 2>/dev/null | head -n1)
if [ -n "$bundled" ] && [ ! -x .venv/bin/kcat ]; then
    mkdir -p .venv/lib/kcat
    ln -sf "$(realpath "$bundled")" .venv/lib/kcat/librdkafka.so.1
    cat > .venv/bin/kcat <<'WRAPPER'
#!/bin/sh
here=$(dirname "$(realpath "$0")")
LD_LIBRARY_PATH="$here/../lib/kcat${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" exec /usr/bin/kcat "$@"
WRAPPER
    chmod +x .venv/bin/kcat
fi
