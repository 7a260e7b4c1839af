"""End-to-end tests of the policy stage: hard budgets held at each
attempt's worst case under 200 concurrent calls (BUG-11), the refusal
message, period resets and restarts on the injected clock, rate limits
(RPM, TPM, calls in flight; BUG-14, BUG-15), step-down, approval rules,
unpriced models and key hygiene (BUG-23).

The real gateway (sanitizer build, --test-clock: it starts at
2026-01-01T00:00:00Z and moves only when a test advances it) runs in
front of the provider simulator on its own virtual clock. Every expected
number is computed here, in integer picodollars and whole tokens, from
the config prices, the simulator's token rule and the reservation
formula: (bytes sent + 1024 + 8) input tokens at the dearest input rate
plus max_tokens at the output rate."""
import base64
import http.server
import json
import os
import subprocess
import threading
import unittest

import harness
from gateway import KEYS, PRICES, Gateway, pico, usd, wait_for

ADMIN_KEY = "tg-e2e-admin-secret"
os.environ["TG_E2E_POLICY_ADMIN_KEY"] = ADMIN_KEY

# The gateway's test clock at start: 2026-01-01T00:00:00Z, which is
# 01:00 in Berlin; the next Berlin midnight is 23 hours later.
T0_MS = 1767225600000
TO_BERLIN_MIDNIGHT_MS = 23 * 3600 * 1000
BERLIN_RESET = "2026-01-02T00:00:00+01:00"

# budget_input_bound(): the request's bytes, plus these.
TOKENS_PER_REQUEST = 1024
TOKENS_PER_MESSAGE = 8
IMAGE_TOKENS = 765  # what the TPM estimate counts per base64 image

TINY = {"input": "0.10", "output": "0.40"}
UPSTREAM = {"fast": "gpt-4o-mini", "tiny": "gpt-4.1-nano"}

# BUG-23's key, and one the gateway never saw.
LEAKY_KEY = "sk-test-0000000000000000000000000000abcd"
UNKNOWN_KEY = "sk-test-ffffffffffffffffffffffffffffffff"

HI = "hi sim:words=5"  # 13 prompt tokens, 5 completion tokens


def models():
    return [
        {"name": "fast", "upstream": "gpt-4o-mini", "price": PRICES["cheap"]},
        {"name": "gpt-4o", "tier": 3, "price": PRICES["premium"]},
        {"name": "tiny", "upstream": "gpt-4.1-nano", "price": TINY},
        {"name": "mystery", "upstream": "zeta-9"},
    ]


PRICE_OF = {"fast": PRICES["cheap"], "gpt-4o": PRICES["premium"],
            "tiny": TINY}


# ------------------------------------------------------------ arithmetic


def chat_raw(text, model="fast", max_tokens=None, stream=False):
    """A compact chat body, so the bytes sent upstream are known."""
    body = {"model": model, "messages": [{"role": "user", "content": text}]}
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    if stream:
        body["stream"] = True
    return json.dumps(body, separators=(",", ":")).encode()


def sent_body(raw, model="fast"):
    """What the gateway sends upstream for raw: the upstream model id in
    place of the configured name, and a stream asks for usage."""
    out = raw.replace(b'"model":"%s"' % model.encode(),
                      b'"model":"%s"' % UPSTREAM.get(model, model).encode(),
                      1)
    if b'"stream":true' in raw:
        out = out[:-1] + b',"stream_options":{"include_usage":true}}'
    return out


def rate(price, key):
    return pico(1, price[key])


def worst_case(sent, max_tokens, price):
    """The reservation of one attempt (budget_worst_case())."""
    dearest_in = max(rate(price, k) for k in
                     ("input", "cached_input", "cache_write") if k in price)
    tokens = len(sent) + TOKENS_PER_REQUEST + TOKENS_PER_MESSAGE
    return tokens * dearest_in + max_tokens * rate(price, "output")


def prompt_of(text):
    return harness.prompt_tokens([{"role": "user", "content": text}])


def sim_cost(text, completion, price):
    """What one single-message call costs at price."""
    return (pico(prompt_of(text), price["input"]) +
            pico(completion, price["output"]))


def limit_text(amount):
    """A config limit_usd for a whole number of microdollars."""
    assert amount % 10**6 == 0, amount
    return "%d.%06d" % divmod(amount // 10**6, 10**6)


def micro_floor(amount):
    return amount // 10**6 * 10**6


def micro_ceil(amount):
    return -(-amount // 10**6) * 10**6


def _glyph(ch):
    assert ord(ch) < 128, "the estimator port reads ASCII only"
    if ch in "\n\r":
        return "newline"
    if ch in " \t\v\f":
        return "space"
    if ch.isalpha():
        return "letter"
    if ch.isdigit():
        return "digit"
    return "punct"


def _run_tokens(glyph, weight):
    if glyph == "letter":
        return 1 if weight <= 8 else 1 + -(-(weight - 8) // 4)
    if glyph == "digit":
        return -(-weight // 3)
    if glyph == "punct":
        return -(-weight // 2)
    if glyph == "space":
        return 1 if weight > 1 else 0
    return 1  # a run of line ends


def estimate_tokens(text):
    """usage_estimate_tokens() for ASCII text: runs of one kind of
    character, each priced by its kind and length."""
    tokens, glyph, weight = 0, "space", 0
    for i, ch in enumerate(text):
        kind = _glyph(ch)
        if (glyph == "letter" and ch == "'" and i + 1 < len(text)
                and _glyph(text[i + 1]) == "letter"):
            tokens += _run_tokens(glyph, weight)
            weight = 0
        elif kind != glyph:
            tokens += _run_tokens(glyph, weight) if weight else 0
            glyph, weight = kind, 0
        weight += 1
    return tokens + (_run_tokens(glyph, weight) if weight else 0)


def estimate_input(sent):
    """The TPM estimate of a request's input: its text, with each
    base64 image counted as IMAGE_TOKENS instead of its bytes."""
    text, tokens, p = sent.decode(), 0, 0
    while True:
        img = text.find(";base64,", p)
        tokens += estimate_tokens(text[p:img if img >= 0 else len(text)])
        if img < 0:
            return tokens
        tokens += IMAGE_TOKENS
        p = img + 8
        while p < len(text) and text[p] != '"':
            p += 1


# ------------------------------------------------------------- helpers


def error_of(body):
    return json.loads(body)["error"]


def budget_message(scope_text, period, spent, held, limit, need, reset):
    """budget_refusal_message(), from its parts."""
    tail = ("It does not reset." if reset is None
            else "It resets at %s." % reset)
    return ("Budget exceeded: the %s budget of %s has $%s spent and $%s "
            "held of its $%s limit; this call needs up to $%s. %s"
            % (period, scope_text, usd(spent), usd(held), usd(limit),
               usd(need), tail))


def rate_message(kind, owner, limit, used, asked, retry):
    tail = ("It can never fit: lower max_tokens or the request's size."
            if retry is None else "Retry in %d s." % retry)
    return ("Rate limit reached: the %s limit of %s is %d %s; %d used, "
            "this call needs %d. %s" % (kind, owner, limit, kind, used,
                                        asked, tail))


def auth(key="tg-key-alpha"):
    return {"Authorization": "Bearer " + key}


class Hook(http.server.BaseHTTPRequestHandler):
    """Records every webhook POST."""
    received = None

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        self.received.append((self.path, dict(self.headers),
                              self.rfile.read(n)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


class PolicyCase(unittest.TestCase):
    """A simulator per test; gateways started by start() are stopped
    and checked (exit 0, no sanitizer report) at the end."""
    sim_args = ()

    def setUp(self):
        self.sim = harness.Sim(["--clock", "virtual", "--key", "sim-secret"]
                               + list(self.sim_args))
        self.gateways = []

    def tearDown(self):
        try:
            for gw in self.gateways:
                self.stop_checked(gw)
        finally:
            self.sim.stop()

    def start(self, extra, keys=KEYS, debug=False, more_models=(),
              providers=None):
        gw = Gateway(self.sim.url + "/v1", models=models() + list(more_models),
                     extra=extra, keys=keys, providers=providers)
        gw.old_logs = ""
        if debug:
            with open(gw.config) as f:
                text = f.read()
            with open(gw.config, "w") as f:
                f.write(text.replace("log_level: info", "log_level: debug"))
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

    def restart(self, gw):
        """Stops the gateway and starts it again on the same config and
        ledger (its test clock starts again at T0)."""
        self.stop_checked(gw)
        gw.old_logs += gw.log()
        return gw.start()

    def all_logs(self, gw):
        return gw.old_logs + gw.log()

    def chat(self, gw, raw, key="tg-key-alpha", headers=None):
        return gw.chat(None, key=key, headers=headers, raw=raw)

    def send(self, gw, raw, key="tg-key-alpha", path="/v1/chat/completions"):
        return harness.open_request("POST", gw.url + path, raw, auth(key),
                                    timeout=60)

    def hold(self, gw, raw, in_flight, key="tg-key-alpha"):
        """Sends a call the simulator holds (it answers on its virtual
        clock); returns the connection once the simulator has it."""
        conn = self.send(gw, raw, key)
        wait_for(lambda: self.sim.stats()["in_flight"] == in_flight)
        return conn

    @staticmethod
    def answer(conn):
        resp = conn.getresponse()
        body = resp.read()
        conn.close()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body

    def assert_budget_refusal(self, status, body, message=None):
        self.assertEqual(status, 429, body)
        err = error_of(body)
        self.assertEqual(err["type"], "insufficient_quota")
        self.assertEqual(err["code"], "budget_exceeded")
        if message is not None:
            self.assertEqual(err["message"], message)
        return err

    def outcomes(self, gw, n):
        """The ledger's outcomes once it holds n (over restarts too)."""
        wait_for(lambda: len(gw.rows("outcomes")) >= n)
        return gw.rows("outcomes", "1=1 ORDER BY started_ms, rowid")


# ------------------------------------------------------------- budgets


class TestBudgetUnderConcurrency(PolicyCase):
    """BUG-11: 200 calls at once against a small hard budget. The
    simulator holds every admitted call until its clock is advanced, so
    all reservations are made before any settles: exactly
    floor(limit / worst case) are admitted."""
    sim_args = ("--default-latency", "1000,0")
    N_CALLS = 200
    ADMITTED = 37

    def one_call(self, gw, raw, stream):
        conn = self.send(gw, raw)
        resp = conn.getresponse()
        hdrs = {k.lower(): v for k, v in resp.getheaders()}
        if resp.status == 200 and stream:
            body = harness.SSEReader(resp).read_all()
        else:
            body = resp.read()
        conn.close()
        return resp.status, hdrs, body

    def burst(self, gw, raw, stream):
        results = [None] * self.N_CALLS
        barrier = threading.Barrier(self.N_CALLS)

        def run(i):
            barrier.wait()
            try:
                results[i] = self.one_call(gw, raw, stream)
            except Exception as exc:  # reported by the checks below
                results[i] = (None, {}, repr(exc))

        threads = [threading.Thread(target=run, args=(i,), daemon=True)
                   for i in range(self.N_CALLS)]
        for t in threads:
            t.start()
        # Every call is either answered (refused) or held by the sim.
        wait_for(lambda: sum(r is not None for r in results)
                 + self.sim.stats()["in_flight"] == self.N_CALLS, 120)
        self.sim.advance(1000)
        for t in threads:
            t.join(60)
        return results

    def check_burst(self, stream):
        raw = chat_raw(HI, max_tokens=20, stream=stream)
        sent = sent_body(raw)
        worst = worst_case(sent, 20, PRICES["cheap"])
        cost = sim_cost(HI, 5, PRICES["cheap"])
        limit = micro_floor(self.ADMITTED * worst + worst // 2)
        admitted = limit // worst
        self.assertEqual(admitted, self.ADMITTED)
        gw = self.start("budgets:\n"
                        "  - {scope: key, name: alpha, period: day, "
                        'limit_usd: "%s"}' % limit_text(limit))

        results = self.burst(gw, raw, stream)

        statuses = [r[0] for r in results]
        self.assertEqual(statuses.count(200), admitted, statuses)
        self.assertEqual(statuses.count(429), self.N_CALLS - admitted)
        for status, hdrs, body in results:
            if status == 429:
                self.assert_budget_refusal(status, body)
            elif stream:
                self.assertEqual(body[-1], "[DONE]")
            else:
                self.assertEqual(hdrs["x-tollgate-cost-usd"], usd(cost))
        journal = self.sim.requests()
        self.assertEqual(len(journal), admitted)
        self.assertEqual({r["body"].encode() for r in journal}, {sent})

        rows = self.outcomes(gw, self.N_CALLS)
        self.assertEqual(len(rows), self.N_CALLS)
        spent = sum(r["cost_pico"] or 0 for r in rows)
        self.assertEqual(spent, admitted * cost)
        self.assertLessEqual(spent, limit)
        ok = [r for r in rows if r["http_status"] == 200]
        refused = [r for r in rows if r["http_status"] == 429]
        self.assertEqual(len(ok), admitted)
        self.assertTrue(all(r["cost_status"] == "priced" and
                            r["cost_pico"] == cost and r["policy"] == ""
                            for r in ok))
        self.assertTrue(all(r["policy"] == "refused:budget" and
                            r["n_attempts"] == 0 and not r["cost_pico"]
                            for r in refused))
        self.assertEqual(len(gw.rows("attempts")), admitted)
        self.assertNotIn("more than its reservation", gw.log())

    def test_budget_never_overspent_by_200_concurrent_plain_calls(self):
        self.check_burst(stream=False)

    def test_budget_never_overspent_by_200_concurrent_streams(self):
        self.check_burst(stream=True)


class TestBudgetRefusal(PolicyCase):
    sim_args = ("--default-latency", "1000,0")

    def test_refusal_names_budget_spent_held_limit_and_reset(self):
        raw = chat_raw(HI, max_tokens=20)
        worst = worst_case(sent_body(raw), 20, PRICES["cheap"])
        cost = sim_cost(HI, 5, PRICES["cheap"])
        # One call spent and one held fit; a third does not.
        limit = micro_floor(cost + worst + worst // 2)
        gw = self.start("budget_timezone: Europe/Berlin\n"
                        "budgets:\n"
                        "  - {scope: key, name: alpha, period: day, "
                        'limit_usd: "%s"}' % limit_text(limit))
        conn = self.hold(gw, raw, 1)
        self.sim.advance(1000)
        self.assertEqual(self.answer(conn)[0], 200)
        held = self.hold(gw, raw, 1)

        status, headers, body = self.chat(gw, raw)

        self.assert_budget_refusal(status, body, budget_message(
            "key 'alpha'", "daily", cost, worst, limit, worst,
            BERLIN_RESET))
        # The clock starts at 2026-01-01T00:00Z, 01:00 in Berlin: the day
        # resets 23 hours later, and retry-after says so.
        self.assertEqual(headers["retry-after"], "82800")
        self.sim.advance(1000)
        self.assertEqual(self.answer(held)[0], 200)
        self.assertEqual(len(self.sim.requests()), 2)
        rows = self.outcomes(gw, 3)
        refused = gw.outcome(headers["x-tollgate-outcome"])
        self.assertEqual(refused["policy"], "refused:budget")
        self.assertEqual(refused["http_status"], 429)
        self.assertEqual(refused["error_type"], "budget_exceeded")
        self.assertEqual(sum(r["cost_pico"] or 0 for r in rows), 2 * cost)

    def test_refusal_of_team_monthly_and_global_total_budgets(self):
        raw = chat_raw(HI, max_tokens=20)
        worst = worst_case(sent_body(raw), 20, PRICES["cheap"])
        cases = [
            ("  - {scope: team, name: support, period: month, "
             'limit_usd: "0.000001"}',
             "team 'support'", "monthly", "2026-02-01T00:00:00+01:00"),
            ("  - {scope: task, name: triage, period: week, "
             'limit_usd: "0.000001"}',
             "task 'triage'", "weekly", "2026-01-05T00:00:00+01:00"),
            ('  - {scope: global, period: total, limit_usd: "0.000001"}',
             "the gateway", "total", None),
        ]
        for line, owner, period, reset in cases:
            with self.subTest(owner=owner):
                gw = self.start("budget_timezone: Europe/Berlin\n"
                                "budgets:\n" + line)
                status, _, body = self.chat(gw, raw)
                self.assert_budget_refusal(status, body, budget_message(
                    owner, period, 0, 0, 10**6, worst, reset))
                self.stop_checked(gw)
        self.assertEqual(self.sim.requests(), [])

    def test_most_specific_budget_named_first(self):
        raw = chat_raw(HI, max_tokens=20)
        worst = worst_case(sent_body(raw), 20, PRICES["cheap"])
        gw = self.start("budgets:\n"
                        "  - {scope: global, period: day, "
                        'limit_usd: "0.000001"}\n'
                        "  - {scope: key, name: alpha, period: day, "
                        'limit_usd: "0.000002"}')
        status, _, body = self.chat(gw, raw)
        self.assert_budget_refusal(status, body, budget_message(
            "key 'alpha'", "daily", 0, 0, 2 * 10**6, worst,
            "2026-01-02T00:00:00+00:00"))

    def test_unpriced_model_under_a_budget_is_refused(self):
        gw = self.start("rate_limits:\n"
                        "  - {scope: key, name: alpha, "
                        "requests_per_minute: 1}\n"
                        "budgets:\n"
                        "  - {scope: key, name: alpha, period: total, "
                        'limit_usd: "1"}')
        status, headers, body = self.chat(
            gw, chat_raw(HI, model="mystery", max_tokens=20))
        self.assertEqual(status, 403, body)
        err = error_of(body)
        self.assertEqual(err["type"], "permission_error")
        self.assertEqual(err["code"], "unpriced_model")
        self.assertEqual(err["param"], "model")
        self.assertEqual(
            err["message"],
            "the model 'mystery' has no price, and a budget applies to "
            "this call: an unpriced call cannot be held against it. Give "
            "the model a price in the config.")
        self.assertEqual(self.sim.requests(), [])
        # The refused call used none of the one request a minute.
        conn = self.hold(gw, chat_raw(HI, max_tokens=20), 1)
        self.sim.advance(1000)
        status, _, body = self.answer(conn)
        self.assertEqual(status, 200, body)
        self.outcomes(gw, 2)
        row = gw.outcome(headers["x-tollgate-outcome"])
        self.assertEqual(row["policy"], "refused:unpriced")
        self.assertEqual(row["n_attempts"], 0)


class TestBudgetPeriods(PolicyCase):
    """Daily budgets reset at local midnight; spend survives a restart.
    The simulator answers at once (no latency), so every call settles
    before the next is made."""

    def setup_budget(self, calls=3):
        """A daily limit that admits exactly `calls` sequential calls."""
        self.raw = chat_raw(HI, max_tokens=20)
        self.worst = worst_case(sent_body(self.raw), 20, PRICES["cheap"])
        self.cost = sim_cost(HI, 5, PRICES["cheap"])
        self.limit = micro_ceil((calls - 1) * self.cost + self.worst)
        self.assertLess(self.limit, calls * self.cost + self.worst)
        return ("budget_timezone: Europe/Berlin\n"
                "budgets:\n"
                "  - {scope: key, name: alpha, period: day, "
                'limit_usd: "%s"}' % limit_text(self.limit))

    def spend(self, gw, n):
        for i in range(n):
            status, _, body = self.chat(gw, self.raw)
            self.assertEqual(status, 200, "call %d: %r" % (i, body))

    def refused(self, gw, spent, reset=BERLIN_RESET):
        status, _, body = self.chat(gw, self.raw)
        self.assert_budget_refusal(status, body, budget_message(
            "key 'alpha'", "daily", spent, 0, self.limit, self.worst,
            reset))

    def test_daily_budget_resets_at_berlin_midnight(self):
        gw = self.start(self.setup_budget())
        self.spend(gw, 3)
        self.refused(gw, 3 * self.cost)
        gw.advance(TO_BERLIN_MIDNIGHT_MS - 1)  # 23:59:59.999 in Berlin
        self.refused(gw, 3 * self.cost)

        gw.advance(1)
        self.spend(gw, 3)
        self.refused(gw, 3 * self.cost, "2026-01-03T00:00:00+01:00")
        rows = self.outcomes(gw, 9)
        self.assertEqual([r["http_status"] for r in rows],
                         [200] * 3 + [429] * 2 + [200] * 3 + [429])
        self.assertEqual(len(self.sim.requests()), 6)

    def test_daily_reset_on_the_23_hour_day_in_berlin(self):
        # 2026-03-29 has 23 hours in Berlin (clocks go forward at 02:00):
        # its day runs from 2026-03-28T23:00Z to 2026-03-29T22:00Z.
        gw = self.start(self.setup_budget())
        gw.advance(87 * 24 * 3600 * 1000)  # 2026-03-29T00:00:00Z
        self.spend(gw, 3)
        self.refused(gw, 3 * self.cost, "2026-03-30T00:00:00+02:00")
        gw.advance(22 * 3600 * 1000 - 1)
        self.refused(gw, 3 * self.cost, "2026-03-30T00:00:00+02:00")
        gw.advance(1)
        self.spend(gw, 3)
        self.refused(gw, 3 * self.cost, "2026-03-31T00:00:00+02:00")

    def test_spend_survives_a_restart(self):
        gw = self.start(self.setup_budget())
        self.spend(gw, 2)
        self.restart(gw)
        self.spend(gw, 1)
        self.refused(gw, 3 * self.cost)
        self.restart(gw)
        self.refused(gw, 3 * self.cost)
        self.assertEqual(len(self.sim.requests()), 3)
        rows = self.outcomes(gw, 5)
        self.assertEqual(sum(r["cost_pico"] or 0 for r in rows),
                         3 * self.cost)

    def test_spend_of_yesterday_does_not_count_after_restart(self):
        gw = self.start(self.setup_budget())
        self.spend(gw, 3)
        self.refused(gw, 3 * self.cost)
        self.restart(gw)
        gw.advance(TO_BERLIN_MIDNIGHT_MS)
        self.spend(gw, 3)
        self.refused(gw, 3 * self.cost, "2026-01-03T00:00:00+01:00")


class TestRateLimitRestart(PolicyCase):
    def test_rpm_window_survives_a_restart(self):
        gw = self.start("rate_limits:\n"
                        "  - {scope: key, name: alpha, "
                        "requests_per_minute: 3}")
        raw = chat_raw(HI)
        for left in (2, 1):
            status, headers, _ = self.chat(gw, raw)
            self.assertEqual(status, 200)
            self.assertEqual(headers["x-ratelimit-remaining-requests"],
                             str(left))
        self.restart(gw)
        gw.advance(10000)
        status, headers, _ = self.chat(gw, raw)
        self.assertEqual(status, 200)
        self.assertEqual(headers["x-ratelimit-remaining-requests"], "0")
        status, headers, body = self.chat(gw, raw)
        self.assertEqual(status, 429, body)
        self.assertEqual(headers["retry-after"], "50")


# ---------------------------------------------------------- rate limits


class TestRateLimits(PolicyCase):
    def test_rpm_arithmetic_at_exact_times(self):
        gw = self.start("rate_limits:\n"
                        "  - {scope: key, name: alpha, "
                        "requests_per_minute: 3}")
        raw = chat_raw(HI)
        for left in (2, 1, 0):
            status, headers, body = self.chat(gw, raw)
            self.assertEqual(status, 200, body)
            self.assertEqual(headers["x-ratelimit-limit-requests"], "3")
            self.assertEqual(headers["x-ratelimit-remaining-requests"],
                             str(left))
            self.assertEqual(headers["x-ratelimit-reset-requests"], "1m0s")

        gw.advance(30500)
        status, headers, body = self.chat(gw, raw)
        self.assertEqual(status, 429, body)
        err = error_of(body)
        self.assertEqual(err["type"], "rate_limit_error")
        self.assertEqual(err["code"], "rate_limit_exceeded")
        self.assertEqual(err["message"], rate_message(
            "requests per minute", "key 'alpha'", 3, 3, 1, 30))
        self.assertEqual(headers["retry-after"], "30")
        self.assertEqual(headers["x-ratelimit-remaining-requests"], "0")
        self.assertEqual(headers["x-ratelimit-reset-requests"], "29.5s")

        gw.advance(29499)  # T0 + 59.999 s
        status, headers, _ = self.chat(gw, raw)
        self.assertEqual(status, 429)
        self.assertEqual(headers["retry-after"], "1")
        self.assertEqual(headers["x-ratelimit-reset-requests"], "1ms")

        gw.advance(1)  # the calls of second 0 leave the window
        status, headers, body = self.chat(gw, raw)
        self.assertEqual(status, 200, body)
        # The two refused calls took nothing.
        self.assertEqual(headers["x-ratelimit-remaining-requests"], "2")
        rows = self.outcomes(gw, 6)
        self.assertEqual([r["policy"] for r in rows],
                         [""] * 3 + ["refused:rate_limit"] * 2 + [""])
        self.assertEqual(len(self.sim.requests()), 4)

    def test_tpm_arithmetic_estimate_then_real_usage(self):
        tpm = 400
        gw = self.start("rate_limits:\n"
                        "  - {scope: key, name: alpha, "
                        "tokens_per_minute: %d}" % tpm)
        text = "hello sim:words=6"
        raw_a = chat_raw(text, max_tokens=50)
        est_a = estimate_input(sent_body(raw_a)) + 50
        status, headers, body = self.chat(gw, raw_a)
        self.assertEqual(status, 200, body)
        self.assertEqual(headers["x-ratelimit-limit-tokens"], str(tpm))
        self.assertEqual(headers["x-ratelimit-remaining-tokens"],
                         str(tpm - est_a))
        self.assertEqual(headers["x-ratelimit-reset-tokens"], "1m0s")
        used = prompt_of(text) + 6  # settled to the provider's counts
        self.assertEqual(json.loads(body)["usage"]["total_tokens"], used)

        gw.advance(20250)
        # One token over what is left: refused until second 0 leaves.
        base = estimate_input(sent_body(chat_raw(text, max_tokens=100)))
        raw_b = chat_raw(text, max_tokens=tpm - used + 1 - base)
        self.assertEqual(estimate_input(sent_body(raw_b)), base)
        status, headers, body = self.chat(gw, raw_b)
        self.assertEqual(status, 429, body)
        self.assertEqual(error_of(body)["message"], rate_message(
            "tokens per minute", "key 'alpha'", tpm, used,
            tpm - used + 1, 40))
        self.assertEqual(headers["retry-after"], "40")
        self.assertEqual(headers["x-ratelimit-remaining-tokens"],
                         str(tpm - used))
        self.assertEqual(headers["x-ratelimit-reset-tokens"], "39.75s")

        # Exactly what is left fits.
        raw_c = chat_raw(text, max_tokens=tpm - used - base)
        status, headers, body = self.chat(gw, raw_c)
        self.assertEqual(status, 200, body)
        self.assertEqual(headers["x-ratelimit-remaining-tokens"], "0")
        used_c = json.loads(body)["usage"]["total_tokens"]

        # A call over the whole limit can never fit: no retry-after.
        raw_d = chat_raw(text, max_tokens=tpm)
        status, headers, body = self.chat(gw, raw_d)
        self.assertEqual(status, 429, body)
        self.assertNotIn("retry-after", headers)
        self.assertEqual(error_of(body)["message"], rate_message(
            "tokens per minute", "key 'alpha'", tpm, used + used_c,
            base + tpm, None))

        # At T0 + 60 s only call C's real usage is left in the window.
        gw.advance(60000 - 20250)
        status, headers, body = self.chat(gw, raw_a)
        self.assertEqual(status, 200, body)
        self.assertEqual(headers["x-ratelimit-remaining-tokens"],
                         str(tpm - used_c - est_a))

    def test_budget_refusal_gives_back_its_request(self):
        gw = self.start("rate_limits:\n"
                        "  - {scope: key, name: alpha, "
                        "requests_per_minute: 2}\n"
                        "budgets:\n"
                        "  - {scope: task, name: costly, period: day, "
                        'limit_usd: "0.000001"}')
        raw = chat_raw(HI, max_tokens=20)
        for _ in range(3):
            status, headers, body = self.chat(
                gw, raw, headers={"X-Tollgate-Task": "costly"})
            self.assert_budget_refusal(status, body)
            # What the refused call was given back is not counted.
            self.assertEqual(headers["x-ratelimit-remaining-requests"], "2")
        for left in ("1", "0"):
            status, headers, body = self.chat(gw, raw)
            self.assertEqual(status, 200, body)
            self.assertEqual(headers["x-ratelimit-remaining-requests"], left)


class TestConcurrencyLimits(PolicyCase):
    """Calls in flight: streams the simulator sends one word per virtual
    second, so they stay open until the test advances its clock."""
    sim_args = ("--default-latency", "0,1000")

    def open_stream(self, gw):
        conn = self.send(gw, chat_raw(HI, stream=True))
        resp = conn.getresponse()
        self.assertEqual(resp.status, 200)
        reader = harness.SSEReader(resp)
        next(reader)  # the role chunk: the stream is under way
        return conn, reader

    def test_concurrency_limit_with_held_streams(self):
        gw = self.start("rate_limits:\n"
                        "  - {scope: key, name: alpha, concurrent: 2}")
        streams = [self.open_stream(gw) for _ in range(2)]

        status, headers, body = self.chat(gw, chat_raw(HI))
        self.assertEqual(status, 429, body)
        self.assertEqual(headers["retry-after"], "1")
        self.assertEqual(error_of(body)["message"], rate_message(
            "concurrent calls", "key 'alpha'", 2, 2, 1, 1))
        # Another key has no such limit.
        conn = self.send(gw, chat_raw(HI), key="tg-key-beta")
        wait_for(lambda: self.sim.stats()["in_flight"] == 3)

        self.sim.advance(100000)
        for c, reader in streams:
            self.assertEqual(reader.read_all()[-1], "[DONE]")
            c.close()
        self.assertEqual(self.answer(conn)[0], 200)
        wait_for(lambda: gw.health()["in_flight"] == 0)
        conn = self.send(gw, chat_raw(HI))
        wait_for(lambda: self.sim.stats()["in_flight"] == 1)
        self.sim.advance(100000)
        self.assertEqual(self.answer(conn)[0], 200)

    def test_bug14_concurrency_refusal_uses_no_rpm(self):
        gw = self.start("rate_limits:\n"
                        "  - {scope: key, name: alpha, "
                        "requests_per_minute: 2, concurrent: 1}")
        raw = chat_raw("ping")
        a = self.hold(gw, raw, 1)
        gw.advance(1000)
        status, headers, body = self.chat(gw, raw)  # B
        self.assertEqual(status, 429, body)
        self.assertEqual(error_of(body)["message"], rate_message(
            "concurrent calls", "key 'alpha'", 1, 1, 1, 1))
        self.assertEqual(headers["x-ratelimit-remaining-requests"], "1")
        self.sim.advance(100000)
        self.assertEqual(self.answer(a)[0], 200)
        wait_for(lambda: gw.health()["in_flight"] == 0)

        gw.advance(5000)  # t = 6 s
        c = self.hold(gw, raw, 1)
        self.sim.advance(100000)
        status, headers, body = self.answer(c)
        self.assertEqual(status, 200, body)
        self.assertEqual(headers["x-ratelimit-remaining-requests"], "0")
        wait_for(lambda: gw.health()["in_flight"] == 0)
        status, headers, body = self.chat(gw, raw)
        self.assertEqual(status, 429)
        self.assertEqual(error_of(body)["message"], rate_message(
            "requests per minute", "key 'alpha'", 2, 2, 1, 54))


class TestImageTokens(PolicyCase):
    def test_bug15_base64_image_is_not_counted_as_text(self):
        tpm = 50000
        gw = self.start("rate_limits:\n"
                        "  - {scope: key, name: alpha, "
                        "tokens_per_minute: %d}" % tpm)
        # Random bytes, about 4 MB as base64 (the size of BUG-15's PNG).
        data = base64.b64encode(os.urandom(3000000)).decode()
        url = "data:image/png;base64," + data
        chat = {"model": "fast", "messages": [{"role": "user", "content": [
            {"type": "text", "text": "Describe this picture."},
            {"type": "image_url",
             "image_url": {"url": url, "detail": "high"}}]}]}
        raw = json.dumps(chat, separators=(",", ":")).encode()
        est_chat = estimate_input(sent_body(raw))
        self.assertLess(est_chat, 2 * IMAGE_TOKENS)

        status, headers, body = self.chat(gw, raw)
        self.assertEqual(status, 200, body[:300])
        self.assertEqual(headers["x-ratelimit-remaining-tokens"],
                         str(tpm - est_chat))
        used = json.loads(body)["usage"]["total_tokens"]
        self.assertEqual(json.loads(body)["usage"]["prompt_tokens"],
                         3 + 4 + 4 + 85)

        resp = {"model": "fast", "input": [{"role": "user", "content": [
            {"type": "input_text", "text": "Describe this picture."},
            {"type": "input_image", "image_url": url}]}]}
        raw = json.dumps(resp, separators=(",", ":")).encode()
        est_resp = estimate_input(sent_body(raw))
        status, headers, body = gw.responses(None, raw=raw)
        self.assertEqual(status, 200, body[:300])
        self.assertEqual(headers["x-ratelimit-remaining-tokens"],
                         str(tpm - used - est_resp))


# ------------------------------------------------------------ step-down


class TestStepDown(PolicyCase):
    TEXT = "tell me sim:words=40"

    def budget(self, step):
        return ("budgets:\n"
                "  - {scope: key, name: alpha, period: day, "
                'limit_usd: "0.01", step_down: {at_percent: 5, %s}}' % step)

    def run_three(self, gw):
        raw = chat_raw(self.TEXT, model="gpt-4o", max_tokens=50)
        out = [self.chat(gw, raw) for _ in range(3)]
        for status, _, body in out:
            self.assertEqual(status, 200, body)
        return raw, out

    def test_step_down_to_cheaper_model_near_the_limit(self):
        gw = self.start(self.budget("model: tiny"))
        premium = sim_cost(self.TEXT, 40, PRICES["premium"])
        # 5% of $0.01 is $0.0005: reached after two premium calls.
        self.assertLess(premium * 100, 10**10 * 5)
        self.assertGreaterEqual(2 * premium * 100, 10**10 * 5)

        raw, out = self.run_three(gw)

        sent = [json.loads(r["body"])["model"] for r in self.sim.requests()]
        self.assertEqual(sent, ["gpt-4o", "gpt-4o", "gpt-4.1-nano"])
        tiny = sim_cost(self.TEXT, 40, TINY)
        self.assertEqual([h["x-tollgate-cost-usd"] for _, h, _ in out],
                         [usd(premium), usd(premium), usd(tiny)])
        rows = self.outcomes(gw, 3)
        self.assertEqual([r["policy"] for r in rows],
                         ["", "", "step_down:model=tiny"])
        self.assertEqual([r["model"] for r in rows],
                         ["gpt-4o", "gpt-4o", "tiny"])
        self.assertEqual(rows[2]["requested_model"], "gpt-4o")
        self.assertEqual(rows[2]["cost_pico"], tiny)
        (att,) = gw.attempts(rows[2]["id"])
        self.assertEqual(att["upstream_model"], "gpt-4.1-nano")

    def test_step_down_lowers_max_tokens_near_the_limit(self):
        gw = self.start(self.budget("max_tokens: 8"))
        raw, out = self.run_three(gw)
        bodies = [r["body"].encode() for r in self.sim.requests()]
        self.assertEqual(bodies, [raw, raw, raw.replace(
            b'"max_tokens":50', b'"max_tokens":8')])
        third = json.loads(out[2][2])
        self.assertEqual(third["choices"][0]["finish_reason"], "length")
        self.assertEqual(third["usage"]["completion_tokens"], 8)
        rows = self.outcomes(gw, 3)
        self.assertEqual([r["policy"] for r in rows],
                         ["", "", "step_down:max_tokens=8"])

    def test_budgeted_call_without_max_tokens_gets_the_default_cap(self):
        gw = self.start("default_max_tokens: 64\n"
                        "budgets:\n"
                        "  - {scope: key, name: alpha, period: day, "
                        'limit_usd: "1"}')
        raw = chat_raw(HI)
        status, _, body = self.chat(gw, raw)
        self.assertEqual(status, 200, body)
        sent = self.sim.requests()[-1]["body"].encode()
        self.assertEqual(sent, b'{"max_tokens":64,' + sent_body(raw)[1:])


class TestSoftLimit(PolicyCase):
    def test_soft_limit_header_log_and_webhook_once(self):
        received = []
        handler = type("H", (Hook,), {"received": received})
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.addCleanup(server.server_close)
        self.addCleanup(server.shutdown)
        cost = sim_cost(HI, 5, PRICES["cheap"])
        soft = 10**7  # $0.00001: crossed by the third call
        self.assertTrue(2 * cost < soft <= 3 * cost)
        gw = self.start("webhook_url: http://127.0.0.1:%d/hook\n"
                        "budgets:\n"
                        "  - {scope: key, name: alpha, period: day, "
                        'limit_usd: "1", soft_usd: "0.00001"}'
                        % server.server_address[1])
        raw = chat_raw(HI, max_tokens=20)
        out = [self.chat(gw, raw) for _ in range(4)]
        self.assertEqual([s for s, _, _ in out], [200] * 4)
        warnings = [h.get("x-tollgate-budget-warning") for _, h, _ in out]
        self.assertEqual(warnings, [None, None, "key alpha day: $%s of $%s"
                                    % (usd(3 * cost), usd(soft)), None])

        wait_for(lambda: len(received) >= 1)
        path, hook_headers, data = received[0]
        self.assertEqual(path, "/hook")
        self.assertNotIn("authorization",
                         {k.lower() for k in hook_headers})
        self.assertEqual(json.loads(data), {
            "event": "budget.soft_limit", "scope": "key", "name": "alpha",
            "period": "day", "spent_usd": usd(3 * cost),
            "soft_usd": usd(soft),
            "outcome": out[2][1]["x-tollgate-outcome"]})
        self.assertIn("budget soft limit: day key 'alpha' has spent $%s of "
                      "its $%s soft limit" % (usd(3 * cost), usd(soft)),
                      gw.log())
        self.stop_checked(gw)
        self.assertEqual(len(received), 1)


# ------------------------------------------------------------ approvals


class TestApprovals(PolicyCase):
    RULES = ("admin_key_env: TG_E2E_POLICY_ADMIN_KEY\n"
             "budgets:\n"
             "  - {scope: key, name: alpha, period: total, "
             'limit_usd: "100"}\n'
             "  - {scope: key, name: beta, period: total, "
             'limit_usd: "100"}\n'
             "approval_rules:\n"
             "  - {name: premium-review, task: review, min_tier: 3, "
             'approvers: "ops lead"}')
    REVIEW = {"X-Tollgate-Task": "review"}

    def setUp(self):
        super().setUp()
        self.raw = chat_raw(HI, model="gpt-4o", max_tokens=50)
        self.worst = worst_case(self.raw, 50, PRICES["premium"])

    def review(self, gw, approval=None, key="tg-key-alpha"):
        headers = dict(self.REVIEW)
        if approval is not None:
            headers["x-tollgate-approval"] = approval
        return self.chat(gw, self.raw, key=key, headers=headers)

    def held(self, gw, approval=None, key="tg-key-alpha"):
        """A call the rule holds; returns (approval id, message)."""
        status, headers, body = self.review(gw, approval, key)
        self.assertEqual(status, 403, body)
        err = error_of(body)
        self.assertEqual(err["type"], "permission_error")
        self.assertEqual(err["code"], "approval_required")
        aid = headers.get("x-tollgate-approval-id", "")
        self.assertRegex(aid, r"^apr_[0-9a-f]{24}$")
        self.assertIn(aid, err["message"])
        return aid, err["message"], headers["x-tollgate-outcome"]

    def pending_message(self, aid):
        return ("This call needs approval under rule 'premium-review' "
                "(worst-case cost $%s). Approval %s is pending; ops lead "
                "can approve it with `tollgate approve %s` or the admin "
                "API, then retry with the header x-tollgate-approval: %s."
                % (usd(self.worst), aid, aid, aid))

    def verdict_message(self, aid, verdict):
        return ("This call needs approval under rule 'premium-review'; "
                "approval %s %s. Ask ops lead." % (aid, verdict))

    def admin(self, gw, path, body):
        status, _, data = harness.http(
            "POST", gw.url + path, body,
            {"Authorization": "Bearer " + ADMIN_KEY})
        self.assertEqual(status, 200, "POST %s: %r" % (path, data))
        return json.loads(data)

    def cli(self, gw, *args):
        env = dict(os.environ, TG_E2E_SIM_KEY="sim-secret")
        done = subprocess.run([gw.binary, "approve"] + list(args)
                              + ["--config", gw.config],
                              capture_output=True, text=True, env=env,
                              timeout=30)
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        self.assertNotIn("AddressSanitizer", done.stderr)
        return done.stdout

    def test_approve_once_through_the_admin_api(self):
        gw = self.start(self.RULES)
        aid, message, held_oid = self.held(gw)
        self.assertEqual(message, self.pending_message(aid))
        self.assertEqual(self.sim.requests(), [])
        _, pending, _ = self.held(gw, approval=aid)
        self.assertEqual(pending,
                         self.verdict_message(aid, "still awaits a decision"))

        self.admin(gw, "/admin/approvals/%s/approve" % aid, {"by": "alice"})
        status, headers, body = self.review(gw, approval=aid)
        self.assertEqual(status, 200, body)
        passed_oid = headers["x-tollgate-outcome"]
        self.assertEqual(len(self.sim.requests()), 1)

        again, used, _ = self.held(gw, approval=aid)
        self.assertEqual(again, aid)
        self.assertEqual(used, self.verdict_message(
            aid, "was for one call and has been used"))
        # Calls the rule does not cover pass without approval.
        status, _, body = self.chat(gw, self.raw)
        self.assertEqual(status, 200, body)

        self.outcomes(gw, 5)
        self.assertEqual(gw.outcome(held_oid)["policy"],
                         "held:%s (premium-review)" % aid)
        self.assertEqual(gw.outcome(held_oid)["http_status"], 403)
        self.assertEqual(gw.outcome(passed_oid)["policy"],
                         "approved:%s by alice" % aid)

    def test_approve_once_and_deny_with_the_cli(self):
        gw = self.start(self.RULES)
        aid, _, _ = self.held(gw)
        self.cli(gw, aid, "--by", "bob")
        status, _, body = self.review(gw, approval=aid)
        self.assertEqual(status, 200, body)

        denied, _, _ = self.held(gw)
        self.assertNotEqual(denied, aid)
        self.cli(gw, denied, "--deny", "--by", "carol")
        _, message, oid = self.held(gw, approval=denied)
        self.assertEqual(message, self.verdict_message(denied, "was denied"))
        self.assertEqual(len(self.sim.requests()), 1)
        self.outcomes(gw, 4)
        self.assertEqual(gw.outcome(oid)["policy"],
                         "held:%s (premium-review)" % denied)

    def test_approval_is_for_its_own_key(self):
        gw = self.start(self.RULES)
        aid, _, _ = self.held(gw)
        self.admin(gw, "/admin/approvals/%s/approve" % aid, {"by": "alice"})
        _, message, _ = self.held(gw, approval=aid, key="tg-key-beta")
        self.assertEqual(message, self.verdict_message(
            aid, "is for another key, task or tier"))
        status, _, body = self.review(gw, approval=aid)
        self.assertEqual(status, 200, body)

    def test_standing_approval_until_a_date(self):
        gw = self.start(self.RULES)
        aid, _, _ = self.held(gw)
        self.admin(gw, "/admin/approvals/%s/approve" % aid,
                   {"by": "alice", "standing": True, "until": "2026-01-02"})
        for _ in range(2):  # with or without the header
            status, headers, body = self.review(gw)
            self.assertEqual(status, 200, body)
        status, _, body = self.review(gw, approval=aid)
        self.assertEqual(status, 200, body)
        rows = self.outcomes(gw, 4)
        self.assertEqual([r["policy"] for r in rows[1:]],
                         ["approved:%s by alice" % aid] * 3)

        gw.advance(24 * 3600 * 1000)  # 2026-01-02T00:00:00Z: it has ended
        later, _, _ = self.held(gw)
        self.assertNotEqual(later, aid)
        _, message, _ = self.held(gw, approval=aid)
        self.assertEqual(message, self.verdict_message(aid, "has expired"))
        self.assertEqual(len(self.sim.requests()), 3)

    def test_once_approval_not_used_up_by_a_budget_refusal(self):
        cost = sim_cost(HI, 5, PRICES["premium"])
        limit = micro_ceil(self.worst)  # one call a day
        self.assertGreater(cost + self.worst, limit)
        gw = self.start("admin_key_env: TG_E2E_POLICY_ADMIN_KEY\n"
                        "budget_timezone: Europe/Berlin\n"
                        "budgets:\n"
                        "  - {scope: key, name: alpha, period: day, "
                        'limit_usd: "%s"}\n' % limit_text(limit) +
                        "approval_rules:\n"
                        "  - {name: premium-review, task: review, "
                        'min_tier: 3, approvers: "ops lead"}')
        # Held while the budget still has room (a budget refusal comes
        # before any approval), approved, then the budget is spent.
        aid, _, _ = self.held(gw)
        self.admin(gw, "/admin/approvals/%s/approve" % aid, {"by": "alice"})
        status, _, body = self.chat(gw, self.raw)  # spends today's budget
        self.assertEqual(status, 200, body)
        status, _, body = self.review(gw, approval=aid)
        self.assert_budget_refusal(status, body)

        # The approved call never ran: tomorrow the approval still passes.
        gw.advance(TO_BERLIN_MIDNIGHT_MS)
        status, _, body = self.review(gw, approval=aid)
        self.assertEqual(status, 200, body)
        self.assertEqual(len(self.sim.requests()), 2)

    def test_cost_rule_holds_without_any_budget(self):
        gw = self.start("approval_rules:\n"
                        '  - {name: big, cost_over_usd: "0.001", '
                        'approvers: "ops lead"}')
        raw = chat_raw(HI, model="gpt-4o", max_tokens=500)
        worst = worst_case(raw, 500, PRICES["premium"])
        self.assertGreater(worst, 10**9)
        status, headers, body = self.chat(gw, raw)
        self.assertEqual(status, 403, body)
        self.assertEqual(error_of(body)["code"], "approval_required")
        aid = headers["x-tollgate-approval-id"]
        self.assertIn("(worst-case cost $%s)" % usd(worst),
                      error_of(body)["message"])
        self.assertEqual(self.sim.requests(), [], aid)

    def test_team_past_80_percent_of_budget_is_held(self):
        # Long answers, so that 80% is reached while calls still fit:
        # six pass (5 spent + a worst case fit), the seventh is held.
        text = "write sim:words=2000"
        raw = chat_raw(text, max_tokens=2000)
        cost = sim_cost(text, 2000, PRICES["cheap"])
        worst = worst_case(sent_body(raw), 2000, PRICES["cheap"])
        limit = micro_floor(6 * cost * 100 // 80)
        self.assertLess(5 * cost * 100, limit * 80)
        self.assertLessEqual(5 * cost + worst, limit)
        gw = self.start("budgets:\n"
                        "  - {scope: team, name: support, period: day, "
                        'limit_usd: "%s"}\n' % limit_text(limit) +
                        "approval_rules:\n"
                        "  - {name: team-80, budget_percent_over: 80, "
                        'budget_scope: team, approvers: "finance"}')
        for i in range(6):
            status, _, body = self.chat(gw, raw)
            self.assertEqual(status, 200, "call %d: %r" % (i, body))
        status, headers, body = self.chat(gw, raw)
        self.assertEqual(status, 403, body)
        aid = headers["x-tollgate-approval-id"]
        self.assertEqual(
            error_of(body)["message"],
            "This call needs approval under rule 'team-80' (worst-case "
            "cost $%s). Approval %s is pending; finance can approve it "
            "with `tollgate approve %s` or the admin API, then retry with "
            "the header x-tollgate-approval: %s."
            % (usd(worst), aid, aid, aid))
        self.assertEqual(len(self.sim.requests()), 6)


class TestReservationBound(PolicyCase):
    """The reservation must be a true upper bound of what the attempt
    bills; the simulator answers at once."""

    def test_failed_attempt_releases_its_reservation(self):
        failing = chat_raw(HI + " sim:fault=500", max_tokens=20)
        raw = chat_raw(HI, max_tokens=20)
        worst = worst_case(sent_body(failing), 20, PRICES["cheap"])
        cost = sim_cost(HI, 5, PRICES["cheap"])
        limit = micro_ceil(worst)  # room for one worst case
        gw = self.start("budgets:\n"
                        "  - {scope: key, name: alpha, period: day, "
                        'limit_usd: "%s"}' % limit_text(limit))
        status, _, body = self.chat(gw, failing)
        self.assertGreaterEqual(status, 500, body)
        status, _, body = self.chat(gw, raw)
        self.assertEqual(status, 200, body)
        status, _, body = self.chat(gw, raw)
        self.assert_budget_refusal(status, body)
        rows = self.outcomes(gw, 3)
        self.assertEqual(sum(r["cost_pico"] or 0 for r in rows), cost)

    def test_unbudgeted_call_logs_no_reservation_overrun(self):
        # No budget applies to alpha: nothing was reserved, so nothing
        # can be overrun, and the operator's log must not say so.
        gw = self.start("budgets:\n"
                        "  - {scope: key, name: beta, period: day, "
                        'limit_usd: "1"}')
        status, _, body = self.chat(gw, chat_raw(HI))
        self.assertEqual(status, 200, body)
        self.outcomes(gw, 1)
        self.assertNotIn("more than its reservation", gw.log())

    def test_web_search_fees_stay_inside_the_reservation(self):
        # The search tool allows 3 searches at $0.01: the bound must
        # hold them (budget_bound_t.web_searches), not tokens alone.
        sonnet = {"input": "3.00", "cached_input": "0.30",
                  "cache_write": "3.75", "output": "15.00",
                  "web_search_per_1k": "10"}
        providers = [
            {"name": "sim", "base_url": self.sim.url + "/v1",
             "api_key_env": "TG_E2E_SIM_KEY"},
            {"name": "anth", "kind": "anthropic",
             "base_url": self.sim.url + "/v1",
             "api_key_env": "TG_E2E_SIM_KEY"}]
        model = {"name": "sonnet-web", "provider": "anth",
                 "upstream": "claude-sonnet-4-5", "price": sonnet}
        gw = self.start("budgets:\n"
                        "  - {scope: key, name: alpha, period: day, "
                        'limit_usd: "0.02"}', more_models=[model],
                        providers=providers)
        body = {"model": "sonnet-web", "max_tokens": 20,
                "tools": [{"type": "web_search_20250305",
                           "name": "web_search", "max_uses": 3}],
                "messages": [{"role": "user",
                              "content": "find sim:words=5 "
                                         "sim:web_search=3"}]}
        # Tokens alone are far below the limit: 1 KiB of request at the
        # dearest input rate plus 20 output tokens is under $0.01.
        status, headers, data = gw.messages(body)

        rows = self.outcomes(gw, 1)
        spent = sum(r["cost_pico"] or 0 for r in rows)
        self.assertLessEqual(spent, 2 * 10**10, "status %d, log:\n%s"
                             % (status, gw.log()))
        self.assertEqual(status, 429, data)
        self.assertEqual(json.loads(data)["error"]["type"],
                         "rate_limit_error")
        self.assertEqual(headers["x-tollgate-error"], "budget_exceeded")

    def test_image_parts_stay_inside_the_reservation(self):
        # A provider bills an image part at 85 tokens or more (OpenAI's
        # low-detail floor; the simulator's rule), more than the bytes
        # of a short URL: the bound must count images, not only bytes.
        parts = [{"type": "text", "text": HI}] + [
            {"type": "image_url",
             "image_url": {"url": "https://x.io/1.png"}}] * 100
        body = {"model": "fast", "max_tokens": 20,
                "messages": [{"role": "user", "content": parts}]}
        raw = json.dumps(body, separators=(",", ":")).encode()
        bytes_only = worst_case(sent_body(raw), 20, PRICES["cheap"])
        limit = micro_ceil(bytes_only)
        billed = (pico(3 + 4 + 6 + 85 * 100, PRICES["cheap"]["input"]) +
                  pico(5, PRICES["cheap"]["output"]))
        self.assertGreater(billed, limit)
        gw = self.start("budgets:\n"
                        "  - {scope: key, name: alpha, period: day, "
                        'limit_usd: "%s"}' % limit_text(limit))

        status, _, body = self.chat(gw, raw)

        rows = self.outcomes(gw, 1)
        spent = sum(r["cost_pico"] or 0 for r in rows)
        self.assertLessEqual(spent, limit, "status %d, log:\n%s"
                             % (status, gw.log()))
        self.assert_budget_refusal(status, body)


# ------------------------------------------------------------- BUG-23


class TestKeyNeverWritten(PolicyCase):
    def written(self, gw):
        """Everything the gateway wrote: its stdout and stderr, and every
        file beside its ledger."""
        text = self.all_logs(gw).encode()
        text += (gw.proc.stdout.read() or "").encode()
        for name in os.listdir(gw.dir):
            with open(os.path.join(gw.dir, name), "rb") as f:
                text += f.read()
        return text

    def test_bug23_budget_refusal_never_writes_the_key(self):
        keys = dict(KEYS)
        keys[LEAKY_KEY] = ("bug23", "qa", "qa@example.com", None)
        gw = self.start("budgets:\n"
                        "  - {scope: key, name: bug23, period: total, "
                        'limit_usd: "0.000001"}', keys=keys, debug=True)
        replies = []
        for _ in range(2):
            status, headers, body = self.chat(gw, chat_raw(HI), key=LEAKY_KEY)
            self.assert_budget_refusal(status, body)
            replies.append(json.dumps(headers).encode() + body)
        status, headers, body = self.chat(gw, chat_raw(HI), key=UNKNOWN_KEY)
        self.assertEqual(status, 401, body)
        replies.append(json.dumps(headers).encode() + body)
        status, headers, body = gw.messages(
            {"model": "fast", "max_tokens": 5,
             "messages": [{"role": "user", "content": "hi"}]},
            key=UNKNOWN_KEY)
        self.assertEqual(status, 401, body)
        replies.append(json.dumps(headers).encode() + body)
        self.assertEqual(self.sim.requests(), [])
        rows = self.outcomes(gw, 2)
        self.assertEqual([r["key_id"] for r in rows
                          if r["http_status"] == 429], ["bug23", "bug23"])
        self.stop_checked(gw)

        written = self.written(gw) + b"".join(replies)
        for secret in (LEAKY_KEY, UNKNOWN_KEY):
            self.assertEqual(written.count(secret.encode()), 0, secret)

    def test_bug23_expired_runtime_key_never_written(self):
        gw = self.start("admin_key_env: TG_E2E_POLICY_ADMIN_KEY", debug=True)
        status, _, data = harness.http(
            "POST", gw.url + "/admin/keys",
            {"name": "temp", "team": "qa", "owner": "qa@example.com",
             "expires": "2026-01-01T01:00Z"}, auth(ADMIN_KEY))
        self.assertEqual(status, 201, data)
        secret = json.loads(data)["secret"]
        status, _, body = self.chat(gw, chat_raw(HI), key=secret)
        self.assertEqual(status, 200, body)
        gw.advance(2 * 3600 * 1000)
        status, headers, body = self.chat(gw, chat_raw(HI), key=secret)
        self.assertEqual(status, 401, body)
        reply = json.dumps(headers).encode() + body
        self.stop_checked(gw)
        written = self.written(gw) + reply
        self.assertEqual(written.count(secret.encode()), 0)


if __name__ == "__main__":
    unittest.main()
