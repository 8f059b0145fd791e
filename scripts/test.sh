#!/usr/bin/env bash
# Install everything the tests need (Python packages, Debian's Chromium for the browser tests) and run them.
# This is the README's test command; .ci/run calls it too.
set -euo pipefail
cd "$(dirname "$0")/.."
export GRADIO_ANALYTICS_ENABLED=False HF_HUB_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1
if ! command -v chromium >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    # One retry: a mirror hiccup should not fail the run (the browser tests need a real browser).
    for attempt in 1 2; do
        if $SUDO apt-get update -qq && $SUDO apt-get install -y -qq chromium >/dev/null; then break; fi
        [ "$attempt" = 2 ] && exit 1
        sleep 10
    done
fi
# axe-core (the npm package) for the accessibility tests, which inject it into the page: into artifacts/axe,
# which git ignores, where tests/test_accessibility.py looks for it.
if [ ! -f artifacts/axe/node_modules/axe-core/axe.min.js ]; then
    if ! command -v npm >/dev/null 2>&1; then
        if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
        $SUDO apt-get update -qq && $SUDO apt-get install -y -qq npm >/dev/null
    fi
    mkdir -p artifacts/axe
    # One retry, as for Chromium; if the registry stays unreachable the axe-core checks skip and say why,
    # rather than the whole run failing on a download.
    for attempt in 1 2; do
        if (cd artifacts/axe && npm install --no-save --silent --no-audit --no-fund axe-core@4); then break; fi
        if [ "$attempt" = 2 ]; then echo "warning: axe-core could not be installed; its checks will skip" >&2; fi
        sleep 10
    done
fi
python -m pip install -q -r requirements-dev.txt -c constraints.txt
python -m pytest -q "$@"
