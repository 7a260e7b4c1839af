#!/usr/bin/env bash
# Builds the dashboard bundle into build/dashboard/: uPlot from npm (the
# version pinned in web/package-lock.json, installed into a cache under
# build/), concatenated with web/dashboard.js and web/dashboard.css. The
# gateway and `tollgate report --format html` read it from there; nothing
# here is committed. Needs npm (Debian 12: npm 9, Node 18 or 20).
set -euo pipefail
cd "$(dirname "$0")/.."

out=build/dashboard
cache=${TOLLGATE_NPM_DIR:-build/npm}
lib=$cache/node_modules/uplot/dist

if ! command -v npm >/dev/null 2>&1; then
    echo "build-dashboard: npm is missing (apt-get install npm)" >&2
    exit 1
fi
mkdir -p "$out" "$cache"

# Install only when the pinned versions changed since the last install.
if [[ ! -f $lib/uPlot.iife.min.js ]] ||
   ! cmp -s web/package-lock.json "$cache/package-lock.json"; then
    cp web/package.json web/package-lock.json "$cache/"
    (cd "$cache" && npm ci --no-audit --no-fund --ignore-scripts \
        --cache "$PWD/.npm-cache" >/dev/null)
fi

# Concatenation is the whole bundling step: uPlot ships a browser build
# (an IIFE defining window.uPlot), and dashboard.js is plain ES5.
{
    cat "$lib/uPlot.iife.min.js"
    printf '\n'
    cat web/dashboard.js
} >"$out/dashboard.js.tmp"
{
    cat "$lib/uPlot.min.css"
    printf '\n'
    cat web/dashboard.css
} >"$out/dashboard.css.tmp"
mv "$out/dashboard.js.tmp" "$out/dashboard.js"
mv "$out/dashboard.css.tmp" "$out/dashboard.css"
echo "build-dashboard: $out/dashboard.js ($(wc -c <"$out/dashboard.js") bytes)"
