#!/usr/bin/env python3
"""The `make demo` job: a provider simulator and the gateway with a SQLite
ledger, a mixed workload of several tasks sent concurrently (plain and
streamed), the report, and an independent check of the total spend.

Where shared data exists ($TOLLGATE_SHARED, default ../shared) the workload
replays real material: ShareGPT conversations, the recorded GPT-4 and
Mixtral answers to GSM8K, prices from the LiteLLM table. Elsewhere it uses
a workload generated here. Data sets are read in place, never copied.
"""
import csv
import concurrent.futures as cf
import http.client
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from decimal import Decimal

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.environ.get("TOLLGATE_SHARED",
                        os.path.join(os.path.dirname(ROOT), "shared"))
GATEWAY = os.environ.get("TOLLGATE_BIN", os.path.join(ROOT, "tollgate"))
SIM = os.path.join(ROOT, "tools", "provider-sim", "provider-sim")
LITELLM = os.path.join(SHARED, "data", "llm-prices", "litellm",
                       "model_prices_and_context_window.json")
GSM8K = os.path.join(SHARED, "data", "routellm-evals", "gsm8k_responses.csv")
SHAREGPT = os.path.join(SHARED, "data", "sharegpt-1k-sample",
                        "sharegpt_1000_conversations.jsonl")
STRONG = "gpt-4-1106-preview"
WEAK = "mistralai/Mixtral-8x7B-Instruct-v0.1"

# Models the demo configures: name -> (upstream id, LiteLLM entry, own
# price per million tokens used when the LiteLLM table is absent).
MODELS = {
    "gpt-4o-mini": ("gpt-4o-mini", "gpt-4o-mini", ("0.15", "0.075", "0.60")),
    "gpt-4o": ("gpt-4o", "gpt-4o", ("2.50", "1.25", "10.00")),
    "gpt-4-turbo-2023": (STRONG, STRONG, ("10.00", "10.00", "30.00")),
    "mixtral-8x7b": (WEAK, "together_ai/" + WEAK, ("0.60", "0.60", "0.60")),
}


def start(cmd, ready_prefix, log_path):
    log = open(log_path, "w")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log,
                            text=True)
    line = proc.stdout.readline()
    if not line.startswith(ready_prefix):
        proc.kill()
        sys.exit(f"demo: {cmd[0]} did not start (see {log_path})")
    port = int(line.strip().rsplit(":", 1)[1])
    return proc, port


def write_config(work, sim_port, have_prices, keys):
    lines = [
        "listen: 127.0.0.1:0",
        f"ledger: {work}/ledger.db",
        "log_level: warn",
    ]
    if have_prices:
        lines.append(f"prices: {LITELLM}")
    lines += ["providers:", "  - name: sim", "    kind: openai-compatible",
              f"    base_url: http://127.0.0.1:{sim_port}/v1",
              "    api_key_env: DEMO_PROVIDER_KEY", "models:"]
    for tier, (name, (upstream, entry, own)) in enumerate(MODELS.items()):
        lines += [f"  - name: {name}", "    provider: sim",
                  f"    upstream: {upstream}", f"    tier: {tier}"]
        if have_prices:
            lines.append(f"    price_entry: {entry}")
        else:
            lines += ["    price:", f'      input: "{own[0]}"',
                      f'      cached_input: "{own[1]}"',
                      f'      output: "{own[2]}"']
    lines.append("keys:")
    for name, team, task, secret in keys:
        digest = subprocess.run([GATEWAY, "hash-key", secret], text=True,
                                capture_output=True, check=True).stdout
        lines += [f"  - name: {name}", f"    sha256: {digest.strip()}",
                  f"    team: {team}", f"    owner: {name}@example.com",
                  f"    default_task: {task}"]
    path = os.path.join(work, "tollgate.yaml")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def sharegpt_workload(n):
    calls = []
    with open(SHAREGPT) as f:
        for line in f:
            conv = json.loads(line)["conversations"]
            msgs = []
            for turn in conv:
                role = {"human": "user", "gpt": "assistant",
                        "system": "system"}.get(turn["from"])
                if role is None:
                    continue
                msgs.append({"role": role, "content": turn["value"]})
                if role == "user" and len(msgs) >= 3:
                    break
            if msgs and msgs[-1]["role"] == "user":
                calls.append(("support-chat", "gpt-4o-mini", msgs))
            if len(calls) >= n:
                break
    return calls


def gsm8k_workload(n):
    calls = []
    with open(GSM8K, newline="") as f:
        for i, row in enumerate(csv.DictReader(f)):
            if i >= n:
                break
            model = "gpt-4-turbo-2023" if i % 3 == 0 else "mixtral-8x7b"
            calls.append(("math-tutor", model,
                          [{"role": "user", "content": row["prompt"]}]))
    return calls


def generated_workload(n, rng):
    words = ("invoice refund shipping delay account password upgrade "
             "billing plan cancel order warranty").split()
    calls = []
    for i in range(n):
        text = " ".join(rng.choice(words) for _ in range(rng.randint(8, 60)))
        calls.append(("support-chat", "gpt-4o-mini",
                      [{"role": "user", "content": f"Ticket {i}: {text}"}]))
        q = f"What is {rng.randint(2, 99)} times {rng.randint(2, 99)}?"
        model = "gpt-4-turbo-2023" if i % 3 == 0 else "mixtral-8x7b"
        calls.append(("math-tutor", model, [{"role": "user", "content": q}]))
    return calls


def summarize_workload(rng, docs):
    """Long shared instructions resent on every call: the provider caches
    the prefix, so these calls carry cached tokens."""
    system = ("You are a careful analyst. Summarize the document for an "
              "executive audience in three bullet points. " * 60)
    calls = []
    for i, doc in enumerate(docs):
        msgs = [{"role": "system", "content": system},
                {"role": "user", "content": f"Document {i}:\n{doc}"}]
        calls.append(("contract-summary", "gpt-4o", msgs))
    return calls


def faults():
    return [("support-chat", "gpt-4o-mini",
             [{"role": "user", "content": f"help sim:fault={f}"}])
            for f in ("500", "503", "429", "cut", "cut", "malformed")]


def send(port, secret, task, model, msgs, stream):
    body = {"model": model, "messages": msgs}
    if stream:
        body["stream"] = True
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("POST", "/v1/chat/completions", json.dumps(body), {
            "Authorization": f"Bearer {secret}",
            "Content-Type": "application/json",
            "X-Tollgate-Task": task})
        resp = conn.getresponse()
        resp.read()
        return resp.status
    except (OSError, http.client.HTTPException):
        return 0
    finally:
        conn.close()


def litellm_prices():
    with open(LITELLM) as f:
        table = json.load(f, parse_float=Decimal)
    out = {}
    for name, (upstream, entry, _) in MODELS.items():
        e = table[entry]
        inp = Decimal(str(e["input_cost_per_token"]))
        cached = Decimal(str(e.get("cache_read_input_token_cost") or inp))
        out[upstream] = (inp, cached, Decimal(str(e["output_cost_per_token"])))
    return out


def own_prices():
    mega = Decimal(1000000)
    return {up: (Decimal(p[0]) / mega, Decimal(p[1]) / mega,
                 Decimal(p[2]) / mega) for up, _, p in MODELS.values()}


def independent_total(sim_port, prices):
    """Prices every usage the simulator reported, in Python decimals."""
    conn = http.client.HTTPConnection("127.0.0.1", sim_port, timeout=30)
    conn.request("GET", "/_sim/usage")
    records = json.loads(conn.getresponse().read())
    total = Decimal(0)
    n = 0
    for r in records:
        u = r.get("usage")
        if not u:
            continue
        inp, cached, out = prices[r["model"]]
        c = (u.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
        total += (u["prompt_tokens"] - c) * inp + c * cached
        total += u["completion_tokens"] * out
        n += 1
    return total, n


def main():
    rng = random.Random(7)
    have_data = all(os.path.exists(p) for p in (LITELLM, GSM8K, SHAREGPT))
    work = tempfile.mkdtemp(prefix="tollgate-demo.")
    print(f"demo: working in {work}")
    if not have_data:
        print(f"demo: {SHARED}/data not found; using a generated workload "
              "and the demo's own prices")

    sim_cmd = [SIM, "--listen", "127.0.0.1:0", "--default-latency", "40,1",
               "--key", "demo-provider-key"]
    if have_data:
        sim_cmd += ["--replay-routellm", GSM8K]
    sim, sim_port = start(sim_cmd, "provider-sim listening", f"{work}/sim.log")
    os.environ["DEMO_PROVIDER_KEY"] = "demo-provider-key"
    keys = [("support-bot", "support", "support-chat", "tg-demo-support"),
            ("tutor-app", "education", "math-tutor", "tg-demo-tutor"),
            ("legal-tools", "legal", "contract-summary", "tg-demo-legal")]
    cfg = write_config(work, sim_port, have_data, keys)
    gw, port = start([GATEWAY, "serve", "--config", cfg], "tollgate listening",
                     f"{work}/gateway.log")

    if have_data:
        calls = sharegpt_workload(150) + gsm8k_workload(150)
        docs = [m["content"] for _, _, msgs in calls[:30] for m in msgs
                if m["role"] == "user"][:30]
    else:
        calls = generated_workload(150, rng)
        docs = [" ".join(["clause"] * rng.randint(50, 400)) for _ in range(30)]
    calls += summarize_workload(rng, docs) + faults()
    rng.shuffle(calls)
    secret_of = {k[2]: k[3] for k in keys}
    print(f"demo: sending {len(calls)} calls, 16 at a time, about half "
          "streamed")
    t0 = time.time()
    with cf.ThreadPoolExecutor(16) as pool:
        futs = [pool.submit(send, port, secret_of[task], task, model, msgs,
                            i % 2 == 1)
                for i, (task, model, msgs) in enumerate(calls)]
        statuses = [f.result() for f in futs]
    elapsed = time.time() - t0
    ok = sum(1 for s in statuses if s == 200)
    print(f"demo: {ok} of {len(calls)} answered 200 in {elapsed:.1f} s "
          f"({len(calls) - ok} failed on purpose: faults asked of the "
          "simulator)")

    gw.send_signal(signal.SIGTERM)   # drains: the ledger is flushed
    gw.wait(timeout=60)
    print()
    subprocess.run([GATEWAY, "report", "--ledger", f"{work}/ledger.db",
                    "--by", "task,model"], check=True)
    report = json.loads(subprocess.run(
        [GATEWAY, "report", "--ledger", f"{work}/ledger.db", "--format",
         "json"], check=True, capture_output=True, text=True).stdout)
    ledger_total = Decimal(report["total"]["spend_usd"])
    expected, n = independent_total(
        sim_port, litellm_prices() if have_data else own_prices())
    sim.terminate()
    sim.wait(timeout=10)
    expected = expected.quantize(Decimal("0.000000000001"))
    print(f"\ndemo: ledger total spend   ${ledger_total}")
    print(f"demo: independent total    ${expected}  (simulator usage of "
          f"{n} answers x {'LiteLLM' if have_data else 'demo'} prices, "
          "in Python decimals)")
    if ledger_total != expected:
        sys.exit("demo: MISMATCH between the ledger and the independent sum")
    print("demo: they agree to the picodollar")


if __name__ == "__main__":
    main()
