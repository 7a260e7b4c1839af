"""End-to-end tests of `tollgate audit` and `tollgate replay`: every
importer's fixture (tests/fixtures/audit), a ledger written here, and
the shared data sets (skipped when ../shared/data is missing), with
exact figures. Expected money is recomputed here from the files where
that can be done independently of the binary.
"""

import csv
from fractions import Fraction
from html.parser import HTMLParser
import json
import os
import sqlite3
import subprocess
import tempfile
import unittest

import harness

ROOT = harness.repo_root()
FIX = ROOT / "tests" / "fixtures" / "audit"
LITELLM = "data/llm-prices/litellm/model_prices_and_context_window.json"

# Built-in prices, picodollars per token.
GPT4O_IN, GPT4O_OUT = 2500000, 10000000
MINI_IN, MINI_OUT = 150000, 600000


def run(*args, env=None):
    full = dict(os.environ)
    full.setdefault("TOLLGATE_SHARED", str(harness.shared_dir()))
    full.update(env or {})
    proc = subprocess.run([harness.TOLLGATE_BIN] + [str(a) for a in args],
                          capture_output=True, text=True, env=full,
                          timeout=300)
    return proc


def audit_json(testcase, *args):
    proc = run("audit", "--format", "json", *args)
    testcase.assertEqual(proc.returncode, 0, proc.stderr)
    return json.loads(proc.stdout)


class TableCells(HTMLParser):
    """The data-col cells of each table by id, row by row, and the text
    of elements with an id."""

    def __init__(self):
        super().__init__()
        self.tables, self.ids = {}, {}
        self.table = self.cell = self.span = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table":
            self.table = self.tables.setdefault(a["id"], [])
        elif tag == "tr" and self.table is not None:
            self.table.append({})
        elif tag == "td" and "data-col" in a:
            self.cell = a["data-col"]
            self.table[-1][self.cell] = ""
        elif tag == "span" and "id" in a:
            self.span = a["id"]
            self.ids[self.span] = ""

    def handle_endtag(self, tag):
        if tag == "td":
            self.cell = None
        elif tag == "span":
            self.span = None
        elif tag == "table":
            self.table = None

    def handle_data(self, data):
        if self.cell is not None:
            self.table[-1][self.cell] += data
        if self.span is not None:
            self.ids[self.span] += data


def audit_html(testcase, *args):
    proc = run("audit", "--format", "html", *args)
    testcase.assertEqual(proc.returncode, 0, proc.stderr)
    parser = TableCells()
    parser.feed(proc.stdout)
    return proc.stdout, parser


def leak(report, name):
    return report["leaks"][name]["amount_pico"]


class AuditFixtures(unittest.TestCase):
    def test_chat_jsonl_exact_spend_leaks_and_malformed_lines(self):
        r = audit_json(self, FIX / "chat.jsonl")
        src = r["sources"][0]
        self.assertEqual(src["format"], "jsonl")
        self.assertEqual((src["records"], src["calls"], src["malformed"]),
                         (9, 7, 2))
        self.assertEqual([b["line"] for b in src["malformed_lines"]], [4, 8])
        triage = 100 * GPT4O_IN + 2 * GPT4O_OUT
        claude = 1000 * 3000000 + 200 * 15000000
        responses = 50 * MINI_IN + 10 * MINI_OUT
        self.assertEqual(r["total"]["spend_pico"],
                         4 * triage + claude + responses)
        # "Say hello in German." counted as 5 tokens, "Hallo" as 1.
        self.assertEqual(r["total"]["estimated_pico"],
                         5 * MINI_IN + 1 * MINI_OUT)
        self.assertEqual(r["total"]["estimated_calls"], 1)
        self.assertEqual(leak(r, "retries"), triage)
        self.assertEqual(leak(r, "volume_duplicates"), triage)
        self.assertEqual(r["workflow_count"], 4)
        owners = {o["name"]: o["spend_pico"] for o in r["by_owner"]}
        self.assertEqual(owners["alice"], 4 * triage)
        weeks = [w["name"] for w in r["by_week"]]
        self.assertEqual(sorted(weeks), ["2026-10-26", "2026-11-02"])

    def test_batch_output(self):
        r = audit_json(self, FIX / "batch_output.jsonl")
        src = r["sources"][0]
        self.assertEqual((src["calls"], src["malformed"]), (3, 1))
        self.assertEqual(src["malformed_lines"][0]["line"], 4)
        # Batch: half of 1000 x 150,000 + 100 x 600,000, twice.
        self.assertEqual(r["total"]["spend_pico"],
                         2 * (1000 * MINI_IN + 100 * MINI_OUT) // 2)
        self.assertEqual(r["total"]["unpriced_calls"], 0)
        self.assertEqual(leak(r, "retries"), 0)

    def test_usage_api_buckets(self):
        r = audit_json(self, FIX / "usage_api.json")
        self.assertEqual(r["sources"][0]["format"], "usage-api")
        self.assertEqual(r["total"]["calls"], 70)
        gpt4o = 600000 * GPT4O_IN + 400000 * 1250000 + 100000 * GPT4O_OUT
        batch = (2000000 * MINI_IN + 500000 * MINI_OUT) // 2
        self.assertEqual(r["total"]["spend_pico"], gpt4o + batch)
        self.assertEqual(gpt4o + batch, 3300000000000)

    def test_litellm_json_uses_usage_then_logged_spend(self):
        r = audit_json(self, FIX / "litellm_spend.json")
        src = r["sources"][0]
        self.assertEqual((src["format"], src["calls"], src["malformed"]),
                         ("litellm-json", 2, 1))
        self.assertEqual(src["malformed_lines"][0]["line"], 33)
        self.assertEqual(r["total"]["spend_pico"],
                         100 * GPT4O_IN + 20 * GPT4O_OUT + 12300000000)

    def test_litellm_csv(self):
        r = audit_json(self, FIX / "litellm_spend.csv")
        src = r["sources"][0]
        self.assertEqual((src["format"], src["calls"], src["malformed"]),
                         ("litellm-csv", 3, 1))
        self.assertEqual(src["malformed_lines"][0]["line"], 4)
        self.assertEqual(r["total"]["spend_pico"],
                         2 * (100 * GPT4O_IN + 20 * GPT4O_OUT) +
                         30 * MINI_IN + 5 * MINI_OUT)
        owners = {o["name"] for o in r["by_owner"]}
        self.assertEqual(owners, {"carol", "dave, jr"})

    def test_all_fixtures_at_once_and_csv_table(self):
        files = sorted(str(p) for p in FIX.iterdir()
                       if p.suffix in (".jsonl", ".json", ".csv"))
        r = audit_json(self, *files)
        self.assertEqual(len(r["sources"]), 5)
        proc = run("audit", "--format", "csv", *files)
        self.assertEqual(proc.returncode, 0)
        rows = list(csv.reader(proc.stdout.splitlines()))
        self.assertEqual(rows[0][0], "section")
        total = [row for row in rows if row[0] == "total"][0]
        self.assertEqual(int(total[7]), r["total"]["spend_pico"])
        proc = run("audit", *files)
        self.assertIn("LEAK", proc.stdout)

    def test_since_until_window(self):
        r = audit_json(self, "--since", "2026-11-02", "--until",
                       "2026-11-03", FIX / "chat.jsonl")
        self.assertEqual(r["total"]["calls"], 1)

    def test_unreadable_file_exit_code(self):
        proc = run("audit", FIX / "no-such-file.jsonl")
        self.assertEqual(proc.returncode, 1)
        self.assertIn("no-such-file", proc.stderr)

    def test_html_page_figures_equal_json(self):
        files = [FIX / "chat.jsonl", FIX / "batch_output.jsonl",
                 FIX / "litellm_spend.json"]
        r = audit_json(self, *files)
        page, cells = audit_html(self, *files)
        self.assertTrue(page.startswith("<!DOCTYPE html>"))
        self.assertNotIn("<script", page)
        self.assertNotIn("http", page)
        self.assertEqual(cells.ids["total_spend_usd"], r["total"]["spend_usd"])
        self.assertEqual(cells.ids["total_estimated_usd"],
                         r["total"]["estimated_usd"])
        for table in ("by_owner", "by_workflow", "by_model", "by_week"):
            rows = [row for row in cells.tables[table] if row]
            self.assertEqual(len(rows), len(r[table]), table)
            self.assertTrue(rows)
            for row, want in zip(rows, r[table]):
                for col, text in row.items():
                    self.assertEqual(text, str(want[col]), (table, col))
        leaks = [row for row in cells.tables["leaks"] if row]
        self.assertEqual(len(leaks), 6)
        for row in leaks:
            self.assertEqual(row["amount_usd"],
                             r["leaks"][row["name"]]["amount_usd"])


def write_ledger(path):
    """A ledger with the columns `tollgate audit` reads (docs/ledger.md)."""
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE outcomes (id TEXT PRIMARY KEY, started_ms INTEGER,
            key_id TEXT, team TEXT, owner TEXT, task TEXT);
        CREATE TABLE attempts (outcome_id TEXT, attempt_no INTEGER,
            model TEXT, upstream_model TEXT, http_status INTEGER,
            input_tokens INTEGER, cached_tokens INTEGER,
            cache_write_tokens INTEGER, audio_in_tokens INTEGER,
            output_tokens INTEGER, reasoning_tokens INTEGER,
            audio_out_tokens INTEGER, cost_status TEXT, cost_pico INTEGER,
            PRIMARY KEY (outcome_id, attempt_no));
    """)
    t0 = 1793491200000
    db.execute("INSERT INTO outcomes VALUES ('out_1', ?, 'k1', 'support',"
               " 'alice', 'ticket-triage')", (t0,))
    db.execute("INSERT INTO outcomes VALUES ('out_2', ?, 'k2', 'legal',"
               " '', 'contract')", (t0 + 60000,))
    rows = [("out_1", 1, "fast", "gpt-4o-mini", 502, 0, 0, 0, 0, 0, 0, 0,
             "usage_missing", None),
            ("out_1", 2, "fast", "gpt-4o-mini", 200, 1000, 0, 0, 0, 100, 0,
             0, "priced", 210000000),
            ("out_2", 1, "big", "gpt-4o", 200, 1000, 0, 0, 0, 100, 0, 0,
             "unpriced", None)]
    db.executemany("INSERT INTO attempts VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                   rows)
    db.commit()
    db.close()



class AuditLedger(unittest.TestCase):
    def test_ledger_attempts_retries_and_reprice(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "ledger.db")
            write_ledger(path)
            r = audit_json(self, path)
        self.assertEqual(r["sources"][0]["format"], "ledger")
        self.assertEqual(r["total"]["calls"], 3)
        # The ledger's own cost, plus the unpriced row repriced now.
        self.assertEqual(r["total"]["spend_pico"],
                         210000000 + 1000 * GPT4O_IN + 100 * GPT4O_OUT)
        self.assertEqual(leak(r, "retries"), 210000000)
        self.assertEqual(r["total"]["unpriced_calls"], 1)
        owners = {o["name"] for o in r["by_owner"]}
        self.assertEqual(owners, {"alice", "legal"})


class ReplayFixtures(unittest.TestCase):
    def test_replay_routes_cache_and_cap(self):
        proc = run("replay", "--policy", FIX / "policy.yaml", "--format",
                   "json", FIX / "chat.jsonl")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        r = json.loads(proc.stdout)
        self.assertEqual(r["spend_pico"], 7093500000 + 1350000)
        # Two triage calls on gpt-4o-mini, two repeats from the cache, the
        # $0.006 Claude call past the $0.005 cap, the two mini calls kept.
        routed = 100 * MINI_IN + 2 * MINI_OUT
        self.assertEqual(r["would_spend_pico"],
                         2 * routed + 13500000 + 1350000)
        self.assertEqual((r["calls"], r["would_calls"], r["cached"],
                          r["dropped"], r["rerouted"]), (7, 4, 2, 1, 4))

    def test_replay_bad_policy_names_the_line(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "p.yaml")
            with open(path, "w") as f:
                f.write("replay:\n  routes:\n    - to: x\n      check: vibes\n")
            proc = run("replay", "--policy", path, FIX / "chat.jsonl")
        self.assertEqual(proc.returncode, 1)
        self.assertIn("p.yaml:4: unknown check", proc.stderr)


TASK_CONFIG = """providers:
  - {name: p, kind: openai-compatible, base_url: http://127.0.0.1:9}
models:
  - {name: mini, provider: p, upstream: gpt-4o-mini, tier: 1}
  - {name: gpt-4o, provider: p, tier: 2}
tasks:
  - name: chat
    route: [mini, gpt-4o]
    checks: {no_refusal: true}
    context: {keep_last_turns: 1}
budgets:
  - {scope: task, name: chat, period: total, limit_usd: "0.0002"}
"""


class ReplayGatewayConfig(unittest.TestCase):
    def test_logs_take_the_task_route_trim_and_hard_budget(self):
        """Chat-log calls named by --task run as the config's task: the
        cheapest tier, its context policy on the logged messages, and the
        task's hard budget, which drops the calls past it."""
        turns = []
        for i in range(6):
            turns += [{"role": "user", "content": "question %d " % i * 40},
                      {"role": "assistant", "content": "answer %d" % i}]
        turns.append({"role": "user", "content": "and now?"})
        with tempfile.TemporaryDirectory() as d:
            cfg = os.path.join(d, "gw.yaml")
            log = os.path.join(d, "log.jsonl")
            with open(cfg, "w") as f:
                f.write(TASK_CONFIG)
            with open(log, "w") as f:
                for i in range(3):
                    f.write(json.dumps({
                        "timestamp": 1793491200 + i, "key": "k",
                        "request": {"model": "gpt-4o", "messages": turns},
                        "response": {"model": "gpt-4o", "usage": {
                            "prompt_tokens": 2000,
                            "completion_tokens": 10}}}) + "\n")
            proc = run("replay", "--policy", cfg, "--task", "chat",
                       "--format", "json", log)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        r = json.loads(proc.stdout)
        self.assertEqual(r["task_calls"], 3)
        self.assertEqual(r["rerouted"], 3)
        self.assertEqual(r["unchecked"], 3)
        self.assertEqual(r["over_budget"], 2)
        self.assertEqual(r["would_calls"], 1)
        self.assertGreater(r["context_tokens"], 0)
        per_call = r["context_tokens"] // 3
        self.assertEqual(r["context_saved_pico"], 3 * per_call * MINI_IN)
        self.assertEqual(r["would_spend_pico"],
                         (2000 - per_call) * MINI_IN + 10 * MINI_OUT)


class AuditSharedData(unittest.TestCase):
    def test_azure_trace_priced_at_one_model(self):
        path = harness.need_shared(
            self, "data/azure-llm-inference-trace-2023/"
            "AzureLLMInferenceTrace_conv.csv")
        with open(path) as f:
            rows = list(csv.DictReader(f))
        want = sum(int(r["ContextTokens"]) * GPT4O_IN +
                   int(r["GeneratedTokens"]) * GPT4O_OUT for r in rows)
        r = audit_json(self, "--model", "gpt-4o", path)
        self.assertEqual(r["total"]["calls"], len(rows))
        self.assertEqual(r["total"]["spend_pico"], want)
        self.assertEqual(r["sources"][0]["malformed"], 0)

    def test_sharegpt_history_growth(self):
        path = harness.need_shared(
            self, "data/sharegpt-1k-sample/sharegpt_1000_conversations.jsonl")
        r = audit_json(self, "--model", "gpt-4o", path)
        self.assertEqual(r["sources"][0]["format"], "sharegpt")
        self.assertEqual(r["sources"][0]["records"], 1000)
        self.assertEqual(r["total"]["calls"], 3529)
        self.assertEqual(r["total"]["estimated_calls"], 3529)
        self.assertEqual(r["total"]["estimated_pico"], 18398400000000)
        self.assertEqual(leak(r, "context_history"), 2885247500000)
        self.assertEqual(leak(r, "retries"), 0)

    def test_eval_sets_audit_as_estimated_calls(self):
        sets = {"data/routellm-evals/gsm8k_responses.csv": 2638,
                "data/routellm-evals/mt_bench_judgements.jsonl": 320,
                "data/alpaca-eval-2/judgments_vs_gpt4_1106_preview.jsonl":
                    4025}
        for rel, calls in sets.items():
            path = harness.need_shared(self, rel)
            prices = harness.need_shared(self, LITELLM)
            r = audit_json(self, "--prices", prices, path)
            self.assertEqual(r["total"]["calls"], calls, rel)
            self.assertEqual(r["total"]["estimated_calls"] +
                             r["total"]["unpriced_calls"], calls, rel)
            self.assertEqual(r["sources"][0]["malformed"], 0, rel)


class ReplaySharedData(unittest.TestCase):
    def replay(self, policy, *files):
        proc = run("replay", "--policy", ROOT / "bench" / "replay" / policy,
                   "--compare", *files)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        return proc.stdout

    def row(self, out, name):
        lines = [l for l in out.splitlines() if l.startswith(name)]
        return [l.split() for l in lines]

    def test_gsm8k_matches_the_data_readme(self):
        path = harness.need_shared(self,
                                   "data/routellm-evals/gsm8k_responses.csv")
        harness.need_shared(self, LITELLM)
        out = self.replay("gsm8k.yaml", path)
        strong, at95 = self.row(out, "always-strong")
        self.assertEqual(strong[2], "0.857")
        self.assertEqual(self.row(out, "always-cheap")[0][2], "0.638")
        self.assertEqual(self.row(out, "random")[0][1], "80.4%")
        self.assertEqual(self.row(out, "oracle")[0][1], "17.6%")
        self.assertEqual(strong[3], "5.303100000000")

    def test_gsm8k_gateway_config_escalates_as_the_cascade(self):
        """A gateway config (tasks: route [mixtral, gpt-4], checks
        {final_number: true}) replayed as is: the cascade escalates the 62
        of 1,319 Mixtral answers that fail final_number, as the route
        tests found (1,257 pass)."""
        path = harness.need_shared(self,
                                   "data/routellm-evals/gsm8k_responses.csv")
        harness.need_shared(self, LITELLM)
        out = self.replay("gsm8k-tasks.yaml", path)
        self.assertIn("policy escalated 62 of 1319;", out)
        task = self.row(out, "tollgate task gsm8k")[0]
        self.assertEqual(task[-3:-1], ["4.7", "0.678"])
        self.assertEqual(self.row(out, "always-strong")[0][2], "0.857")
        self.assertEqual(self.row(out, "always-cheap")[0][2], "0.638")
        proc = run("replay", "--policy",
                   ROOT / "bench" / "replay" / "gsm8k-tasks.yaml",
                   "--task", "nope", path)
        self.assertEqual(proc.returncode, 1)
        self.assertIn("no task nope", proc.stderr)

    def test_mmlu_says_output_tokens_are_guessed(self):
        d = harness.need_shared(self, "data/routellm-evals/mmlu")
        harness.need_shared(self, LITELLM)
        files = sorted(str(p) for p in d.glob("mmlu_*.csv"))
        out = self.replay("mmlu.yaml", *files)
        self.assertIn("14042 items", out)
        self.assertIn("no answer text", out)
        self.assertEqual(self.row(out, "always-strong")[0][2], "0.806")
        self.assertEqual(self.row(out, "always-cheap")[0][2], "0.681")
        self.assertEqual(self.row(out, "random")[0][1], "67.8%")

    def test_mt_bench_scores(self):
        path = harness.need_shared(
            self, "data/routellm-evals/mt_bench_judgements.jsonl")
        harness.need_shared(self, LITELLM)
        out = self.replay("mt-bench.yaml", path)
        self.assertIn("160 items", out)
        self.assertEqual(self.row(out, "always-strong")[0][2], "9.228")
        self.assertEqual(self.row(out, "always-cheap")[0][2], "8.341")
        self.assertEqual(self.row(out, "random")[0][1], "48.1%")

    def test_alpaca_eval_discrete_win_rate(self):
        path = harness.need_shared(
            self, "data/alpaca-eval-2/judgments_vs_gpt4_1106_preview.jsonl")
        harness.need_shared(self, LITELLM)
        wins = ties = n = 0
        with open(path) as f:
            for line in f:
                j = json.loads(line)
                if j["generator_2"] != "gpt-3.5-turbo-1106":
                    continue
                n += 1
                wins += j["preference"] > 1.5
                ties += j["preference"] == 1.5
        want = round(Fraction((2 * wins + ties) * 1000, 2 * n))
        proc = run("replay", "--policy", FIX / "alpaca-policy.yaml", path)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        cheap = self.row(proc.stdout, "always-cheap")[0]
        self.assertEqual(cheap[2], "0.%03d" % want)
        self.assertIn("805 items", proc.stdout)


if __name__ == "__main__":
    unittest.main()
