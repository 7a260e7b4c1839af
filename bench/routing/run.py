#!/usr/bin/env python3
"""bench/routing: the 1,319 GSM8K problems through the real gateway, with
three task routes side by side, from one run.

The provider simulator replays RouteLLM's recorded answers
(--replay-routellm gsm8k_responses.csv) for Mixtral-8x7B and
gpt-4-1106-preview on its virtual clock, so nothing waits on wall time.
The release gateway (./tollgate, --test-clock) prices both from LiteLLM's
table in the shared data and routes each problem three times:

  cheap-first    route [mixtral, gpt-4], check final_number, escalate
  always-strong  route [gpt-4]
  always-cheap   route [mixtral]

The data set's label for the answer served (the model it came from) is
the caller's verdict: it is posted as feedback when the gateway serves
POST /v1/outcomes/{id}/feedback, and accuracy is counted from it either
way. Spend is the ledger's exact sum of picodollars per task. Prints one
table. Usage: bench/routing/run.py [--limit N] [--jobs N]
"""
import argparse
import csv
import json
import os
import sqlite3
import sys
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "e2e"))
import harness  # noqa: E402
import gateway  # noqa: E402
from gateway import Gateway  # noqa: E402

MIXTRAL = "mistralai/Mixtral-8x7B-Instruct-v0.1"
GPT4 = "gpt-4-1106-preview"

MODELS = [
    {"name": "mixtral", "upstream": MIXTRAL, "tier": 1,
     "price_entry": "together_ai/" + MIXTRAL},
    {"name": "gpt-4", "upstream": GPT4, "tier": 3, "price_entry": GPT4},
]

TASKS = """tasks:
  - name: cheap-first
    route: [mixtral, gpt-4]
    checks: {final_number: true}
    on_check_fail: escalate
    max_attempts: 2
  - name: always-strong
    route: [gpt-4]
  - name: always-cheap
    route: [mixtral]
"""
POLICIES = ["cheap-first", "always-strong", "always-cheap"]


def usd(pico):
    return "$%d.%012d" % divmod(pico, 10**12)


def load_problems(path):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return [(r["prompt"], {MIXTRAL: r[MIXTRAL] == "True",
                           GPT4: r[GPT4] == "True"},
             {MIXTRAL: r[MIXTRAL + "_response"],
              GPT4: r[GPT4 + "_response"]}) for r in rows]


class Run:
    """One policy's calls: per problem, the outcome id and the model
    whose answer was served."""

    def __init__(self, gw, policy, problems):
        self.gw, self.policy, self.problems = gw, policy, problems
        self.served = [None] * len(problems)
        self.errors = []
        self.lock = threading.Lock()

    def one(self, i):
        prompt = self.problems[i][0]
        body = {"model": "mixtral",
                "messages": [{"role": "user", "content": prompt}]}
        status, headers, data = self.gw.chat(
            body, headers={"X-Tollgate-Task": self.policy})
        if status != 200:
            with self.lock:
                self.errors.append((i, status, data[:200]))
            return
        self.served[i] = (headers["x-tollgate-outcome"],
                          json.loads(data)["model"])

    def all(self, jobs):
        todo = list(range(len(self.problems)))
        lock = threading.Lock()

        def worker():
            while True:
                with lock:
                    if not todo:
                        return
                    i = todo.pop()
                self.one(i)
        threads = [threading.Thread(target=worker) for _ in range(jobs)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()


def post_feedback(gw, run):
    """Posts the data set's label for each served answer; False when the
    gateway has no feedback endpoint."""
    for i, served in enumerate(run.served):
        if served is None:
            continue
        outcome_id, model = served
        useful = run.problems[i][1][model]
        status, _, data = gw.post("/v1/outcomes/%s/feedback" % outcome_id,
                                  {"useful": useful})
        if status == 404 and b"unknown_url" in data:
            return False
        if status != 200:
            raise RuntimeError("feedback %s: %d %r"
                               % (outcome_id, status, data))
    return True


def ledger_figures(path):
    db = sqlite3.connect(path)
    try:
        per_task = {}
        for task, n, spend, unpriced, escalated, strong in db.execute(
                "SELECT task, COUNT(*), SUM(cost_pico),"
                " SUM(cost_status != 'priced'), SUM(n_attempts > 1),"
                " SUM(model = 'gpt-4') FROM outcomes GROUP BY task"):
            per_task[task] = {"n": n, "spend": spend or 0,
                              "unpriced": unpriced, "escalated": escalated,
                              "strong": strong}
        return per_task
    finally:
        db.close()


def token_rule_spend(problems, served, policy):
    """The spend the simulator's token rule and LiteLLM's rates give,
    computed here without the gateway: a cross-check of the ledger."""
    rate = {MIXTRAL: (600000, 600000), GPT4: (10000000, 30000000)}
    total = 0
    for (prompt, _, answers), s in zip(problems, served):
        if s is None:
            continue
        asked = [MIXTRAL] if policy != "always-strong" else [GPT4]
        if s[1] == GPT4 and policy == "cheap-first":
            asked.append(GPT4)
        tokens_in = harness.prompt_tokens(
            [{"role": "user", "content": prompt}])
        for model in asked:
            total += (tokens_in * rate[model][0] +
                      harness.count_pieces(answers[model]) * rate[model][1])
    return total


def sim_checks(sim):
    """Every answer the simulator sent was a recorded one."""
    usage = sim.usage()
    hits = sum(1 for u in usage if u.get("replay") == "hit")
    return len(usage), hits


def table(rows):
    head = ("policy", "accuracy", "spend (USD)", "per correct (USD)",
            "gpt-4 answers", "escalated")
    out = [head] + rows
    widths = [max(len(r[c]) for r in out) for c in range(len(head))]
    lines = []
    for k, r in enumerate(out):
        lines.append("  ".join(r[c].ljust(widths[c]) if c == 0
                               else r[c].rjust(widths[c])
                               for c in range(len(head))))
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=4)
    args = ap.parse_args()
    shared = harness.shared_dir()
    data = shared / "data" / "routellm-evals" / "gsm8k_responses.csv"
    prices = (shared / "data" / "llm-prices" / "litellm" /
              "model_prices_and_context_window.json")
    for path in (data, prices):
        if not path.exists():
            print("SKIP bench-routing: %s missing" % path)
            return 0
    gateway.BIN = os.environ.get("TOLLGATE_BIN",
                                 str(harness.ROOT / "tollgate"))
    problems = load_problems(data)
    if args.limit:
        problems = problems[:args.limit]

    sim = harness.Sim(["--clock", "virtual", "--key", "sim-secret",
                       "--replay-routellm", str(data)])
    gw = Gateway(sim.url + "/v1", models=MODELS, extra=TASKS,
                 prices=[str(prices)])
    with open(gw.config) as f:
        text = f.read()
    with open(gw.config, "w") as f:
        f.write(text.replace("log_level: info", "log_level: warn"))
    gw.start()
    try:
        runs = []
        for policy in POLICIES:
            run = Run(gw, policy, problems)
            run.all(args.jobs)
            runs.append(run)
        feedback = all(post_feedback(gw, run) for run in runs)
        gw.wait_written(len(problems) * len(POLICIES), timeout=120)
        answers, hits = sim_checks(sim)
    finally:
        gw.stop()
        sim.stop()

    figures = ledger_figures(gw.ledger)
    rows = []
    checked = 0
    for run in runs:
        f = figures.get(run.policy, {"n": 0, "spend": 0, "unpriced": 0,
                                     "escalated": 0, "strong": 0})
        correct = sum(1 for i, s in enumerate(run.served)
                      if s is not None and run.problems[i][1][s[1]])
        n = len(problems)
        per = usd(f["spend"] // correct) if correct else "-"
        rows.append((run.policy,
                     "%d/%d %.1f%%" % (correct, n, 100.0 * correct / n),
                     usd(f["spend"]), per, str(f["strong"]),
                     str(f["escalated"])))
        expected = token_rule_spend(run.problems, run.served, run.policy)
        if expected != f["spend"]:
            print("WARNING %s: the ledger says %s, the token rule %s"
                  % (run.policy, usd(f["spend"]), usd(expected)))
        else:
            checked += 1
        if run.errors or f["unpriced"] or f["n"] != n:
            print("WARNING %s: %d errors (first %r), %d unpriced, %d "
                  "ledger rows" % (run.policy, len(run.errors),
                                   run.errors[:1], f["unpriced"], f["n"]))
    print("GSM8K through Tollgate: %d problems x 3 policies, prices from "
          "LiteLLM (gpt-4-1106-preview $10/$30, together_ai Mixtral "
          "$0.60/$0.60 per Mtok)" % len(problems))
    print("simulator answers: %d, replayed: %d" % (answers, hits))
    print("correctness: %s" % (
        "posted as caller feedback (POST /v1/outcomes/{id}/feedback)"
        if feedback else
        "the gateway has no POST /v1/outcomes/{id}/feedback yet, so it "
        "is counted here from the data set's label of the answer served"))
    print()
    print(table(rows))
    print()
    print("per correct = spend / correct answers, rounded down to the "
          "picodollar. Spend equals the simulator's token rule at these "
          "rates for %d of 3 policies (tokens are the simulator's pieces, "
          "not the models' own tokenizers)." % checked)
    return 0


if __name__ == "__main__":
    sys.exit(main())
