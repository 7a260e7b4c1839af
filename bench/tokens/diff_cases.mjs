// Differential cases for the token counter: random strings drawn from the
// characters the split patterns treat specially (White_Space incl. U+0085,
// U+FEFF, \r \n /, apostrophes and contraction letters incl. U+017F,
// marks, digits of several scripts, upper/lower/title case, Unicode 15-16
// letters, CJK, emoji), encoded by tiktoken (npm, WASM). Writes
// <OUT>/<encoding>.cases: per case u32 byte length, the UTF-8 bytes,
// u32 token count, the ids (all little-endian).
// usage: node diff_cases.mjs LIBS_MJS OUT_DIR [N] [SEED]
import { writeFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [libsPath, out, nArg, seedArg] = process.argv.slice(2);
const N = Number(nArg || 20000);
let seed = Number(seedArg || 12345);
const rand = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
const pick = (a) => a[Math.floor(rand() * a.length)];
const alphabet = [
  " ", " ", " ", "  ", "\t", "\n", "\r\n", "\r", "\u0085", "\u00A0", "\u2028",
  "\u3000", "\uFEFF", "/", "'", "'", "s", "S", "t", "T", "re", "RE", "ll", "Ll",
  "ve", "m", "D", "\u017F", "\u212A", "a", "b", "Z", "Hello", "world", "XML",
  "\u01C5", "\u02B0", "\u0301", "\u0308", "\u094D", "\u0897", "e\u0301",
  "1", "23", "456", "\u00B2", "\u00BD", "\u2162", "\u0663", "\u{10D40}",
  "\u{10D4A}", "\u{11F04}", "\u1C89", "\u1C8A", "\u0378", "\u{E0001}",
  "中文", "東京", "한국", "ไทย", "नमस्ते", "مرحبا", "👍", "👨‍👩‍👧", "🇯🇵",
  "!", "...", "?!", "(", ")", "{", "}", ";", "-", "_", "#", "\"", "<|endoftext|>",
  "http://x.y/z", "\\", "$", "€", "\u2019", "\u200D",
];
const cases = [];
for (let i = 0; i < N; i++) {
  const len = 1 + Math.floor(rand() * 12);
  let s = "";
  for (let k = 0; k < len; k++) s += pick(alphabet);
  cases.push(s);
}
const { load } = await import(pathToFileURL(libsPath).href);
mkdirSync(out, { recursive: true });
for (const enc of ["o200k_base", "cl100k_base"]) {
  const lib = load("tiktoken", enc);
  const parts = [];
  for (const s of cases) {
    const b = Buffer.from(s, "utf8");
    const ids = Uint32Array.from(lib.encode(s));
    const h = Buffer.alloc(4); h.writeUInt32LE(b.length);
    const c = Buffer.alloc(4); c.writeUInt32LE(ids.length);
    parts.push(h, b, c, Buffer.from(ids.buffer));
  }
  writeFileSync(join(out, `${enc}.cases`), Buffer.concat(parts));
  lib.free();
}
console.error(`wrote ${N} cases per encoding to ${out}`);
