#!/usr/bin/env bash
# Fails on lines over 80 columns in src/ (shared/STYLE.md).
set -euo pipefail
cd "$(dirname "$0")/.."
bad=$(find src tools -name '*.[ch]' -print0 |
      xargs -0 awk 'length($0) > 80 { printf "%s:%d: %d columns\n", FILENAME, FNR, length($0) }')
if [[ -n $bad ]]; then
    echo "lint: lines over 80 columns:" >&2
    echo "$bad" >&2
    exit 1
fi
echo "lint: no line over 80 columns in src/ and tools/"
