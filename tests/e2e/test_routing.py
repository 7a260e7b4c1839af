"""End-to-end tests of routing (issue 5): start tiers from rules, the
caller's requested model, checks and their verdicts in the ledger,
escalation and re-asks, buffered and checked-after streams, fallbacks on
faults, retries on the virtual clock, the retry budget, errors that are
never retried (BUG-16), context-window overflow (BUG-19), and learned
thresholds that survive a restart.

The real gateway (--test-clock: it starts at 2026-01-01T00:00:00Z and
moves only when a test advances it) runs in front of the provider
simulator on its virtual clock. The simulator answers prose; the answers
that must pass a check (JSON, a refusal, ...) are recorded answers it
replays (--replay-jsonl). Its faults are asked for in the message, so
they hit every model alike: to fail one model and not the next, a small
pass-through (FaultProxy) adds the simulator's own x-sim-fault header to
chosen requests. Errors the simulator cannot make at all (403, a context
overflow) are answered by the pass-through itself, and say so.

Every cost is computed here in integer picodollars from the config
prices and the simulator's token rule."""
import http.client as httpclient
import http.server
import json
import os
import sqlite3
import tempfile
import threading
import unittest
import urllib.parse

import harness
from gateway import Gateway, pico, wait_for

# The gateway's test clock at start (2026-01-01T00:00:00Z).
T0_MS = 1767225600000
# Gateway's first_byte_timeout_ms in the config tests.gateway writes.
FIRST_BYTE_TIMEOUT_MS = 30000

os.environ["TG_E2E_WRONG_KEY"] = "not-the-sim-secret"

PRICE = {
    "cheap": {"input": "0.10", "output": "0.40"},
    "mid": {"input": "1.00", "output": "4.00"},
    "premium": {"input": "10.00", "output": "40.00"},
}
UPSTREAM = {"cheap": "sim-cheap", "mid": "sim-mid", "premium": "sim-premium"}

JSON_OK = '{"name": "Ada", "age": 36}'
JSON_BAD_AGE = '{"name": "Ada", "age": -1}'
REFUSAL = "I can't help with that request."

# Prompts whose answers are recorded: (upstream model, prompt, answer).
P_JSON_OK = "checks: give Ada as JSON"
P_SCHEMA = "checks: give Ada with a bad age"
P_SUMMARY = "checks: summarise"
P_REFUSE = "checks: something refused"
P_ESCALATE = "Extract the person as JSON. sim:words=6"
P_REASK = "Give the person as JSON."
P_REASK_FIX = "Fix: json: invalid at byte 0"
P_REASK2 = "Give the other person as JSON."
P_STREAM = "Stream the person as JSON. sim:words=5"
P_AUTO = "Auto: the person as JSON."
PROSE_REASK = "The person is Ada, aged 36."
PROSE_REASK2 = "Ada is 36."
SCHEMA_FAILURE = "schema: /age: below minimum 0"

REPLAY = [
    ("sim-cheap", P_JSON_OK, JSON_OK),
    ("sim-cheap", P_SCHEMA, JSON_BAD_AGE),
    ("sim-cheap", P_SUMMARY, "Summary: Ada is 36."),
    ("sim-cheap", P_REFUSE, REFUSAL),
    ("sim-premium", P_ESCALATE, JSON_OK),
    ("sim-cheap", P_REASK, PROSE_REASK),
    ("sim-cheap", P_REASK_FIX, JSON_OK),
    ("sim-cheap", P_REASK2, PROSE_REASK2),
    ("sim-mid", P_REASK2, JSON_OK),
    ("sim-premium", P_STREAM, JSON_OK),
    ("sim-cheap", P_AUTO, JSON_OK),
    ("sim-premium", P_AUTO, JSON_OK),
]

# BUG-19's three overflow messages (SGLang, OpenAI, Anthropic).
OVERFLOW_BODIES = [
    {"object": "error", "message": "The input (40000 tokens) is longer "
     "than the model's context length (32768 tokens).",
     "type": "BadRequestError", "code": 400},
    {"error": {"message": "This model's maximum context length is 32768 "
               "tokens. However, you requested 40512 tokens.",
               "type": "invalid_request_error", "param": "messages",
               "code": "context_length_exceeded"}},
    {"type": "error", "error": {"type": "invalid_request_error",
                                "message": "prompt is too long: 210000 "
                                "tokens > 200000 maximum"}},
]
FORBIDDEN = {"error": {"message": "Project does not have access to model",
                       "type": "invalid_request_error", "param": None,
                       "code": "model_not_found"}}

# A LiteLLM price file with context windows (a config `price:` has none).
WINDOW_PRICES = """{
  "sim-small": {"input_cost_per_token": 0.0000001,
                "output_cost_per_token": 0.0000004,
                "max_input_tokens": 1000, "litellm_provider": "openai",
                "mode": "chat"},
  "sim-large": {"input_cost_per_token": 0.000001,
                "output_cost_per_token": 0.000004,
                "max_input_tokens": 100000, "litellm_provider": "openai",
                "mode": "chat"},
  "sim-large2": {"input_cost_per_token": 0.000002,
                 "output_cost_per_token": 0.000008,
                 "max_input_tokens": 100000, "litellm_provider": "openai",
                 "mode": "chat"}
}
"""
WINDOW_RATES = {"sim-small": (100000, 400000),
                "sim-large": (1000000, 4000000),
                "sim-large2": (2000000, 8000000)}


def _write_fixtures():
    d = tempfile.mkdtemp(prefix="tg-routing-")
    replay = os.path.join(d, "replay.jsonl")
    with open(replay, "w") as f:
        for model, prompt, response in REPLAY:
            f.write(json.dumps({"model": model, "prompt": prompt,
                                "response": response}) + "\n")
    prices = os.path.join(d, "windows.json")
    with open(prices, "w") as f:
        f.write(WINDOW_PRICES)
    return replay, prices


REPLAY_FILE, WINDOW_FILE = _write_fixtures()


# ------------------------------------------------------------ arithmetic


def user(text):
    return [{"role": "user", "content": text}]


def cost(model, prompt_tokens, completion_tokens):
    """Exact picodollars of one answer of a tier model."""
    return (pico(prompt_tokens, PRICE[model]["input"]) +
            pico(completion_tokens, PRICE[model]["output"]))


def window_cost(upstream, prompt_tokens, completion_tokens):
    rate_in, rate_out = WINDOW_RATES[upstream]
    return prompt_tokens * rate_in + completion_tokens * rate_out


def words(n, start=0):
    """n distinct words, each one simulator piece."""
    return " ".join("w%d" % (start + i) for i in range(n))


# ----------------------------------------------------------- the proxy


class _QuietServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # a stalled answer broken at teardown is expected


class FaultProxy:
    """A pass-through to the simulator for one provider of the gateway.
    `faults` is consumed one entry per request: a simulator fault name
    (sent as its x-sim-fault header), None (pass the request as it is),
    or (status, body) to answer without the simulator, for errors it
    cannot make. `seen` keeps (path, body, entry) per request."""

    def __init__(self, target_url):
        parts = urllib.parse.urlsplit(target_url)
        self.target = (parts.hostname, parts.port)
        self.faults = []
        self.seen = []
        self.lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                proxy._handle(self)

            def log_message(self, *args):
                pass

        self.server = _QuietServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       daemon=True)
        self.thread.start()
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def _entry(self, path, body):
        with self.lock:
            entry = self.faults.pop(0) if self.faults else None
            self.seen.append((path, body, entry))
            return entry

    @staticmethod
    def _reply(h, status, payload):
        data = json.dumps(payload).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        h.send_header("Connection", "close")
        h.end_headers()
        h.wfile.write(data)

    def _handle(self, h):
        body = h.rfile.read(int(h.headers.get("Content-Length") or 0))
        entry = self._entry(h.path, body)
        h.close_connection = True
        if isinstance(entry, tuple):
            self._reply(h, *entry)
            return
        headers = {k: v for k, v in h.headers.items()
                   if k.lower() in ("authorization", "content-type",
                                    "x-api-key", "anthropic-version")}
        if entry is not None:
            headers["x-sim-fault"] = entry
        conn = httpclient.HTTPConnection(*self.target, timeout=3600)
        try:
            conn.request("POST", h.path, body, headers)
            self._relay(h, conn.getresponse())
        except (httpclient.HTTPException, OSError):
            pass  # the simulator cut its answer: cut ours the same way
        finally:
            conn.close()

    @staticmethod
    def _relay(h, resp):
        length = resp.getheader("Content-Length")
        h.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in ("content-length", "transfer-encoding",
                                 "connection", "date", "server"):
                h.send_header(k, v)
        if length is not None:
            h.send_header("Content-Length", length)
        else:
            h.send_header("Transfer-Encoding", "chunked")
        h.send_header("Connection", "close")
        h.end_headers()
        while True:
            data = resp.read1(65536)
            if not data:
                break
            h.wfile.write(data if length is not None
                          else b"%x\r\n%s\r\n" % (len(data), data))
            h.wfile.flush()
        if length is None:
            h.wfile.write(b"0\r\n\r\n")


# ------------------------------------------------------------- helpers


def tier_models(on=None):
    """cheap, mid and premium (tiers 1-3); `on` maps a name to the
    provider that serves it (default: the simulator)."""
    return [{"name": name, "upstream": UPSTREAM[name], "tier": tier,
             "price": PRICE[name], "provider": (on or {}).get(name, "sim")}
            for tier, name in enumerate(("cheap", "mid", "premium"), 1)]


def window_models(on=None):
    return [{"name": name, "upstream": "sim-" + name, "tier": 1,
             "price_entry": "sim-" + name,
             "provider": (on or {}).get(name, "sim")}
            for name in ("small", "large", "large2")]


class RoutingCase(unittest.TestCase):
    """A simulator (virtual clock, replaying REPLAY) and a FaultProxy in
    front of it per test; gateways started by start() are stopped and
    checked (exit 0, no sanitizer report) at the end."""

    def setUp(self):
        self.sim = harness.Sim(["--clock", "virtual", "--key", "sim-secret",
                                "--replay-jsonl", REPLAY_FILE])
        self.proxy = FaultProxy(self.sim.url)
        self.gateways = []

    def tearDown(self):
        try:
            for gw in self.gateways:
                self.stop_checked(gw)
        finally:
            self.sim.stop()
            self.proxy.stop()

    def providers(self):
        return [{"name": "sim", "base_url": self.sim.url + "/v1",
                 "api_key_env": "TG_E2E_SIM_KEY"},
                {"name": "flaky", "base_url": self.proxy.url + "/v1",
                 "api_key_env": "TG_E2E_SIM_KEY"},
                {"name": "badkey", "base_url": self.sim.url + "/v1",
                 "api_key_env": "TG_E2E_WRONG_KEY"},
                {"name": "anth", "kind": "anthropic",
                 "base_url": self.sim.url + "/v1",
                 "api_key_env": "TG_E2E_SIM_KEY"}]

    def start(self, tasks, models=None, prices=None, extra=""):
        gw = Gateway(self.sim.url + "/v1",
                     models=models if models is not None else tier_models(),
                     extra=extra + "tasks:\n" + tasks,
                     providers=self.providers(), prices=prices)
        gw.old_logs = ""
        self.gateways.append(gw)
        return gw.start()

    def stop_checked(self, gw):
        if gw.proc is None or gw.proc.poll() is not None:
            return
        rc = gw.stop()
        log = gw.log()
        self.assertEqual(rc, 0, "gateway exit code; log:\n" + log)
        self.assertNotIn("ERROR: AddressSanitizer", log)
        self.assertNotIn("runtime error:", log)

    def restart(self, gw, tasks=None):
        """Stops the gateway and starts it again on the same ledger, with
        a new `tasks:` block when given."""
        self.stop_checked(gw)
        gw.old_logs += gw.log()
        if tasks is not None:
            with open(gw.config) as f:
                text = f.read()
            head, _, rest = text.partition("tasks:\n")
            tail = rest[rest.index("prices:") if "prices:" in rest
                        else rest.index("providers:"):]
            with open(gw.config, "w") as f:
                f.write(head + "tasks:\n" + tasks + tail)
        return gw.start()

    @staticmethod
    def body(messages, model="cheap", **fields):
        if isinstance(messages, str):
            messages = user(messages)
        out = {"model": model, "messages": messages}
        out.update(fields)
        return out

    def call(self, gw, messages, task, model="cheap", **fields):
        return gw.chat(self.body(messages, model, **fields),
                       headers={"X-Tollgate-Task": task})

    def send(self, gw, messages, task, model="cheap", **fields):
        """Sends without reading the answer; returns the connection."""
        return harness.open_request(
            "POST", gw.url + "/v1/chat/completions",
            self.body(messages, model, **fields),
            {"Authorization": "Bearer tg-key-alpha",
             "X-Tollgate-Task": task}, timeout=60)

    @staticmethod
    def answer(conn):
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data

    def record(self, gw, outcome_id):
        """The outcome's ledger row and its attempts, once written."""
        wait_for(lambda: gw.rows("outcomes", "id = ?", (outcome_id,)))
        return gw.outcome(outcome_id), gw.attempts(outcome_id)

    def assert_attempts(self, attempts, expected):
        """expected: (reason, model, http_status, error_type, checks).
        The error_type of an attempt that failed on the provider's side
        and was followed by another is left to
        TestFallbacks.test_each_failed_attempt_says_why, so that one
        fault does not hide the others."""
        last = len(attempts) - 1

        def error_of(i, att):
            if i < last and i < len(expected) and \
                    expected[i][3].startswith("upstream_"):
                return expected[i][3]
            return att["error_type"]
        got = [(a["reason"], a["model"], a["http_status"], error_of(i, a),
                a["checks"]) for i, a in enumerate(attempts)]
        self.assertEqual(got, expected)

    def sim_bodies(self):
        """The JSON bodies the simulator received, in order."""
        return [json.loads(r["body"]) for r in self.sim.requests()]

    def sent_models(self):
        return [b["model"] for b in self.sim_bodies()]

    @staticmethod
    def content(data):
        return json.loads(data)["choices"][0]["message"]["content"]

    def wait_log(self, gw, text):
        wait_for(lambda: text in gw.log())


# --------------------------------------------------------- start tiers

START_TASKS = """\
  - name: extract
    route: [cheap, mid, premium]
    start_rules:
      - {when: {tools: true}, start_tier: 1}
      - {when: {last_user_matches: "(?i)^prove"}, start_tier: 2}
      - {when: {min_input_tokens: 300}, start_tier: 2}
"""

TOOLS = [{"type": "function", "function": {
    "name": "lookup", "parameters": {"type": "object"}}}]


class TestStartTier(RoutingCase):
    """Rules on the request's features pick the first model."""

    def first_model(self, gw, messages, **fields):
        status, headers, data = self.call(gw, messages, "extract", **fields)
        self.assertEqual(status, 200, data)
        outcome, attempts = self.record(gw, headers["x-tollgate-outcome"])
        self.assertEqual(len(attempts), 1)
        self.assertEqual(attempts[0]["reason"], "first")
        self.assertEqual(outcome["model"], attempts[0]["model"])
        return attempts[0], outcome

    def test_no_rule_matches_starts_at_the_cheapest_tier(self):
        gw = self.start(START_TASKS)
        text = "hello sim:words=4"
        att, outcome = self.first_model(gw, text)
        self.assertEqual(att["model"], "cheap")
        self.assertEqual(self.sent_models(), ["sim-cheap"])
        self.assertEqual(att["cost_pico"],
                         cost("cheap", harness.prompt_tokens(user(text)), 4))
        self.assertEqual(outcome["cost_pico"], att["cost_pico"])

    def test_tools_start_at_tier_1(self):
        gw = self.start(START_TASKS)
        text = "look it up sim:words=4"
        att, _ = self.first_model(gw, text, tools=TOOLS)
        self.assertEqual(att["model"], "mid")
        self.assertEqual(self.sent_models(), ["sim-mid"])
        self.assertEqual(att["cost_pico"],
                         cost("mid", harness.prompt_tokens(user(text)), 4))

    def test_pattern_reads_the_last_user_turn_only(self):
        gw = self.start(START_TASKS)
        earlier = [{"role": "user", "content": "Prove it"},
                   {"role": "assistant", "content": "ok"},
                   {"role": "user", "content": "thanks sim:words=3"}]
        last = [{"role": "user", "content": "hello"},
                {"role": "assistant", "content": "ok"},
                {"role": "user", "content": "Prove that 2 > 1 sim:words=3"}]
        self.assertEqual(self.first_model(gw, earlier)[0]["model"], "cheap")
        att, _ = self.first_model(gw, last)
        self.assertEqual(att["model"], "premium")
        self.assertEqual(self.sent_models(), ["sim-cheap", "sim-premium"])
        self.assertEqual(att["cost_pico"],
                         cost("premium", harness.prompt_tokens(last), 3))

    def test_large_input_starts_at_tier_2(self):
        gw = self.start(START_TASKS)
        big = words(400) + " sim:words=2"
        self.assertEqual(self.first_model(gw, "short sim:words=2")[0]
                         ["model"], "cheap")
        att, _ = self.first_model(gw, big)
        self.assertEqual(att["model"], "premium")
        self.assertEqual(att["input_tokens"],
                         harness.prompt_tokens(user(big)))


# ----------------------------------------------------- requested model

REQUESTED_TASKS = """\
  - name: t-override
    route: [cheap, mid, premium]
    requested_model: override
  - name: t-honour
    route: [cheap, mid, premium]
    requested_model: honour
  - name: t-map
    route: [cheap, mid, premium]
    requested_model: map
"""


class TestRequestedModel(RoutingCase):
    """The caller's model is overridden, honoured or mapped by tier; the
    ledger keeps both names."""

    def models(self):
        return tier_models() + [
            {"name": "mid-alt", "upstream": "sim-mid-alt", "tier": 2,
             "price": PRICE["mid"]},
            {"name": "outside", "upstream": "sim-outside", "tier": 5,
             "price": PRICE["premium"]}]

    def routed(self, gw, task, asked):
        status, headers, data = self.call(gw, "hi sim:words=2", task,
                                          model=asked)
        self.assertEqual(status, 200, data)
        outcome, attempts = self.record(gw, headers["x-tollgate-outcome"])
        self.assertEqual(outcome["requested_model"], asked)
        self.assertEqual([a["model"] for a in attempts], [outcome["model"]])
        return outcome["model"], json.loads(data)["model"]

    def test_override_routes_to_the_cheapest_tier(self):
        gw = self.start(REQUESTED_TASKS, models=self.models())
        self.assertEqual(self.routed(gw, "t-override", "premium"),
                         ("cheap", "sim-cheap"))

    def test_honour_starts_at_the_asked_model(self):
        gw = self.start(REQUESTED_TASKS, models=self.models())
        self.assertEqual(self.routed(gw, "t-honour", "mid"),
                         ("mid", "sim-mid"))
        self.assertEqual(self.routed(gw, "t-honour", "outside"),
                         ("outside", "sim-outside"))

    def test_map_takes_the_route_model_of_the_same_tier(self):
        gw = self.start(REQUESTED_TASKS, models=self.models())
        self.assertEqual(self.routed(gw, "t-map", "mid-alt"),
                         ("mid", "sim-mid"))
        self.assertEqual(self.routed(gw, "t-map", "premium"),
                         ("premium", "sim-premium"))


# -------------------------------------------------------------- checks

CHECK_TASKS = """\
  - name: c-json
    route: [cheap, mid]
    max_attempts: 1
    checks: {json: true}
  - name: c-schema
    route: [cheap, mid]
    max_attempts: 1
    checks:
      schema:
        type: object
        required: [name, age]
        properties: {age: {type: integer, minimum: 0}}
  - name: c-match
    route: [cheap, mid]
    max_attempts: 1
    checks: {must_match: "(?i)^summary:", must_not_match: "TODO"}
  - name: c-length
    route: [cheap, mid]
    max_attempts: 1
    checks: {min_chars: 20, max_chars: 40}
  - name: c-trunc
    route: [cheap, mid]
    max_attempts: 1
    checks: {no_truncation: true}
  - name: c-refusal
    route: [cheap, mid]
    max_attempts: 1
    checks: {no_refusal: true}
"""


class TestChecks(RoutingCase):
    """Each check's verdict is on the attempt's ledger row; the outcome
    is useful only when every check passed. max_attempts: 1 keeps the
    first answer."""

    def verdict(self, gw, task, text, **fields):
        status, headers, data = self.call(gw, text, task, **fields)
        self.assertEqual(status, 200, data)
        outcome, attempts = self.record(gw, headers["x-tollgate-outcome"])
        self.assertEqual(len(attempts), 1)
        passed = attempts[0]["error_type"] != "check_failed"
        self.assertEqual(outcome["useful"], 1 if passed else 0)
        return attempts[0]["checks"], attempts[0]["error_type"]

    def test_json(self):
        gw = self.start(CHECK_TASKS)
        self.assertEqual(self.verdict(gw, "c-json", P_JSON_OK),
                         ("json=pass", ""))
        self.assertEqual(self.verdict(gw, "c-json", "prose sim:words=3"),
                         ("json=fail", "check_failed"))

    def test_schema(self):
        gw = self.start(CHECK_TASKS)
        self.assertEqual(self.verdict(gw, "c-schema", P_JSON_OK),
                         ("json=pass,schema=pass", ""))
        self.assertEqual(self.verdict(gw, "c-schema", P_SCHEMA),
                         ("json=pass,schema=fail", "check_failed"))

    def test_must_and_must_not_match(self):
        gw = self.start(CHECK_TASKS)
        self.assertEqual(self.verdict(gw, "c-match", P_SUMMARY),
                         ("must_match=pass,must_not_match=pass", ""))
        self.assertEqual(self.verdict(gw, "c-match", "TODO sim:words=3"),
                         ("must_match=fail,must_not_match=pass",
                          "check_failed"))

    def test_length_bounds(self):
        gw = self.start(CHECK_TASKS)
        # Each default word is at least 1 char; 2 words are under 20,
        # 30 words are over 40.
        self.assertEqual(self.verdict(gw, "c-length", "short sim:words=1"),
                         ("min_chars=fail,max_chars=pass", "check_failed"))
        self.assertEqual(self.verdict(gw, "c-length", "long sim:words=30"),
                         ("min_chars=pass,max_chars=fail", "check_failed"))
        self.assertEqual(self.verdict(gw, "c-length", P_JSON_OK),
                         ("min_chars=pass,max_chars=pass", ""))

    def test_finish_reason_length_fails_no_truncation(self):
        gw = self.start(CHECK_TASKS)
        self.assertEqual(self.verdict(gw, "c-trunc", "long sim:words=20",
                                      max_tokens=5),
                         ("no_truncation=fail", "check_failed"))
        self.assertEqual(self.verdict(gw, "c-trunc", "fits sim:words=5",
                                      max_tokens=5),
                         ("no_truncation=pass", ""))

    def test_refusal(self):
        gw = self.start(CHECK_TASKS)
        self.assertEqual(self.verdict(gw, "c-refusal", P_REFUSE),
                         ("no_refusal=fail", "check_failed"))
        self.assertEqual(self.verdict(gw, "c-refusal", P_SUMMARY),
                         ("no_refusal=pass", ""))


# ------------------------------------------------------------- cascade

CASCADE_TASKS = """\
  - name: esc
    route: [cheap, mid, premium]
    checks: {json: true}
    on_check_fail: escalate
  - name: reask
    route: [cheap, mid]
    checks: {json: true}
    on_check_fail: reask
    reask_message: "Fix: {failures}"
  - name: reask2
    route: [cheap, mid, premium]
    checks: {json: true}
    on_check_fail: reask
    reask_message: "Again: {failures}"
"""


class TestCascade(RoutingCase):
    """A failed check moves up a tier or re-asks the same one; every
    attempt is priced and belongs to the one outcome."""

    def test_escalates_until_the_check_passes(self):
        gw = self.start(CASCADE_TASKS)
        status, headers, data = self.call(gw, P_ESCALATE, "esc")
        self.assertEqual(status, 200, data)
        self.assertEqual(self.content(data), JSON_OK)
        outcome, attempts = self.record(gw, headers["x-tollgate-outcome"])
        self.assert_attempts(attempts, [
            ("first", "cheap", 200, "check_failed", "json=fail"),
            ("escalate", "mid", 200, "check_failed", "json=fail"),
            ("escalate", "premium", 200, "", "json=pass")])
        self.assertEqual(self.sent_models(),
                         ["sim-cheap", "sim-mid", "sim-premium"])
        # The escalated tiers get the caller's request as it was.
        for b in self.sim_bodies():
            self.assertEqual(b["messages"], user(P_ESCALATE))
        prompt = harness.prompt_tokens(user(P_ESCALATE))
        costs = [cost("cheap", prompt, 6), cost("mid", prompt, 6),
                 cost("premium", prompt, harness.count_pieces(JSON_OK))]
        self.assertEqual([a["cost_pico"] for a in attempts], costs)
        self.assertEqual(outcome["cost_pico"], sum(costs))
        self.assertEqual((outcome["model"], outcome["useful"],
                          outcome["n_attempts"]), ("premium", 1, 3))

    def test_a_passing_cheap_answer_is_not_escalated(self):
        gw = self.start(CASCADE_TASKS)
        status, headers, data = self.call(gw, P_JSON_OK, "esc")
        self.assertEqual(self.content(data), JSON_OK)
        outcome, attempts = self.record(gw, headers["x-tollgate-outcome"])
        self.assert_attempts(attempts,
                             [("first", "cheap", 200, "", "json=pass")])
        self.assertEqual(self.sent_models(), ["sim-cheap"])
        self.assertEqual(outcome["useful"], 1)

    def test_reask_appends_the_answer_and_the_failure(self):
        gw = self.start(CASCADE_TASKS)
        status, headers, data = self.call(gw, P_REASK, "reask")
        self.assertEqual(status, 200, data)
        self.assertEqual(self.content(data), JSON_OK)
        outcome, attempts = self.record(gw, headers["x-tollgate-outcome"])
        self.assert_attempts(attempts, [
            ("first", "cheap", 200, "check_failed", "json=fail"),
            ("reask", "cheap", 200, "", "json=pass")])
        asked = user(P_REASK) + [
            {"role": "assistant", "content": PROSE_REASK},
            {"role": "user", "content": P_REASK_FIX}]
        self.assertEqual([(b["model"], b["messages"])
                          for b in self.sim_bodies()],
                         [("sim-cheap", user(P_REASK)),
                          ("sim-cheap", asked)])
        costs = [cost("cheap", harness.prompt_tokens(user(P_REASK)),
                      harness.count_pieces(PROSE_REASK)),
                 cost("cheap", harness.prompt_tokens(asked),
                      harness.count_pieces(JSON_OK))]
        self.assertEqual([a["cost_pico"] for a in attempts], costs)
        self.assertEqual(outcome["cost_pico"], sum(costs))
        self.assertEqual(outcome["useful"], 1)

    def test_a_failed_reask_escalates_with_the_callers_request(self):
        gw = self.start(CASCADE_TASKS)
        status, headers, data = self.call(gw, P_REASK2, "reask2")
        self.assertEqual(status, 200, data)
        outcome, attempts = self.record(gw, headers["x-tollgate-outcome"])
        bodies = self.sim_bodies()
        self.assertEqual(bodies[1]["messages"][-1]["content"],
                         "Again: json: invalid at byte 0")
        # The next tier is asked what the caller asked, not the cheap
        # tier's failed exchange.
        self.assertEqual((bodies[2]["model"], bodies[2]["messages"]),
                         ("sim-mid", user(P_REASK2)))
        self.assertEqual([(a["reason"], a["model"], a["checks"])
                          for a in attempts],
                         [("first", "cheap", "json=fail"),
                          ("reask", "cheap", "json=fail"),
                          ("escalate", "mid", "json=pass")])
        self.assertEqual(self.content(data), JSON_OK)

    def test_budget_holds_each_attempt_and_stops_the_cascade(self):
        # $0.005 takes the cheap and mid attempts' worst cases (about
        # $0.0001 and $0.0012) but not premium's (about $0.012).
        budget = ("budgets:\n  - {scope: key, name: alpha, period: day, "
                  'limit_usd: "0.005"}\n')
        gw = self.start(CASCADE_TASKS, extra=budget)
        text = "budget cascade sim:words=4"
        status, headers, data = self.call(gw, text, "esc", max_tokens=20)
        self.assertEqual(status, 200, data)
        outcome, attempts = self.record(gw, headers["x-tollgate-outcome"])
        self.assert_attempts(attempts, [
            ("first", "cheap", 200, "check_failed", "json=fail"),
            ("escalate", "mid", 200, "check_failed", "json=fail")])
        self.assertEqual(self.sent_models(), ["sim-cheap", "sim-mid"])
        prompt = harness.prompt_tokens(user(text))
        self.assertEqual(outcome["cost_pico"],
                         cost("cheap", prompt, 4) + cost("mid", prompt, 4))
        self.assertIn("cascade stopped:budget", outcome["policy"])
        self.assertEqual(outcome["useful"], 0)


# ------------------------------------------------------------- streams

STREAM_TASKS = """\
  - name: s-buffer
    route: [cheap, premium]
    checks: {json: true}
    stream_checks: buffer
  - name: s-after
    route: [cheap, premium]
    checks: {json: true}
    stream_checks: after
"""


class TestStreamChecks(RoutingCase):
    """A checked stream is held until it passes (buffer), or passed
    through and judged when it has ended (after)."""

    def stream(self, gw, text, task):
        conn = self.send(gw, text, task, stream=True)
        resp = conn.getresponse()
        self.assertEqual(resp.status, 200)
        outcome_id = resp.getheader("x-tollgate-outcome")
        events = harness.SSEReader(resp).read_all()
        conn.close()
        self.assertEqual(events[-1], "[DONE]")
        chunks = [json.loads(e) for e in events[:-1]]
        text = "".join((c["choices"][0]["delta"].get("content") or "")
                       for c in chunks if c.get("choices"))
        return outcome_id, chunks, text

    def test_buffer_sends_only_the_final_attempt(self):
        gw = self.start(STREAM_TASKS)
        outcome_id, chunks, text = self.stream(gw, P_STREAM, "s-buffer")
        self.assertEqual(text, JSON_OK)
        self.assertEqual({c["model"] for c in chunks}, {"sim-premium"})
        outcome, attempts = self.record(gw, outcome_id)
        self.assert_attempts(attempts, [
            ("first", "cheap", 200, "check_failed", "json=fail"),
            ("escalate", "premium", 200, "", "json=pass")])
        prompt = harness.prompt_tokens(user(P_STREAM))
        costs = [cost("cheap", prompt, 5),
                 cost("premium", prompt, harness.count_pieces(JSON_OK))]
        self.assertEqual([a["cost_pico"] for a in attempts], costs)
        self.assertEqual((outcome["streamed"], outcome["useful"],
                          outcome["cost_pico"]), (1, 1, sum(costs)))

    def test_buffer_sends_a_first_answer_that_passes(self):
        gw = self.start(STREAM_TASKS)
        outcome_id, chunks, text = self.stream(gw, P_JSON_OK, "s-buffer")
        self.assertEqual(text, JSON_OK)
        outcome, attempts = self.record(gw, outcome_id)
        self.assert_attempts(attempts,
                             [("first", "cheap", 200, "", "json=pass")])
        self.assertEqual((outcome["useful"], outcome["cost_pico"]),
                         (1, cost("cheap", harness.prompt_tokens(
                             user(P_JSON_OK)), harness.count_pieces(
                                 JSON_OK))))

    def test_after_streams_through_and_records_the_verdict(self):
        gw = self.start(STREAM_TASKS)
        outcome_id, chunks, text = self.stream(gw, P_STREAM, "s-after")
        self.assertEqual(len(text.split()), 5)
        self.assertEqual({c["model"] for c in chunks}, {"sim-cheap"})
        outcome, attempts = self.record(gw, outcome_id)
        self.assert_attempts(attempts, [
            ("first", "cheap", 200, "check_failed", "json=fail")])
        self.assertEqual(self.sent_models(), ["sim-cheap"])
        self.assertEqual((outcome["streamed"], outcome["useful"],
                          outcome["cost_pico"]),
                         (1, 0, cost("cheap", harness.prompt_tokens(
                             user(P_STREAM)), 5)))


# ----------------------------------------------------------- fallbacks

FALLBACK_TASKS = """\
  - name: fb
    route: [cheap, mid, premium]
    retry: {max: 0}
  - name: chain
    route: [cheap, mid, premium]
    fallbacks: [mid, cheap, premium]
    max_attempts: 6
    retry: {max: 0}
"""


class TestFallbacks(RoutingCase):
    """429, 5xx, a timeout and a cut connection move to the next model;
    a chain never visits a model twice."""

    # fault: (attempt 1's http_status, error_type, cost_status)
    FAULTS = {
        "429": (429, "upstream_429", "none"),
        "500": (500, "upstream_500", "none"),
        "503": (503, "upstream_503", "none"),
        "stall": (0, "upstream_timeout", "estimated"),
        "cut": (200, "upstream_dropped", "estimated"),
    }

    def fall_back(self, gw, fault):
        """One call whose first attempt meets fault; its answer."""
        self.sim.reset()
        self.proxy.faults = [fault]
        text = "fallback on %s sim:words=3" % fault
        conn = self.send(gw, text, "fb")
        if fault == "stall":
            wait_for(lambda: self.sim.stats()["in_flight"] >= 1)
            gw.advance(FIRST_BYTE_TIMEOUT_MS)
        return text, self.answer(conn)

    def test_each_fault_falls_back_to_the_next_model(self):
        gw = self.start(FALLBACK_TASKS,
                        models=tier_models(on={"cheap": "flaky"}))
        for fault, (status1, error1, cost1) in self.FAULTS.items():
            with self.subTest(fault=fault):
                text, (status, headers, data) = self.fall_back(gw, fault)
                self.assertEqual(status, 200, data)
                self.assertEqual(json.loads(data)["model"], "sim-mid")
                outcome, attempts = self.record(
                    gw, headers["x-tollgate-outcome"])
                self.assert_attempts(attempts, [
                    ("first", "cheap", status1, error1, ""),
                    ("fallback", "mid", 200, "", "")])
                self.assertEqual(attempts[0]["cost_status"], cost1)
                mid = cost("mid", harness.prompt_tokens(user(text)), 3)
                self.assertEqual(attempts[1]["cost_pico"], mid)
                if cost1 == "none":
                    self.assertEqual(outcome["cost_pico"], mid)
                self.assertEqual(self.sent_models(),
                                 ["sim-cheap", "sim-mid"])

    def test_each_failed_attempt_says_why(self):
        gw = self.start(FALLBACK_TASKS,
                        models=tier_models(on={"cheap": "flaky"}))
        got = {}
        for fault in self.FAULTS:
            _, (status, headers, _) = self.fall_back(gw, fault)
            _, attempts = self.record(gw, headers["x-tollgate-outcome"])
            got[fault] = attempts[0]["error_type"]
        self.assertEqual(got, {f: v[1] for f, v in self.FAULTS.items()})

    def test_chain_never_visits_a_model_twice(self):
        gw = self.start(FALLBACK_TASKS)
        status, headers, data = self.call(gw, "all down sim:fault=500",
                                          "chain")
        self.assertEqual(status, 500, data)
        outcome, attempts = self.record(gw, headers["x-tollgate-outcome"])
        self.assert_attempts(attempts, [
            ("first", "cheap", 500, "upstream_500", ""),
            ("fallback", "mid", 500, "upstream_500", ""),
            ("fallback", "premium", 500, "upstream_500", "")])
        self.assertEqual(self.sent_models(),
                         ["sim-cheap", "sim-mid", "sim-premium"])
        self.assertEqual((outcome["cost_pico"], outcome["error_type"]),
                         (None, "upstream_500"))

    def test_out_of_credit_falls_back_without_a_retry(self):
        tasks = FALLBACK_TASKS.replace("retry: {max: 0}", "retry: {max: 2}")
        gw = self.start(tasks, models=tier_models(on={"cheap": "flaky"}))
        self.proxy.faults = ["spendcap"]
        status, headers, data = self.call(gw, "credit sim:words=2", "fb")
        self.assertEqual(status, 200, data)
        _, attempts = self.record(gw, headers["x-tollgate-outcome"])
        self.assert_attempts(attempts, [
            ("first", "cheap", 429, "upstream_429", ""),
            ("fallback", "mid", 200, "", "")])


# ------------------------------------------------------------- retries

RETRY_TASKS = """\
  - name: rt
    route: [cheap, mid]
    retry: {max: 2, base_ms: 400, max_ms: 8000}
  - name: storm
    route: [cheap]
    retry: {max: 2, base_ms: 1, max_ms: 1, budget_share: 0.1}
  - name: never
    route: [cheap, mid]
    retry: {max: 2}
  - name: never-401
    route: [locked, mid]
    retry: {max: 2}
  - name: never-anth
    route: [claude, mid]
    retry: {max: 2}
"""


class TestRetries(RoutingCase):
    """Retries wait on the gateway's clock (retry-after when given, else
    jittered backoff); a budget caps them; 400/401/403/413 and an
    Anthropic spend cap are never retried (BUG-16)."""

    def models(self):
        return tier_models(on={"cheap": "flaky"}) + [
            {"name": "locked", "provider": "badkey", "upstream": "sim-cheap",
             "tier": 1, "price": PRICE["cheap"]},
            {"name": "claude", "provider": "anth",
             "upstream": "claude-haiku-4-5", "tier": 1,
             "price": PRICE["cheap"]}]

    def test_retry_waits_for_retry_after_on_the_virtual_clock(self):
        gw = self.start(RETRY_TASKS, models=self.models())
        self.proxy.faults = ["429"]  # the simulator's 429: retry-after: 7
        conn = self.send(gw, "retry me sim:words=3", "rt")
        self.wait_log(gw, "attempt 1 retry: cheap -> cheap")
        gw.advance(6999)
        self.assertEqual(len(self.sim.requests()), 1)
        gw.advance(1)
        status, headers, data = self.answer(conn)
        self.assertEqual(status, 200, data)
        self.assertEqual(len(self.sim.requests()), 2)
        outcome, attempts = self.record(gw, headers["x-tollgate-outcome"])
        self.assert_attempts(attempts, [
            ("first", "cheap", 429, "upstream_429", ""),
            ("retry", "cheap", 200, "", "")])
        self.assertEqual([a["started_ms"] for a in attempts],
                         [T0_MS, T0_MS + 7000])
        self.assertEqual(outcome["cost_pico"], cost(
            "cheap", harness.prompt_tokens(user("retry me sim:words=3")), 3))

    def test_backoff_without_retry_after_grows_and_stays_jittered(self):
        gw = self.start(RETRY_TASKS, models=self.models())
        self.proxy.faults = ["500", "500"]
        conn = self.send(gw, "back off sim:words=3", "rt")
        self.wait_log(gw, "attempt 1 retry: cheap -> cheap")
        gw.advance(400)  # the first wait is at most base_ms
        wait_for(lambda: "attempt 2 " in gw.log())
        gw.advance(800)  # the second at most twice that
        status, headers, data = self.answer(conn)
        self.assertEqual(status, 200, data)
        _, attempts = self.record(gw, headers["x-tollgate-outcome"])
        self.assert_attempts(attempts, [
            ("first", "cheap", 500, "upstream_500", ""),
            ("retry", "cheap", 500, "upstream_500", ""),
            ("retry", "cheap", 200, "", "")])
        t = [a["started_ms"] - T0_MS for a in attempts]
        self.assertEqual(t[0], 0)
        self.assertLessEqual(t[1], 400)
        self.assertGreaterEqual(t[2], t[1])
        self.assertLessEqual(t[2], 400 + 800)

    def test_retry_budget_stops_a_storm(self):
        gw = self.start(RETRY_TASKS, models=self.models())
        calls = 30
        for i in range(calls):
            result = []
            worker = threading.Thread(target=lambda: result.append(
                self.call(gw, "storm %d sim:fault=500" % i, "storm")))
            worker.start()
            while worker.is_alive():
                gw.advance(1)  # the 0-1 ms backoff, when there is one
                worker.join(0.002)
            self.assertEqual(result[0][0], 500)
        wait_for(lambda: len(gw.rows("outcomes")) == calls)
        retries = gw.rows("attempts", "reason = 'retry'")
        # 10 % of calls, with a floor of one: at calls 1, 20 and 30.
        self.assertEqual(len(retries), 3)
        self.assertEqual(len(self.sim.requests()), calls + 3)

    def never(self, gw, text, task, expect_status, sent=1):
        status, headers, data = self.call(gw, text, task)
        self.assertEqual(status, expect_status, data)
        outcome, attempts = self.record(gw, headers["x-tollgate-outcome"])
        self.assertEqual(len(attempts), 1, attempts)
        self.assertEqual(outcome["cost_pico"], None)
        self.assertEqual(len(self.sim.requests()), sent)
        return data

    def test_400_401_403_413_and_a_spend_cap_are_never_retried(self):
        gw = self.start(RETRY_TASKS, models=self.models())
        with self.subTest(status=400):
            bad_role = [{"role": "robot", "content": "hi"}]
            self.never(gw, bad_role, "never", 400)
        with self.subTest(status=401):
            self.sim.reset()
            self.never(gw, "hi sim:words=2", "never-401", 401)
        with self.subTest(status=403):
            self.sim.reset()
            self.proxy.faults = [(403, FORBIDDEN)]
            self.never(gw, "hi sim:words=2", "never", 403, sent=0)
        with self.subTest(status=413):
            self.sim.reset()
            self.proxy.faults = ["413"]
            self.never(gw, "hi sim:words=2", "never", 413)
        with self.subTest(status="anthropic spend cap"):
            self.sim.reset()
            data = self.never(gw, "hi sim:fault=spendcap", "never-anth", 429)
            # Said in OpenAI's words to a chat caller.
            self.assertEqual(json.loads(data)["error"]["code"],
                             "insufficient_quota")


# ------------------------------------------------------ context window

CONTEXT_TASKS = """\
  - name: ctx
    route: [small, large]
    retry: {max: 2}
  - name: ctx-only
    route: [small]
    retry: {max: 2}
  - name: ctx-chain
    route: [large, small, large2]
    retry: {max: 0}
"""


class TestContextWindow(RoutingCase):
    """BUG-19. The simulator has no context-length fault, so the
    provider's overflow errors come from FaultProxy; windows come from a
    LiteLLM price file (small: 1,000 tokens, large: 100,000)."""

    def start_ctx(self):
        return self.start(CONTEXT_TASKS,
                          models=window_models(on={"small": "flaky",
                                                   "large": "flaky"}),
                          prices=[WINDOW_FILE])

    def test_provider_overflow_moves_to_a_larger_window(self):
        gw = self.start_ctx()
        for i, overflow in enumerate(OVERFLOW_BODIES):
            with self.subTest(body=i):
                self.sim.reset()
                self.proxy.faults = [(400, overflow)]
                text = "overflow %d sim:words=3" % i
                status, headers, data = self.call(gw, text, "ctx",
                                                  model="small")
                self.assertEqual(status, 200, data)
                outcome, attempts = self.record(
                    gw, headers["x-tollgate-outcome"])
                self.assert_attempts(attempts, [
                    ("first", "small", 400, "upstream_400", ""),
                    ("context", "large", 200, "", "")])
                self.assertEqual(self.sent_models(), ["sim-large"])
                self.assertEqual(outcome["cost_pico"], window_cost(
                    "sim-large", harness.prompt_tokens(user(text)), 3))

    def test_no_larger_window_gives_context_length_exceeded(self):
        gw = self.start_ctx()
        self.proxy.faults = [(400, OVERFLOW_BODIES[0])]
        status, headers, data = self.call(gw, "too big", "ctx-only",
                                          model="small")
        self.assertEqual(status, 400, data)
        self.assertEqual(json.loads(data).get("error", {}).get("code"),
                         "context_length_exceeded", data)
        _, attempts = self.record(gw, headers["x-tollgate-outcome"])
        self.assertEqual(len(attempts), 1)

    def test_a_prompt_predicted_too_big_skips_the_small_window(self):
        gw = self.start_ctx()
        text = words(1500) + " sim:words=2"
        status, headers, data = self.call(gw, text, "ctx", model="small")
        self.assertEqual(status, 200, data)
        _, attempts = self.record(gw, headers["x-tollgate-outcome"])
        self.assert_attempts(attempts, [("first", "large", 200, "", "")])
        self.assertEqual(len(self.proxy.seen), 1)
        self.assertEqual(self.sent_models(), ["sim-large"])

    def test_a_fallback_never_picks_a_window_too_small(self):
        gw = self.start_ctx()
        self.proxy.faults = ["500"]
        text = words(1500) + " sim:words=2"
        status, headers, data = self.call(gw, text, "ctx-chain",
                                          model="large")
        self.assertEqual(status, 200, data)
        _, attempts = self.record(gw, headers["x-tollgate-outcome"])
        self.assert_attempts(attempts, [
            ("first", "large", 500, "upstream_500", ""),
            ("fallback", "large2", 200, "", "")])
        self.assertEqual(self.sent_models(), ["sim-large", "sim-large2"])


# --------------------------------------------------- learned thresholds


def auto_tasks(requested, min_samples=None, target="0.8"):
    out = ("  - name: auto\n"
           "    route: auto\n"
           "    models: [cheap, premium]\n"
           "    target_pass_rate: %s\n"
           "    explore_share: 0\n"
           "    requested_model: %s\n"
           "    checks: {json: true}\n" % (target, requested))
    if min_samples is not None:
        out += "    min_samples: %d\n" % min_samples
    return out


class TestLearnedThresholds(RoutingCase):
    """route: auto starts at the strongest tier until a cheaper one has
    proven itself (Wilson lower bound at 95 % >= target), then at the
    cheaper one; the counts live in route_stats and survive restarts.
    `requested_model: honour` sends the learning calls to cheap."""

    def first_model(self, gw, asked="premium"):
        status, headers, data = self.call(gw, P_AUTO, "auto", model=asked)
        self.assertEqual(status, 200, data)
        _, attempts = self.record(gw, headers["x-tollgate-outcome"])
        return attempts[0]["model"], headers["x-tollgate-outcome"]

    def stats(self, gw):
        db = sqlite3.connect(gw.ledger)
        try:
            return {r[0]: (r[1], r[2]) for r in db.execute(
                "SELECT tier, passes, fails FROM route_stats "
                "WHERE task = 'auto'")}
        finally:
            db.close()

    def learn_cheap(self, gw, n):
        ids = []
        for _ in range(n):
            model, outcome_id = self.first_model(gw, asked="cheap")
            self.assertEqual(model, "cheap")
            ids.append(outcome_id)
        return ids

    def test_moves_to_the_cheap_tier_once_proven_and_remembers(self):
        # 30 of 30 at 95 %: lower bound 0.886 >= 0.8.
        gw = self.start(auto_tasks("override"))
        self.assertEqual(self.first_model(gw)[0], "premium")
        self.restart(gw, auto_tasks("honour"))
        self.learn_cheap(gw, 30)
        self.restart(gw, auto_tasks("override"))
        self.assertEqual(self.stats(gw), {"cheap": (30, 0),
                                          "premium": (1, 0)})
        self.assertEqual(self.first_model(gw)[0], "cheap")

    def test_task_min_samples_is_honoured(self):
        # 5 of 5 at 95 %: lower bound 0.566 >= 0.5, and 5 samples are
        # enough for this task.
        gw = self.start(auto_tasks("honour", 5, "0.5"))
        self.learn_cheap(gw, 5)
        self.restart(gw, auto_tasks("override", 5, "0.5"))
        self.assertEqual(self.stats(gw), {"cheap": (5, 0)})
        self.assertEqual(self.first_model(gw)[0], "cheap")

    def test_caller_feedback_moves_the_rates(self):
        gw = self.start(auto_tasks("honour"))
        ids = self.learn_cheap(gw, 30)
        for outcome_id in ids[:10]:
            status, _, data = gw.post("/v1/outcomes/%s/feedback"
                                      % outcome_id, {"useful": False})
            self.assertEqual(status, 200, data)
        self.restart(gw, auto_tasks("override"))
        # 20 of 30: lower bound 0.488 < 0.8, so back to premium.
        self.assertEqual(self.stats(gw), {"cheap": (20, 10)})
        self.assertEqual(self.first_model(gw)[0], "premium")


if __name__ == "__main__":
    unittest.main()
