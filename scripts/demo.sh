#!/usr/bin/env bash
# make demo: the simulator, the gateway, a mixed workload, the report.
set -euo pipefail
cd "$(dirname "$0")/.."
exec python3 scripts/demo.py "$@"
