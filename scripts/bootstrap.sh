#!/usr/bin/env bash
# Shared set-up: system packages (when root and apt-get is available), the
# virtual environment in .venv with the locked dependencies, and the project.
# Sourced by scripts/demo and scripts/test; safe to run again (it only adds
# what is missing).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PYTHON="${PYTHON:-python3}"

# Debian packages: bubblewrap for the build sandbox, patch for remediation
# series; PostgreSQL and Redis for the fleet backend tests; Chromium for the
# web UI browser tests; gcc with the libffi and zlib headers for the manylinux repair tests
# (tests/build/test_repair.py builds an extension that links them). Build headers let the
# corpus benchmark compile.
SYSTEM_PACKAGES_TEST=(bubblewrap patch postgresql redis-server chromium chromium-driver
                      gcc libffi-dev zlib1g-dev)
SYSTEM_PACKAGES_BUILD=(bubblewrap patch gcc g++ make pkg-config libffi-dev libssl-dev libxml2-dev
                       libxslt1-dev libjpeg-dev zlib1g-dev libpq-dev libyaml-dev pkg-config)

install_system_packages() {
    local wanted=("$@") missing=()
    for pkg in "${wanted[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
        echo "note: missing system packages (${missing[*]}); install them with apt-get as root" >&2
        return 0
    fi
    echo "installing system packages: ${missing[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

setup_venv() {
    local lock="$1"
    if [ ! -x "$VENV/bin/python" ]; then
        "$PYTHON" -m venv "$VENV"
    fi
    local stamp="$VENV/.fromsource-lock.sha256"
    local want
    want="$(sha256sum "$ROOT/$lock" "$ROOT/pyproject.toml" | sha256sum | cut -d' ' -f1)"
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
        "$VENV/bin/python" -m pip install -q --disable-pip-version-check --require-hashes -r "$ROOT/$lock"
        "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e "$ROOT"
        echo "$want" > "$stamp"
    fi
}
