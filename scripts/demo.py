#!/usr/bin/env python3
"""The `make demo` job: a provider simulator and the gateway with a SQLite
ledger, a mixed workload of several tasks sent concurrently (plain and
streamed), repeated asks and caller feedback, the report, and two checks:
the total spend against an independent sum, and cost per useful outcome,
useful outcomes and rework rate by task and model, which must be the same
in `tollgate report --format json`, the HTML file `tollgate report
--format html` writes, and the dashboard's data (/dashboard/data.json,
fetched as the admin after logging in) and page.

Where shared data exists ($TOLLGATE_SHARED, default ../shared) the workload
replays real material: ShareGPT conversations, the recorded GPT-4 and
Mixtral answers to GSM8K, prices from the LiteLLM table. Elsewhere it uses
a workload generated here. Data sets are read in place, never copied.
"""
import csv
import concurrent.futures as cf
import html.parser
import http.client
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
from decimal import ROUND_HALF_EVEN, Decimal

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.environ.get("TOLLGATE_SHARED",
                        os.path.join(os.path.dirname(ROOT), "shared"))
GATEWAY = os.environ.get("TOLLGATE_BIN", os.path.join(ROOT, "tollgate"))
SIM = os.path.join(ROOT, "tools", "provider-sim", "provider-sim")
BUNDLE_DIR = os.path.join(ROOT, "build", "dashboard")
LITELLM = os.path.join(SHARED, "data", "llm-prices", "litellm",
                       "model_prices_and_context_window.json")
GSM8K = os.path.join(SHARED, "data", "routellm-evals", "gsm8k_responses.csv")
SHAREGPT = os.path.join(SHARED, "data", "sharegpt-1k-sample",
                        "sharegpt_1000_conversations.jsonl")
STRONG = "gpt-4-1106-preview"
WEAK = "mistralai/Mixtral-8x7B-Instruct-v0.1"
ADMIN_ENV = "DEMO_ADMIN_KEY"
ADMIN_KEY = "tg-demo-admin"

# Models the demo configures: name -> (upstream id, LiteLLM entry, own
# price per million tokens used when the LiteLLM table is absent).
MODELS = {
    "gpt-4o-mini": ("gpt-4o-mini", "gpt-4o-mini", ("0.15", "0.075", "0.60")),
    "gpt-4o": ("gpt-4o", "gpt-4o", ("2.50", "1.25", "10.00")),
    "gpt-4-turbo-2023": (STRONG, STRONG, ("10.00", "10.00", "30.00")),
    "mixtral-8x7b": (WEAK, "together_ai/" + WEAK, ("0.60", "0.60", "0.60")),
}

KEYS = [("support-bot", "support", "support-chat", "tg-demo-support"),
        ("tutor-app", "education", "math-tutor", "tg-demo-tutor"),
        ("legal-tools", "legal", "contract-summary", "tg-demo-legal"),
        ("triage-bot", "support", "ticket-triage", "tg-demo-triage")]
SECRET_OF = {k[2]: k[3] for k in KEYS}

# A task with a check on a cheap-first route: an answer under 150
# characters fails it and the call moves up a tier (an escalation). Two
# budgets, so the dashboard has some to show.
POLICY = """\
tasks:
  - name: ticket-triage
    route: [gpt-4o-mini, gpt-4o]
    requested_model: override
    checks: {min_chars: 150}
    on_check_fail: escalate
    max_attempts: 2
budgets:
  - scope: team
    name: support
    period: month
    limit_usd: "25"
  - scope: global
    period: total
    limit_usd: "100"
"""

# The figures that must agree, per task and model and in the total.
AGREE = ("cost_per_useful_usd", "useful", "rework_rate")


def fail(message):
    sys.exit("demo: FAILED: " + message)


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


def model_lines(have_prices):
    lines = ["models:"]
    for tier, (name, (upstream, entry, own)) in enumerate(MODELS.items()):
        lines += [f"  - name: {name}", "    provider: sim",
                  f"    upstream: {upstream}", f"    tier: {tier}"]
        if have_prices:
            lines.append(f"    price_entry: {entry}")
        else:
            lines += ["    price:", f'      input: "{own[0]}"',
                      f'      cached_input: "{own[1]}"',
                      f'      output: "{own[2]}"']
    return lines


def key_lines():
    lines = ["keys:"]
    for name, team, task, secret in KEYS:
        digest = subprocess.run([GATEWAY, "hash-key", secret], text=True,
                                capture_output=True, check=True).stdout
        lines += [f"  - name: {name}", f"    sha256: {digest.strip()}",
                  f"    team: {team}", f"    owner: {name}@example.com",
                  f"    default_task: {task}"]
    return lines


def write_config(work, sim_port, have_prices):
    lines = [
        "listen: 127.0.0.1:0",
        f"ledger: {work}/ledger.db",
        "log_level: warn",
        f"admin_key_env: {ADMIN_ENV}",
    ]
    if have_prices:
        lines.append(f"prices: {LITELLM}")
    lines += ["providers:", "  - name: sim", "    kind: openai-compatible",
              f"    base_url: http://127.0.0.1:{sim_port}/v1",
              "    api_key_env: DEMO_PROVIDER_KEY"]
    lines += model_lines(have_prices) + key_lines()
    path = os.path.join(work, "tollgate.yaml")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n" + POLICY)
    return path


# ---------------------------------------------------------------- workload


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


def triage_workload(n, rng):
    """Tickets for the task with a check: the route starts at gpt-4o-mini
    whatever the caller asks, and escalates the answers that fail."""
    words = ("printer login vpn laptop screen email slow crash badge "
             "wifi").split()
    calls = []
    for i in range(n):
        text = " ".join(rng.choice(words) for _ in range(rng.randint(5, 30)))
        calls.append(("ticket-triage", "gpt-4o", [{
            "role": "user",
            "content": f"Triage ticket T-{1000 + i}: {text}"}]))
    return calls


def faults():
    return [("support-chat", "gpt-4o-mini",
             [{"role": "user", "content": f"help sim:fault={f}"}])
            for f in ("500", "503", "429", "cut", "cut", "malformed")]


def build_workload(rng, have_data):
    if have_data:
        calls = sharegpt_workload(150) + gsm8k_workload(150)
        docs = [m["content"] for _, _, msgs in calls[:30] for m in msgs
                if m["role"] == "user"][:30]
    else:
        calls = generated_workload(150, rng)
        docs = [" ".join(["clause"] * rng.randint(50, 400)) for _ in range(30)]
    # Its own generator, so the older parts of the workload stay as they
    # were.
    calls += triage_workload(40, random.Random(11))
    calls += summarize_workload(rng, docs) + faults()
    rng.shuffle(calls)
    return calls


# ---------------------------------------------------------------- HTTP


def request(port, method, path, body=None, headers=None):
    """One request to 127.0.0.1:port; returns (status, headers with
    lowercased names, body bytes), or (0, {}, b"") when it broke."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request(method, path, body, headers or {})
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
    except (OSError, http.client.HTTPException):
        return 0, {}, b""
    finally:
        conn.close()


def send(port, task, model, msgs, stream, extra=None):
    """One chat call; returns (status, outcome id or None)."""
    body = {"model": model, "messages": msgs}
    if stream:
        body["stream"] = True
    headers = {"Authorization": f"Bearer {SECRET_OF[task]}",
               "Content-Type": "application/json",
               "X-Tollgate-Task": task}
    headers.update(extra or {})
    status, hdrs, _ = request(port, "POST", "/v1/chat/completions",
                              json.dumps(body), headers)
    return status, hdrs.get("x-tollgate-outcome")


def send_all(port, calls, extras=None):
    """Sends calls 16 at a time, every second one streamed (except the
    checked task's: a stream held for its check is the routing work's,
    not the demo's); returns their (status, outcome id) in order."""
    extras = extras or {}
    with cf.ThreadPoolExecutor(16) as pool:
        futs = [pool.submit(send, port, task, model, msgs,
                            i % 2 == 1 and task != "ticket-triage",
                            extras.get(i))
                for i, (task, model, msgs) in enumerate(calls)]
        return [f.result() for f in futs]


def wait_written(port, n):
    """Waits until the ledger has committed n outcomes, so the dashboard
    reads what the report will read after the gateway stops."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        status, _, body = request(port, "GET", "/healthz")
        st = json.loads(body) if status == 200 else {}
        led = st.get("ledger", {})
        if led.get("written", 0) >= n and led.get("queued", 1) == 0:
            return
        time.sleep(0.02)
    fail(f"the ledger did not reach {n} outcomes")


# ------------------------------------------------- rework and feedback


def pick(calls, results, task, n, model=None):
    """Indices of the first n calls of task (and model) answered 200."""
    out = []
    for i, ((t, m, msgs), (status, oid)) in enumerate(zip(calls, results)):
        if (t != task or (model and m != model) or status != 200
                or oid is None or "sim:fault" in msgs[-1]["content"]):
            continue
        out.append(i)
        if len(out) == n:
            break
    return out


def ascii_upper(text):
    return "".join(c.upper() if c.isascii() else c for c in text)


def repeats(calls, results):
    """Asks sent again by the same key and task: rework. One differs in
    case and trailing punctuation, which the rework key ignores."""
    chosen = (pick(calls, results, "support-chat", 6)
              + pick(calls, results, "math-tutor", 4)
              + pick(calls, results, "ticket-triage", 4))
    again = [calls[i] for i in chosen]
    task, model, msgs = again[6]
    changed = dict(msgs[-1], content=ascii_upper(msgs[-1]["content"]) + " ?")
    again[6] = (task, model, msgs[:-1] + [changed])
    return again


def post_feedback(port, task, outcome_id, verdict):
    status, _, body = request(
        port, "POST", f"/v1/outcomes/{outcome_id}/feedback",
        json.dumps(verdict),
        {"Authorization": f"Bearer {SECRET_OF[task]}",
         "Content-Type": "application/json"})
    if status != 200 or json.loads(body).get("outcome_id") != outcome_id:
        fail(f"feedback on {outcome_id}: {status} {body[:200]!r}")


def feedback(port, calls, results):
    """Callers judge some answers: POST useful=false on six, useful=true
    with a score on one. Returns the outcome that a later call judges
    through the x-tollgate-feedback header."""
    bad = (pick(calls, results, "support-chat", 3)
           + pick(calls, results, "math-tutor", 3, "mixtral-8x7b")
           + pick(calls, results, "ticket-triage", 1))
    by_header = bad.pop(5)
    for i in bad:
        post_feedback(port, calls[i][0], results[i][1],
                      {"useful": False, "note": "wrong; asked again"})
    for i in pick(calls, results, "contract-summary", 1):
        post_feedback(port, calls[i][0], results[i][1],
                      {"useful": True, "score": 0.9, "note": "clear"})
    return results[by_header][1]


# ---------------------------------------------------------------- dashboard


def login(port):
    """The admin logs in once; returns the session cookie."""
    form = urllib.parse.urlencode({"key": ADMIN_KEY})
    status, hdrs, body = request(
        port, "POST", "/dashboard/login", form,
        {"Content-Type": "application/x-www-form-urlencoded"})
    cookie = hdrs.get("set-cookie", "")
    if status != 303 or not cookie.startswith("tollgate_session="):
        fail(f"dashboard login answered {status}: {body[:200]!r}")
    return cookie.split(";", 1)[0]


def dashboard(port):
    """The page's data as the admin: (data.json, the page's inlined data
    or the reason there is no page)."""
    cookie = {"Cookie": login(port)}
    status, _, body = request(port, "GET", "/dashboard/data.json", None,
                              cookie)
    if status != 200:
        fail(f"/dashboard/data.json answered {status}: {body[:300]!r}")
    data = json.loads(body, parse_float=Decimal)
    status, _, page = request(port, "GET", "/dashboard", None, cookie)
    if status != 200:
        return data, f"/dashboard answered {status}: " + error_text(page)
    return data, inlined_data(page.decode("utf-8"))


def error_text(body):
    try:
        return json.loads(body)["error"]["message"]
    except (ValueError, KeyError, TypeError):
        return body[:200].decode("utf-8", "replace")


def inlined_data(page):
    """The JSON the page carries in its #tollgate-data script block."""
    m = re.search(r'<script type="application/json" id="tollgate-data">'
                  r"(.*?)</script>", page, re.S)
    if m is None:
        fail("the page has no #tollgate-data block")
    return json.loads(m.group(1), parse_float=Decimal)


def ensure_bundle():
    """None when the bundle is there (built now if it can be), else why
    not."""
    bundle = os.environ["TOLLGATE_DASHBOARD_DIR"]
    if os.path.exists(os.path.join(bundle, "dashboard.js")):
        return None
    if os.path.realpath(bundle) != os.path.realpath(BUNDLE_DIR):
        return f"no bundle in TOLLGATE_DASHBOARD_DIR={bundle}"
    if shutil.which("npm") is None:
        return f"{BUNDLE_DIR} missing and npm is not installed"
    print("demo: building the dashboard bundle (scripts/build-dashboard.sh)")
    out = subprocess.run([os.path.join(ROOT, "scripts", "build-dashboard.sh")],
                         capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        return "build-dashboard.sh failed: " + out.stderr.strip()[-300:]
    return None


def write_html(ledger, page, no_bundle):
    """`tollgate report --format html` into page; None, or why not."""
    if no_bundle is not None:
        return no_bundle
    out = subprocess.run([GATEWAY, "report", "--ledger", ledger, "--format",
                          "html", "--out", page], capture_output=True,
                         text=True)
    if out.returncode != 0:
        return "report --format html: " + out.stderr.strip()
    return None


# ------------------------------------------------- the page in a browser


class Figures(html.parser.HTMLParser):
    """Collects data-figure -> [data-value, shown text] from a DOM."""

    def __init__(self):
        super().__init__()
        self.figures = {}
        self._open = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "data-figure" in a:
            self._open = a["data-figure"]
            self.figures[self._open] = [a.get("data-value"), ""]

    def handle_data(self, data):
        if self._open:
            self.figures[self._open][1] += data

    def handle_endtag(self, tag):
        self._open = None


def usd_shown(text):
    if text is None:
        return "n/a"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "$" + text


def render(page):
    """The figures the page shows once its script ran in headless
    Chromium (Debian's chromium), or None without a browser."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        print("demo: chromium not found: the HTML figures are read from "
              "the data the page inlines")
        return None
    dom = subprocess.run([browser, "--headless", "--no-sandbox",
                          "--disable-gpu", "--dump-dom", "file://" + page],
                         capture_output=True, text=True, timeout=120)
    if dom.returncode != 0 or 'data-figure="rows.' not in dom.stdout:
        print("demo: chromium could not render the page ("
              + dom.stderr.strip()[-200:] + "): its figures are read from "
              "the data it inlines")
        return None
    parser = Figures()
    parser.feed(dom.stdout)
    return parser.figures


def shown_figures(figures, report):
    """The rendered page as rows like the report's: each figure's exact
    value, after checking that the text shown is that value."""
    rows = []
    for i, row in enumerate(report["rows"]):
        seen = {"task": row["task"], "model": row["model"]}
        value, shown = figures[f"rows.{i}.useful"]
        if shown != value:
            fail(f"the page shows {shown} useful for rows.{i}={value}")
        seen["useful"] = int(value)
        value, shown = figures[f"rows.{i}.cost_per_useful_usd"]
        value = None if value == "null" else value
        if shown != usd_shown(value):
            fail(f"the page shows {shown} for cost per useful {value}")
        seen["cost_per_useful_usd"] = value
        value = figures[f"rows.{i}.rework_rate"][0]
        seen["rework_rate"] = None if value == "null" else Decimal(value)
        rows.append(seen)
    return {"rows": rows, "total": total_shown(figures)}


def total_shown(figures):
    cost = figures["total.cost_per_useful_usd"][0]
    rate = figures["total.rework_rate"][0]
    return {"cost_per_useful_usd": None if cost == "null" else cost,
            "useful": int(figures["total.useful"][0]),
            "rework_rate": None if rate == "null" else Decimal(rate)}


# ---------------------------------------------------------------- agreement


def by_group(report):
    """(task, model) and TOTAL -> the figures that must agree."""
    out = {(r["task"], r["model"]): tuple(r[f] for f in AGREE)
           for r in report["rows"]}
    out[("TOTAL", "")] = tuple(report["total"][f] for f in AGREE)
    return out


def compare(sources):
    """Fails unless every source has the first one's figures."""
    (base_name, base), *others = sources.items()
    want = by_group(base)
    for name, report in others:
        got = by_group(report)
        for group in sorted(set(want) | set(got)):
            if want.get(group) != got.get(group):
                fail(f"{name} says {group} = {got.get(group)}, "
                     f"{base_name} says {want.get(group)} "
                     f"({', '.join(AGREE)})")


def print_figures(report):
    print("\ndemo: cost per useful outcome and rework, by task and model")
    head = ("TASK", "MODEL", "OUTCOMES", "USEFUL", "NOT_USEFUL_FB",
            "REPEATS", "EXTRA_ATTEMPTS", "REWORK_RATE", "USD/USEFUL")
    fmt = "{:<17} {:<17} {:>8} {:>6} {:>13} {:>7} {:>14} {:>11} {:>15}"
    print(fmt.format(*head))
    for r in report["rows"] + [dict(report["total"], task="TOTAL",
                                    model="-")]:
        rate = r["rework_rate"]
        print(fmt.format(r["task"], r["model"], r["outcomes"], r["useful"],
                         r["feedback_negative"], r["repeats"],
                         r["extra_attempts"],
                         "n/a" if rate is None else f"{rate:.4f}",
                         r["cost_per_useful_usd"] or "n/a"))


def print_budgets(data):
    for b in data.get("budgets", []):
        who = b["scope"] + ("/" + b["name"] if b["name"] else "")
        print(f"demo: budget {who} ({b['period']}): spent "
              f"${b['spent_usd']} of ${b['limit_usd']} "
              f"(share used {b['used_rate']})")


# ---------------------------------------------------------------- the total


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
    _, _, body = request(sim_port, "GET", "/_sim/usage")
    total = Decimal(0)
    n = 0
    for r in json.loads(body):
        u = r.get("usage")
        if not u:
            continue
        inp, cached, out = prices[r["model"]]
        c = (u.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
        total += (u["prompt_tokens"] - c) * inp + c * cached
        total += u["completion_tokens"] * out
        n += 1
    return total.quantize(Decimal("0.000000000001"), ROUND_HALF_EVEN), n


def report_json(ledger):
    out = subprocess.run([GATEWAY, "report", "--ledger", ledger, "--by",
                          "task,model", "--format", "json"], check=True,
                         capture_output=True, text=True).stdout
    with open(os.path.join(os.path.dirname(ledger), "report.json"), "w") as f:
        f.write(out)
    return json.loads(out, parse_float=Decimal)


# ---------------------------------------------------------------- the run


def start_services(work, have_data):
    sim_cmd = [SIM, "--listen", "127.0.0.1:0", "--default-latency", "40,1",
               "--key", "demo-provider-key"]
    if have_data:
        sim_cmd += ["--replay-routellm", GSM8K]
    sim, sim_port = start(sim_cmd, "provider-sim listening", f"{work}/sim.log")
    os.environ["DEMO_PROVIDER_KEY"] = "demo-provider-key"
    os.environ[ADMIN_ENV] = ADMIN_KEY
    cfg = write_config(work, sim_port, have_data)
    gw, port = start([GATEWAY, "serve", "--config", cfg], "tollgate listening",
                     f"{work}/gateway.log")
    return sim, sim_port, gw, port


def run_workload(port, calls):
    print(f"demo: sending {len(calls)} calls, 16 at a time, about half "
          "streamed")
    t0 = time.time()
    results = send_all(port, calls)
    ok = sum(1 for s, _ in results if s == 200)
    print(f"demo: {ok} of {len(calls)} answered 200 in "
          f"{time.time() - t0:.1f} s ({len(calls) - ok} failed on purpose: "
          "faults asked of the simulator)")
    return results


def run_rework(port, calls, results):
    judged = feedback(port, calls, results)
    again = repeats(calls, results)
    extras = {7: {"x-tollgate-feedback": f"{judged} not-useful"}}
    rerun = send_all(port, again, extras)
    if any(s != 200 for s, _ in rerun):
        fail(f"a repeated ask failed: {[s for s, _ in rerun]}")
    print(f"demo: callers judged 8 answers (6 not useful and 1 useful by "
          f"POST /v1/outcomes/ID/feedback, 1 not useful by the "
          f"x-tollgate-feedback header) and asked {len(again)} things again")
    return len(again)


def check_agreement(work, report, data, page_data, no_bundle):
    """The JSON report, the HTML file (its data, and what Chromium shows),
    /dashboard/data.json and the /dashboard page must agree."""
    ledger = f"{work}/ledger.db"
    page = f"{work}/report.html"
    sources = {"tollgate report --format json": report,
               "/dashboard/data.json": data["report"]}
    skipped = []
    if isinstance(page_data, str) and no_bundle is None:
        fail(page_data)
    if not isinstance(page_data, str):
        sources["the /dashboard page"] = page_data["report"]
    why = write_html(ledger, page, no_bundle)
    if why is None:
        print(f"demo: wrote {page} (tollgate report --format html)")
        with open(page) as f:
            sources[page] = inlined_data(f.read())["report"]
        figures = render(page)
        if figures is not None:
            sources[page + " in chromium"] = shown_figures(figures, report)
    else:
        skipped.append(why)
    compare(sources)
    print("demo: compared " + "; ".join(sources))
    return skipped


def main():
    rng = random.Random(7)
    have_data = all(os.path.exists(p) for p in (LITELLM, GSM8K, SHAREGPT))
    os.environ.setdefault("TOLLGATE_DASHBOARD_DIR", BUNDLE_DIR)
    no_bundle = ensure_bundle()
    work = tempfile.mkdtemp(prefix="tollgate-demo.")
    print(f"demo: working in {work}")
    if not have_data:
        print(f"demo: {SHARED}/data not found; using a generated workload "
              "and the demo's own prices")
    sim, sim_port, gw, port = start_services(work, have_data)
    try:
        run(work, rng, have_data, no_bundle, sim_port, gw, port)
    finally:
        for proc in (gw, sim):
            if proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=60)


def run(work, rng, have_data, no_bundle, sim_port, gw, port):
    calls = build_workload(rng, have_data)
    results = run_workload(port, calls)
    n_again = run_rework(port, calls, results)
    wait_written(port, len(calls) + n_again)
    data, page_data = dashboard(port)

    gw.send_signal(signal.SIGTERM)   # drains: the ledger is flushed
    gw.wait(timeout=60)
    print()
    ledger = f"{work}/ledger.db"
    subprocess.run([GATEWAY, "report", "--ledger", ledger,
                    "--by", "task,model"], check=True)
    report = report_json(ledger)
    skipped = check_agreement(work, report, data, page_data, no_bundle)
    print_figures(report)
    print_budgets(data)
    for why in skipped:
        print(f"demo: SKIP the HTML comparison: {why}")
    if skipped:
        print("demo: report and dashboard agree (HTML skipped)")
    else:
        print("demo: report, HTML and dashboard agree")

    ledger_total = Decimal(report["total"]["spend_usd"])
    expected, n = independent_total(
        sim_port, litellm_prices() if have_data else own_prices())
    print(f"\ndemo: ledger total spend   ${ledger_total}")
    print(f"demo: independent total    ${expected}  (simulator usage of "
          f"{n} answers x {'LiteLLM' if have_data else 'demo'} prices, "
          "in Python decimals)")
    if ledger_total != expected:
        sys.exit("demo: MISMATCH between the ledger and the independent sum")
    print("demo: they agree to the picodollar")


if __name__ == "__main__":
    main()
