#!/usr/bin/env bash
# Install what the tests need on a fresh machine, then run the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m pip install --quiet -r requirements-dev.txt

# The browser test drives Debian's Chromium through Playwright; Playwright's
# own browser download cannot work offline, so the system package is used.
if ! command -v chromium >/dev/null 2>&1; then
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
        apt-get update -qq && apt-get install -y -qq chromium >/dev/null
    else
        echo "chromium not found and cannot be installed here; the browser test will be skipped" >&2
    fi
fi

python3 -m ruff check .

export HF_HUB_OFFLINE=1
export GRADIO_ANALYTICS_ENABLED=False
python3 -m pytest "$@"
