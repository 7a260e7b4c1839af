// Writes tiktoken's (npm, WASM) ids for each corpus as little-endian
// uint32 files <OUT>/<encoding>.<corpus>.u32, the reference bench/tokens
// compares Tollgate's ids with. Loads the library through the shared
// peers' libs.mjs (from $TOKBENCH_DIR).
// usage: node peer_ids.mjs LIBS_MJS CORPORA_DIR OUT_DIR
import { readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [libsPath, corpora, out] = process.argv.slice(2);
const { load } = await import(pathToFileURL(libsPath).href);
mkdirSync(out, { recursive: true });
for (const enc of ["o200k_base", "cl100k_base"]) {
  const lib = load("tiktoken", enc);
  for (const c of ["prose", "code", "mixed"]) {
    const ids = lib.encode(readFileSync(join(corpora, `${c}.txt`), "utf8"));
    writeFileSync(join(out, `${enc}.${c}.u32`),
      Buffer.from(Uint32Array.from(ids).buffer));
  }
  lib.free();
}
