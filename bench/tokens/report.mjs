// Prints the bench/tokens table: MB/s of tiktoken (npm, WASM),
// gpt-tokenizer and Tollgate per encoding and corpus, Tollgate's ratio to
// the fastest peer (warm against warm, cold cache against the fastest
// peer's best), and exactness: token counts, ids against tiktoken's, and
// the random-string cases.
// usage: node report.mjs PEERS_JSON TOLLGATE_JSONL [DIFF_JSONL]
import { readFileSync } from "node:fs";

const [peersPath, tgPath, diffPath] = process.argv.slice(2);
const jsonl = (p) =>
  readFileSync(p, "utf8").trim().split("\n").map((l) => JSON.parse(l));
const peers = JSON.parse(readFileSync(peersPath, "utf8"));
const tg = jsonl(tgPath);
const f2 = (x) => (x === undefined ? "-" : x.toFixed(2));

console.log(`node ${peers.env.node}; ${peers.env.cpu}; ` +
  `${peers.env.pinned}; median of ${peers.env.runs} runs after 1 ` +
  "warm-up, every library\n");
console.log("| encoding | corpus | MB | tokens | tiktoken | gpt-tokenizer " +
  "| gpt-tok. cold | Tollgate | Tollgate cold | × fastest peer " +
  "| cold × fastest peer | counts equal | ids = tiktoken |");
console.log("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|---|");
let worst = Infinity;
let worstCold = Infinity;
let exact = true;
for (const t of tg.filter((x) => x.variant === "default")) {
  const c = tg.find((x) => x.variant === "cold-cache" &&
    x.enc === t.enc && x.corpus === t.corpus);
  const rows = peers.results.filter((r) => r.enc === t.enc);
  const cell = (lib, variant) => {
    const r = rows.find((x) => x.lib === lib && x.variant === variant);
    return r && r.corpora[t.corpus];
  };
  const tk = cell("tiktoken", "default");
  const gt = cell("gpt-tokenizer", "default");
  const gtc = cell("gpt-tokenizer", "cold-cache");
  const fastest = Math.max(tk ? tk.mb_per_s : 0, gt ? gt.mb_per_s : 0);
  const ratio = t.mb_per_s / fastest;
  const ratioCold = c ? c.mb_per_s / fastest : NaN;
  const counts = [tk, gt, gtc, c].filter(Boolean)
    .every((x) => x.tokens === t.tokens);
  worst = Math.min(worst, ratio);
  worstCold = Math.min(worstCold, ratioCold);
  exact = exact && counts && t.ids_equal === "yes" &&
    (!c || c.ids_equal === "yes");
  console.log(`| ${t.enc} | ${t.corpus.replace(".txt", "")} ` +
    `| ${f2(t.bytes / 1e6)} | ${t.tokens} | ${f2(tk && tk.mb_per_s)} ` +
    `| ${f2(gt && gt.mb_per_s)} | ${f2(gtc && gtc.mb_per_s)} ` +
    `| ${f2(t.mb_per_s)} | ${f2(c && c.mb_per_s)} | ${ratio.toFixed(1)}× ` +
    `| ${ratioCold.toFixed(1)}× | ${counts ? "yes" : "NO"} ` +
    `| ${t.ids_equal} |`);
}
if (diffPath) {
  for (const d of jsonl(diffPath)) {
    console.log(`\n${d.enc}: ${d.cases} random strings, ${d.differ} ` +
      "differ from tiktoken's ids");
    exact = exact && d.differ === 0;
  }
}
console.log(`\nlowest ratio to the fastest peer: ${worst.toFixed(1)}× ` +
  `(cold cache: ${worstCold.toFixed(1)}×; target 3×); exact everywhere: ` +
  `${exact ? "yes" : "NO"}`);
process.exitCode = exact ? 0 : 1;
