"""End-to-end tests of every surface Tollgate serves beyond plain OpenAI
chat: Anthropic native /v1/messages, OpenAI chat translated to an
Anthropic model, /v1/responses, /v1/embeddings, Azure and Gemini
providers, and calls whose usage never arrives. The real gateway
(sanitizer build) runs in front of the provider simulator; the `sim:`
directives in the last user message fix the usage, so every expected
cost is computed here exactly, in integer picodollars, from the config
prices and those numbers."""
import http.client
import json
import os
import re
import tempfile
import unittest

import harness
from gateway import Gateway, PRICES, pico, usd, wait_for

SIM_KEY = "sim-secret"
AZURE_VERSION = "2024-10-21"

# BUG-01's prices (USD per million tokens): Claude Sonnet 4.5's.
SONNET = {"input": "3.00", "cached_input": "0.30", "cache_write": "3.75",
          "output": "15.00"}
# The same with the 1-hour cache write (V13).
SONNET_1H = dict(SONNET, cache_write_1h="6.00")
GPT5_MINI = {"input": "0.25", "cached_input": "0.025", "output": "2.00"}
GEMINI_PRO = {"input": "1.25", "cached_input": "0.125", "output": "10.00"}
EMBED = {"input": "0.02", "output": "0"}

# Azure deployments the simulator serves, and the model each answers as.
DEPLOYMENTS = {"prod-4o": "gpt-4o-2024-11-20",
               "snap-4o": "gpt-4o-2024-05-13",
               "house-4o": "house-4o-build",
               "zeta": "zeta-9",
               "embed-depl": "text-embedding-3-small"}

# A price file with an exact entry for one dated snapshot (BUG-06).
LITELLM_DATED = {"gpt-4o-2024-05-13": {
    "litellm_provider": "azure", "mode": "chat",
    "input_cost_per_token": 5e-06, "output_cost_per_token": 1.5e-05}}
ALIASES = {"gpt-4o-2024-05-13": "gpt-4o", "house-4o-build": "gpt-4o"}

# BUG-01: the same call through both surfaces.
BUG01 = "summarise sim:input=20 sim:cache_write=10000 " \
        "sim:cache_read=30000 sim:words=400"
BUG01_PICO = 52560 * 10**6       # $0.05256


def providers(sim_url):
    env = "TG_E2E_SIM_KEY"
    return [
        {"name": "sim", "base_url": sim_url + "/v1", "api_key_env": env},
        {"name": "anth", "kind": "anthropic", "base_url": sim_url + "/v1",
         "api_key_env": env},
        {"name": "azure", "kind": "azure", "base_url": sim_url,
         "api_key_env": env, "api_version": AZURE_VERSION},
        {"name": "gem", "kind": "gemini",
         "base_url": sim_url + "/v1beta/openai", "api_key_env": env},
    ]


def models(sonnet_price=None):
    return [
        {"name": "sonnet", "provider": "anth", "upstream":
         "claude-sonnet-4-5", "price": sonnet_price or SONNET,
         "max_tokens": 1024},
        {"name": "fast", "upstream": "gpt-4o-mini",
         "price": PRICES["cheap"]},
        {"name": "mini5", "upstream": "gpt-5-mini", "price": GPT5_MINI},
        {"name": "embed", "upstream": "text-embedding-3-small",
         "price": EMBED},
        {"name": "azure-4o", "provider": "azure", "upstream": "prod-4o"},
        {"name": "azure-snap", "provider": "azure", "upstream": "snap-4o"},
        {"name": "azure-house", "provider": "azure",
         "upstream": "house-4o"},
        {"name": "azure-zeta", "provider": "azure", "upstream": "zeta"},
        {"name": "azure-embed", "provider": "azure",
         "upstream": "embed-depl"},
        {"name": "gem-pro", "provider": "gem", "upstream": "gemini-2.5-pro",
         "price": GEMINI_PRO},
    ]


# ------------------------------------------------------------ helpers


def anthropic_pico(price, uncached, read=0, write_5m=0, write_1h=0,
                   output=0):
    """Exact cost of Anthropic's disjoint buckets at a config price."""
    return (pico(uncached, price["input"]) +
            pico(read, price["cached_input"]) +
            pico(write_5m, price["cache_write"]) +
            pico(write_1h, price.get("cache_write_1h",
                                     price["cache_write"])) +
            pico(output, price["output"]))


def openai_pico(price, prompt, cached, output):
    """Exact cost of OpenAI subset semantics (cached inside prompt)."""
    return (pico(prompt - cached, price["input"]) +
            pico(cached, price.get("cached_input", price["input"])) +
            pico(output, price["output"]))


def row_pico(row, price):
    """What a ledger row's own (normalised) token counts cost at a
    config price: checks that an estimate is priced like exact usage."""
    write_1h = row.get("cache_write_1h_tokens") or 0
    writes = row["cache_write_tokens"]
    uncached = row["input_tokens"] - row["cached_tokens"] - writes
    return anthropic_pico(price, uncached, row["cached_tokens"],
                          writes - write_1h, write_1h,
                          row["output_tokens"])


def read_body(resp):
    """The whole body, or what arrived of it when it was cut short."""
    try:
        return resp.read()
    except http.client.IncompleteRead as exc:
        return exc.partial


def sse_parse(raw):
    """[(event name or None, data)] for every event of an SSE body; a
    last event without its blank line is kept."""
    events, name, data = [], None, []
    for line in raw.decode("utf-8").replace("\r\n", "\n").split("\n"):
        if line == "":
            if data or name:
                events.append((name, "\n".join(data)))
            name, data = None, []
        elif line.startswith(":"):
            continue
        elif line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            value = line[5:]
            data.append(value[1:] if value.startswith(" ") else value)
    if data or name:
        events.append((name, "\n".join(data)))
    return events


_IDS = re.compile(rb'"(id|item_id|request_id)"(\s*:\s*)"[^"]*"')


def same_but_ids(raw):
    """The bytes with every id the simulator numbers (message, response,
    item and request ids) blanked, so two answers to the same request
    compare byte for byte."""
    return _IDS.sub(rb'"\1"\2"ID"', raw)


def subset(row, expected):
    return {k: row[k] for k in expected}


class SurfaceCase(unittest.TestCase):
    """A simulator and a gateway with every provider kind configured."""
    sim_args = ("--clock", "virtual", "--key", SIM_KEY)
    sonnet_price = None
    extra_models = ()

    def setUp(self):
        args = list(self.sim_args)
        for name, model in DEPLOYMENTS.items():
            args += ["--azure-deployment", f"{name}={model}"]
        self.sim = harness.Sim(args)
        self.prices = self.write_price_file()
        self.gw = Gateway(self.sim.url,
                          models=models(self.sonnet_price) +
                          list(self.extra_models),
                          providers=providers(self.sim.url),
                          aliases=ALIASES, prices=[self.prices]).start()

    def tearDown(self):
        rc = self.gw.stop()
        log = self.gw.log()
        self.sim.stop()
        os.unlink(self.prices)
        self.assertEqual(rc, 0, "gateway exit code; log:\n" + log)
        self.assertNotIn("ERROR: AddressSanitizer", log)
        self.assertNotIn("runtime error:", log)

    @staticmethod
    def write_price_file():
        fd, path = tempfile.mkstemp(prefix="tg-prices-", suffix=".json")
        with os.fdopen(fd, "w") as f:
            json.dump(LITELLM_DATED, f)
        return path

    # -- talking to the simulator directly, for byte comparisons

    def direct(self, path, body, headers=None):
        """The simulator's own answer to body, authenticated as the
        gateway authenticates there."""
        h = {"Content-Type": "application/json"}
        if path == "/v1/messages":
            h.update({"x-api-key": SIM_KEY,
                      "anthropic-version": "2023-06-01"})
        else:
            h["Authorization"] = "Bearer " + SIM_KEY
        h.update(headers or {})
        conn = harness.open_request("POST", self.sim.url + path, body, h)
        try:
            resp = conn.getresponse()
            hdrs = {k.lower(): v for k, v in resp.getheaders()}
            return resp.status, hdrs, read_body(resp)
        finally:
            conn.close()

    # -- the gateway

    def stream(self, path, body, auth="bearer", headers=None):
        """Streams through the gateway: (status, headers, raw body)."""
        if path == "/v1/messages":
            auth = "x-api-key"
            headers = dict({"anthropic-version": "2023-06-01"},
                           **(headers or {}))
        conn = self.gw.send(path, body, headers=headers, auth=auth)
        try:
            resp = conn.getresponse()
            hdrs = {k.lower(): v for k, v in resp.getheaders()}
            return resp.status, hdrs, read_body(resp)
        finally:
            conn.close()

    def row(self, oid):
        """The outcome row of oid, once the ledger has written it."""
        wait_for(lambda: len(self.gw.rows("outcomes", "id = ?",
                                          (oid,))) == 1)
        return self.gw.outcome(oid)

    def only_attempt(self, oid):
        self.row(oid)
        atts = self.gw.attempts(oid)
        self.assertEqual(len(atts), 1, atts)
        return atts[0]

    def last_sim_request(self):
        reqs = self.sim.requests()
        self.assertTrue(reqs, "the simulator received nothing")
        return reqs[-1]

    def assert_anthropic_error(self, status, headers, body, want_status,
                               err_type, code):
        self.assertEqual(status, want_status, body)
        obj = json.loads(body)
        self.assertEqual(obj["type"], "error", obj)
        self.assertEqual(obj["error"]["type"], err_type, obj)
        self.assertTrue(obj["error"]["message"])
        self.assertEqual(headers.get("x-tollgate-error"), code, headers)

    def assert_estimated(self, row, price):
        """A call whose usage never came: estimated, never $0, never an
        exact cost, and the estimate priced from the row's tokens."""
        self.assertEqual(subset(row, {
            "cost_status": "estimated", "usage_estimated": 1,
            "cost_pico": None}), {
            "cost_status": "estimated", "usage_estimated": 1,
            "cost_pico": None})
        self.assertGreater(row["output_tokens"], 0)
        self.assertGreater(row["cost_estimate_pico"], 0)
        self.assertEqual(row["cost_estimate_pico"], row_pico(row, price))


def msg_body(content, stream=False, model="sonnet", max_tokens=1024):
    body = {"model": model, "max_tokens": max_tokens,
            "messages": [{"role": "user", "content": content}]}
    if stream:
        body["stream"] = True
    return body


def upstream_body(body, model):
    return dict(body, model=model)


# ------------------------------------------------------------- Anthropic


V12 = ("hello sim:input=3000 sim:cache_write=2000 sim:cache_read=10000 "
       "sim:words=800 sim:cache_split=none")
V12_PICO = 31500 * 10**6                 # $0.0315
V13 = ("hello sim:input=500 sim:cache_write=2000 sim:cache_write_1h=4000 "
       "sim:words=1000")
V13_PICO = 48000 * 10**6                 # $0.048
BUG08 = "hello sim:input=25 sim:cache_read=4000 sim:words=300"
BUG08_PICO = 5775 * 10**6                # $0.005775


class TestAnthropicNative(SurfaceCase):
    V12_ROW = {"endpoint": "messages", "http_status": 200,
               "input_tokens": 15000, "cached_tokens": 10000,
               "cache_write_tokens": 2000, "cache_write_1h_tokens": 0,
               "output_tokens": 800, "cost_status": "priced",
               "cost_pico": V12_PICO, "usage_estimated": 0,
               "cost_estimate_pico": None}

    def test_v12_plain_cache_read_and_write_priced_exactly(self):
        self.assertEqual(anthropic_pico(SONNET, 3000, 10000, 2000, 0, 800),
                         V12_PICO)
        body = msg_body(V12)
        status, headers, resp = self.gw.messages(body)
        self.assertEqual(status, 200, resp)
        self.assertEqual(headers["x-tollgate-cost-usd"], usd(V12_PICO))
        usage = json.loads(resp)["usage"]
        self.assertEqual(subset(usage, {
            "input_tokens": 3000, "cache_creation_input_tokens": 2000,
            "cache_read_input_tokens": 10000, "output_tokens": 800}), {
            "input_tokens": 3000, "cache_creation_input_tokens": 2000,
            "cache_read_input_tokens": 10000, "output_tokens": 800})
        self.assertNotIn("cache_creation", usage)

        sent = self.last_sim_request()
        self.assertEqual(sent["path"], "/v1/messages")
        self.assertEqual(json.loads(sent["body"]),
                         upstream_body(body, "claude-sonnet-4-5"))
        self.assertEqual(sent["headers"]["x-api-key"], SIM_KEY)
        self.assertEqual(sent["headers"]["anthropic-version"], "2023-06-01")

        oid = headers["x-tollgate-outcome"]
        self.assertEqual(subset(self.row(oid), self.V12_ROW), self.V12_ROW)
        att = self.only_attempt(oid)
        self.assertEqual(subset(att, {
            "provider": "anth", "upstream_model": "claude-sonnet-4-5",
            "cost_pico": V12_PICO}),
            {"provider": "anth", "upstream_model": "claude-sonnet-4-5",
             "cost_pico": V12_PICO})
        self.assertRegex(att["price_source"], r"^config.*#sonnet$")

        # The caller got the provider's bytes unchanged.
        _, _, mine = self.direct("/v1/messages",
                                 upstream_body(body, "claude-sonnet-4-5"))
        self.assertEqual(same_but_ids(resp), same_but_ids(mine))

    def test_v12_streamed_priced_exactly_bytes_unchanged(self):
        body = msg_body(V12, stream=True)
        status, headers, raw = self.stream("/v1/messages", body)
        self.assertEqual(status, 200, raw)
        self.assertEqual(headers["content-type"], "text/event-stream")
        oid = headers["x-tollgate-outcome"]
        _, _, mine = self.direct("/v1/messages",
                                 upstream_body(body, "claude-sonnet-4-5"))
        self.assertEqual(same_but_ids(raw), same_but_ids(mine))
        self.assertEqual(sse_parse(raw)[-1][0], "message_stop")
        want = dict(self.V12_ROW, streamed=1)
        self.assertEqual(subset(self.row(oid), want), want)

    def test_bug08_delta_with_input_counts_is_not_added(self):
        self.check_bug08(BUG08 + " sim:delta_usage=full", full=True)

    def test_bug08_delta_with_output_only_keeps_start_input(self):
        self.check_bug08(BUG08, full=False)

    def check_bug08(self, content, full):
        self.assertEqual(anthropic_pico(SONNET, 25, 4000, 0, 0, 300),
                         BUG08_PICO)
        body = msg_body(content, stream=True)
        status, headers, raw = self.stream("/v1/messages", body)
        self.assertEqual(status, 200, raw)
        events = sse_parse(raw)

        # The shape BUG-08 is about: usage in message_start (output 1)
        # and cumulative message_delta events, the last one final.
        names = [name for name, _ in events]
        start = json.loads(events[names.index("message_start")][1])
        self.assertEqual(start["message"]["usage"]["output_tokens"], 1)
        deltas = [json.loads(d) for n, d in events if n == "message_delta"]
        self.assertGreaterEqual(len(deltas), 2)
        self.assertEqual(deltas[-1]["usage"]["output_tokens"], 300)
        self.assertEqual("input_tokens" in deltas[-1]["usage"], full)

        _, _, mine = self.direct("/v1/messages",
                                 upstream_body(body, "claude-sonnet-4-5"))
        self.assertEqual(same_but_ids(raw), same_but_ids(mine))
        want = {"input_tokens": 4025, "cached_tokens": 4000,
                "cache_write_tokens": 0, "output_tokens": 300,
                "cost_status": "priced", "cost_pico": BUG08_PICO,
                "streamed": 1, "usage_estimated": 0}
        row = self.row(headers["x-tollgate-outcome"])
        self.assertEqual(subset(row, want), want)

    def test_x_api_key_or_bearer_authenticate_and_never_go_upstream(self):
        body = msg_body("hi sim:words=3")
        status, _, resp = self.gw.messages(body, auth="x-api-key")
        self.assertEqual(status, 200, resp)
        status, _, resp = self.gw.messages(body, auth="bearer")
        self.assertEqual(status, 200, resp)
        status, headers, resp = self.gw.messages(body, key="tg-key-nope")
        self.assert_anthropic_error(status, headers, resp, 401,
                                    "authentication_error",
                                    "invalid_api_key")
        status, headers, resp = self.gw.messages(body, key=None)
        self.assert_anthropic_error(status, headers, resp, 401,
                                    "authentication_error",
                                    "invalid_api_key")
        reqs = self.sim.requests()
        self.assertEqual(len(reqs), 2)
        for sent in reqs:
            self.assertEqual(sent["headers"]["x-api-key"], SIM_KEY)
            self.assertIsNone(sent["authorization"])
        self.assertNotIn("tg-key-alpha", json.dumps(reqs))

    def test_missing_max_tokens_is_400_in_anthropic_shape(self):
        body = msg_body("hi")
        del body["max_tokens"]
        status, headers, resp = self.gw.messages(body)
        self.assert_anthropic_error(status, headers, resp, 400,
                                    "invalid_request_error",
                                    "missing_field")
        self.assertIn("max_tokens", json.loads(resp)["error"]["message"])
        self.assertEqual(self.sim.requests(), [])
        row = self.row(headers["x-tollgate-outcome"])
        self.assertEqual(subset(row, {
            "endpoint": "messages", "http_status": 400,
            "cost_status": "none", "n_attempts": 0}), {
            "endpoint": "messages", "http_status": 400,
            "cost_status": "none", "n_attempts": 0})

    def test_unknown_model_is_404_in_anthropic_shape(self):
        status, headers, resp = self.gw.messages(msg_body("hi",
                                                          model="claude-9"))
        self.assert_anthropic_error(status, headers, resp, 404,
                                    "not_found_error", "model_not_found")
        self.assertEqual(self.sim.requests(), [])

    def fault(self, name, stream=False):
        body = msg_body(f"x sim:fault={name}", stream=stream)
        if stream:
            return body, self.stream("/v1/messages", body)
        return body, self.gw.messages(body)

    def test_rate_limit_429_passes_through_with_retry_after(self):
        body, (status, headers, resp) = self.fault("429")
        self.assertEqual(status, 429, resp)
        self.assertEqual(headers.get("retry-after"), "7")
        self.assertEqual(json.loads(resp)["error"]["type"],
                         "rate_limit_error")
        _, _, mine = self.direct("/v1/messages",
                                 upstream_body(body, "claude-sonnet-4-5"))
        self.assertEqual(same_but_ids(resp), same_but_ids(mine))
        row = self.row(headers["x-tollgate-outcome"])
        self.assertEqual(subset(row, {
            "http_status": 429, "error_type": "upstream_429",
            "cost_status": "none", "cost_pico": None}), {
            "http_status": 429, "error_type": "upstream_429",
            "cost_status": "none", "cost_pico": None})

    def test_spend_cap_429_has_no_retry_after_and_is_not_retried(self):
        _, (status, headers, resp) = self.fault("spendcap")
        self.assertEqual(status, 429, resp)
        self.assertNotIn("retry-after", headers)
        err = json.loads(resp)["error"]
        self.assertEqual(err["details"]["error_code"],
                         "enforced_spend_limit_reached")
        self.assertEqual(len(self.sim.requests()), 1)
        row = self.row(headers["x-tollgate-outcome"])
        self.assertEqual(row["http_status"], 429)
        self.assertIsNone(row["cost_pico"])

    def test_overloaded_529_passes_through(self):
        _, (status, headers, resp) = self.fault("529")
        self.assertEqual(status, 529, resp)
        self.assertEqual(json.loads(resp)["error"]["type"],
                         "overloaded_error")
        row = self.row(headers["x-tollgate-outcome"])
        self.assertEqual(subset(row, {
            "http_status": 529, "error_type": "upstream_529",
            "cost_status": "none"}), {
            "http_status": 529, "error_type": "upstream_529",
            "cost_status": "none"})

    def test_midstream_error_event_passed_and_usage_estimated(self):
        content = BUG08.replace("words=300", "words=20")
        body = msg_body(content + " sim:fault=midstream-error", stream=True)
        status, headers, raw = self.stream("/v1/messages", body)
        self.assertEqual(status, 200, raw)
        events = sse_parse(raw)
        self.assertEqual(events[-1][0], "error")
        self.assertEqual(json.loads(events[-1][1])["error"]["type"],
                         "overloaded_error")
        self.assertNotIn("message_stop", [n for n, _ in events])
        _, _, mine = self.direct("/v1/messages",
                                 upstream_body(body, "claude-sonnet-4-5"))
        self.assertEqual(same_but_ids(raw), same_but_ids(mine))

        row = self.row(headers["x-tollgate-outcome"])
        want = {"http_status": 200, "error_type": "upstream_stream_error",
                "useful": 0, "input_tokens": 4025, "cached_tokens": 4000}
        self.assertEqual(subset(row, want), want)
        self.assert_estimated(row, SONNET)

    def test_cut_stream_is_estimated_with_exact_input(self):
        content = BUG08.replace("words=300", "words=40")
        body = msg_body(content + " sim:fault=cut", stream=True)
        status, headers, raw = self.stream("/v1/messages", body)
        self.assertEqual(status, 200, raw)
        events = sse_parse(raw)
        _, _, mine = self.direct("/v1/messages",
                                 upstream_body(body, "claude-sonnet-4-5"))
        theirs = sse_parse(mine)
        # What the provider sent arrives unchanged, then Tollgate's error
        # event in Anthropic's shape says the stream broke.
        self.assertEqual([(n, same_but_ids(d.encode())) for n, d in
                          events[:-1]],
                         [(n, same_but_ids(d.encode())) for n, d in theirs])
        self.assertEqual(events[-1][0], "error")
        err = json.loads(events[-1][1])
        self.assertEqual(err["type"], "error")
        self.assertIn(err["error"]["type"], ("api_error", "overloaded_error"))

        row = self.row(headers["x-tollgate-outcome"])
        want = {"error_type": "upstream_cut", "input_tokens": 4025,
                "cached_tokens": 4000}
        self.assertEqual(subset(row, want), want)
        self.assert_estimated(row, SONNET)
        seen = [json.loads(d)["usage"]["output_tokens"]
                for n, d in events if n == "message_delta"]
        self.assertGreaterEqual(row["output_tokens"], max(seen or [1]))


class TestAnthropicCacheTTL(SurfaceCase):
    """V13 needs a 1-hour write price in the config (cache_write_1h)."""
    sonnet_price = SONNET_1H
    V13_ROW = {"input_tokens": 6500, "cached_tokens": 0,
               "cache_write_tokens": 6000, "cache_write_1h_tokens": 4000,
               "output_tokens": 1000, "cost_status": "priced",
               "cost_pico": V13_PICO}

    def test_v13_plain_5m_and_1h_writes_at_their_own_rates(self):
        self.assertEqual(anthropic_pico(SONNET_1H, 500, 0, 2000, 4000, 1000),
                         V13_PICO)
        status, headers, resp = self.gw.messages(msg_body(V13,
                                                          max_tokens=2000))
        self.assertEqual(status, 200, resp)
        self.assertEqual(json.loads(resp)["usage"]["cache_creation"], {
            "ephemeral_5m_input_tokens": 2000,
            "ephemeral_1h_input_tokens": 4000})
        self.assertEqual(headers["x-tollgate-cost-usd"], usd(V13_PICO))
        row = self.row(headers["x-tollgate-outcome"])
        self.assertEqual(subset(row, self.V13_ROW), self.V13_ROW)

    def test_v13_streamed(self):
        body = msg_body(V13, stream=True, max_tokens=2000)
        status, headers, raw = self.stream("/v1/messages", body)
        self.assertEqual(status, 200, raw)
        row = self.row(headers["x-tollgate-outcome"])
        self.assertEqual(subset(row, self.V13_ROW), self.V13_ROW)


class TestAnthropicPricing(SurfaceCase):
    """Fees, long-context tiers, batch and geography on /v1/messages
    (billing-semantics V15, V17, V18)."""
    extra_models = (
        {"name": "sonnet-web", "provider": "anth",
         "upstream": "claude-sonnet-4-5", "max_tokens": 4096,
         "price": dict(SONNET, web_search_per_1k="10")},
        {"name": "sonnet-long", "provider": "anth",
         "upstream": "claude-sonnet-4-5", "max_tokens": 4096,
         "price": dict(SONNET, long_context_threshold="200000",
                       long_context_input="6.00",
                       long_context_cached_input="0.60",
                       long_context_cache_write="7.50",
                       long_context_output="22.50")},
        # No config price: the built-in entry, which carries US x1.1.
        {"name": "sonnet46", "provider": "anth",
         "upstream": "claude-sonnet-4-6", "max_tokens": 4096},
    )

    def priced(self, model, content, max_tokens=4096):
        status, headers, resp = self.gw.messages(
            msg_body(content, model=model, max_tokens=max_tokens))
        self.assertEqual(status, 200, resp)
        oid = headers["x-tollgate-outcome"]
        return headers, self.row(oid), self.only_attempt(oid)

    def test_v17_web_search_fee_on_top_of_tokens(self):
        want = 58500 * 10**6             # $0.0585
        self.assertEqual(anthropic_pico(SONNET, 2000, output=1500) +
                         3 * 10**10, want)
        headers, row, _ = self.priced(
            "sonnet-web", "find sim:input=2000 sim:words=1500 "
            "sim:web_search=3")
        self.assertEqual(headers["x-tollgate-cost-usd"], usd(want))
        self.assertEqual(subset(row, {"web_searches": 3, "cost_pico": want}),
                         {"web_searches": 3, "cost_pico": want})

    def test_v15_long_context_tier_reached_through_cache_reads(self):
        want = 478500 * 10**6            # $0.4785
        headers, row, _ = self.priced(
            "sonnet-long", "read sim:input=40000 sim:cache_write=10000 "
            "sim:cache_read=160000 sim:words=3000")
        self.assertEqual(headers["x-tollgate-cost-usd"], usd(want))
        self.assertEqual(row["input_tokens"], 210000)

    def test_v18_batch_tier_at_half_the_standard_rates(self):
        standard = anthropic_pico(SONNET, 10000, 50000, output=2000)
        self.assertEqual(standard, 75000 * 10**6)
        headers, row, att = self.priced(
            "sonnet46", "batch sim:input=10000 sim:cache_read=50000 "
            "sim:words=2000 sim:service_tier=batch")
        self.assertEqual(headers["x-tollgate-cost-usd"], usd(standard // 2))
        self.assertEqual(att["service_tier"], "batch")

    def test_v18_us_only_inference_at_11_tenths(self):
        want = 82500 * 10**6             # $0.0825
        headers, row, att = self.priced(
            "sonnet46", "us sim:input=10000 sim:cache_read=50000 "
            "sim:words=2000 sim:geo=us")
        self.assertEqual(headers["x-tollgate-cost-usd"], usd(want))
        self.assertEqual(subset(att, {"geo": "us", "cost_pico": want}),
                         {"geo": "us", "cost_pico": want})

    def test_streamed_refusal_429_passes_through_with_retry_after(self):
        body = msg_body("x sim:fault=429", stream=True)
        status, headers, resp = self.stream("/v1/messages", body)
        self.assertEqual(status, 429, resp)
        self.assertEqual(headers.get("retry-after"), "7")
        self.assertEqual(json.loads(resp)["error"]["type"],
                         "rate_limit_error")


GPT5 = {"input": "1.25", "cached_input": "0.125", "output": "10.00"}


class TestReasoningAndTiers(SurfaceCase):
    """BUG-03 (reasoning inside output, billed once) on both providers'
    usage shapes, and BUG-05 (a half-price tier keeps the cache
    discount) through a flex answer."""
    extra_models = (
        {"name": "gpt5", "upstream": "gpt-5", "price": GPT5},
    )

    def test_bug03_openai_reasoning_inside_completion_tokens(self):
        want = openai_pico(GPT5, 500, 0, 1800)
        self.assertEqual(want, 18625 * 10**6)           # $0.018625
        status, headers, resp = self.gw.chat(chat_body(
            "think sim:input=500 sim:words=300 sim:reasoning=1500",
            model="gpt5"))
        self.assertEqual(status, 200, resp)
        usage = json.loads(resp)["usage"]
        self.assertEqual((usage["completion_tokens"], usage["total_tokens"]),
                         (1800, 2300))
        self.assertEqual(headers["x-tollgate-cost-usd"], usd(want))
        row = self.row(headers["x-tollgate-outcome"])
        self.assertEqual(subset(row, {"output_tokens": 1800,
                                      "reasoning_tokens": 1500}),
                         {"output_tokens": 1800, "reasoning_tokens": 1500})

    def test_bug03_anthropic_thinking_inside_output_tokens(self):
        want = anthropic_pico(SONNET, 500, output=1800)
        self.assertEqual(want, 28500 * 10**6)           # $0.0285
        status, headers, resp = self.gw.messages(msg_body(
            "think sim:input=500 sim:words=300 sim:reasoning=1500",
            max_tokens=4000))
        self.assertEqual(status, 200, resp)
        usage = json.loads(resp)["usage"]
        self.assertEqual(usage["output_tokens"], 1800)
        self.assertEqual(headers["x-tollgate-cost-usd"], usd(want))
        row = self.row(headers["x-tollgate-outcome"])
        self.assertEqual(subset(row, {"output_tokens": 1800,
                                      "reasoning_tokens": 1500}),
                         {"output_tokens": 1800, "reasoning_tokens": 1500})

    def test_bug05_flex_halves_every_bucket_cache_discount_kept(self):
        want = 13750 * 10**6                            # $0.01375
        status, headers, resp = self.gw.chat(chat_body(
            "job sim:input=10000 sim:cache_read=40000 sim:words=1000 "
            "sim:reasoning=0 sim:service_tier=flex", model="gpt5"))
        self.assertEqual(status, 200, resp)
        self.assertEqual(json.loads(resp)["service_tier"], "flex")
        self.assertEqual(headers["x-tollgate-cost-usd"], usd(want))
        att = self.only_attempt(headers["x-tollgate-outcome"])
        self.assertEqual(subset(att, {"service_tier": "flex",
                                      "cost_pico": want}),
                         {"service_tier": "flex", "cost_pico": want})


# ---------------------------------------------------------- translated


def chat_body(content, model="sonnet", **extra):
    return dict({"model": model,
                 "messages": [{"role": "user", "content": content}]},
                **extra)


def chunks_of(raw):
    """The data of each SSE event of an OpenAI stream."""
    return [data for _, data in sse_parse(raw)]


class TestTranslatedChat(SurfaceCase):
    BUG01_ROW = {"input_tokens": 40020, "cached_tokens": 30000,
                 "cache_write_tokens": 10000, "output_tokens": 400,
                 "cost_status": "priced", "cost_pico": BUG01_PICO}

    def test_bug01_same_cost_through_chat_and_messages(self):
        self.assertEqual(anthropic_pico(SONNET, 20, 30000, 10000, 0, 400),
                         BUG01_PICO)
        status, h_chat, resp = self.gw.chat(chat_body(BUG01))
        self.assertEqual(status, 200, resp)
        answer = json.loads(resp)
        self.assertEqual(answer["object"], "chat.completion")
        self.assertEqual(answer["model"], "sonnet")
        self.assertRegex(answer["id"], r"^chatcmpl-msg_")
        usage = answer["usage"]
        self.assertEqual(subset(usage, {
            "prompt_tokens": 40020, "completion_tokens": 400,
            "total_tokens": 40420}), {
            "prompt_tokens": 40020, "completion_tokens": 400,
            "total_tokens": 40420})
        self.assertEqual(usage["prompt_tokens_details"]["cached_tokens"],
                         30000)
        self.assertEqual(h_chat["x-tollgate-cost-usd"], usd(BUG01_PICO))

        # The request went to Anthropic rewritten, with the model's cap.
        sent = self.last_sim_request()
        self.assertEqual(sent["path"], "/v1/messages")
        self.assertEqual(sent["headers"]["x-api-key"], SIM_KEY)
        up = json.loads(sent["body"])
        self.assertEqual(up["model"], "claude-sonnet-4-5")
        self.assertEqual(up["max_tokens"], 1024)
        self.assertEqual(len(up["messages"]), 1)
        self.assertEqual(up["messages"][0]["role"], "user")

        status, h_msg, resp2 = self.gw.messages(msg_body(BUG01))
        self.assertEqual(status, 200, resp2)
        self.assertEqual(h_msg["x-tollgate-cost-usd"], usd(BUG01_PICO))
        self.assertEqual(answer["choices"][0]["message"]["content"],
                         json.loads(resp2)["content"][0]["text"])

        chat_row = self.row(h_chat["x-tollgate-outcome"])
        msg_row = self.row(h_msg["x-tollgate-outcome"])
        self.assertEqual(subset(chat_row, self.BUG01_ROW), self.BUG01_ROW)
        self.assertEqual(subset(msg_row, self.BUG01_ROW), self.BUG01_ROW)
        self.assertEqual(chat_row["endpoint"], "chat.completions")
        self.assertEqual(msg_row["endpoint"], "messages")

    def plain_text(self):
        status, _, resp = self.gw.messages(msg_body(BUG01))
        self.assertEqual(status, 200, resp)
        return json.loads(resp)["content"][0]["text"]

    def test_streamed_translation_without_usage_chunk(self):
        status, headers, raw = self.stream(
            "/v1/chat/completions", chat_body(BUG01, stream=True))
        self.assertEqual(status, 200, raw)
        data = chunks_of(raw)
        self.assertEqual(data[-1], "[DONE]")
        chunks = [json.loads(d) for d in data[:-1]]
        for chunk in chunks:
            self.assertEqual(chunk["object"], "chat.completion.chunk")
            self.assertTrue(chunk["choices"], chunk)
            self.assertIsNone(chunk.get("usage"), chunk)
        self.assertEqual(chunks[0]["choices"][0]["delta"]["role"],
                         "assistant")
        self.assertEqual(len({c["id"] for c in chunks}), 1)
        text = "".join(c["choices"][0]["delta"].get("content") or ""
                       for c in chunks)
        self.assertEqual(chunks[-1]["choices"][0]["finish_reason"], "stop")
        row = self.row(headers["x-tollgate-outcome"])
        self.assertEqual(subset(row, self.BUG01_ROW), self.BUG01_ROW)
        self.assertEqual(text, self.plain_text())

    def test_streamed_translation_with_include_usage(self):
        body = chat_body(BUG01, stream=True,
                         stream_options={"include_usage": True})
        status, headers, raw = self.stream("/v1/chat/completions", body)
        self.assertEqual(status, 200, raw)
        data = chunks_of(raw)
        self.assertEqual(data[-1], "[DONE]")
        last = json.loads(data[-2])
        self.assertEqual(last["choices"], [])
        self.assertEqual(subset(last["usage"], {
            "prompt_tokens": 40020, "completion_tokens": 400,
            "total_tokens": 40420}), {
            "prompt_tokens": 40020, "completion_tokens": 400,
            "total_tokens": 40420})
        self.assertEqual(
            last["usage"]["prompt_tokens_details"]["cached_tokens"], 30000)
        for d in data[:-2]:
            self.assertTrue(json.loads(d)["choices"], d)
        row = self.row(headers["x-tollgate-outcome"])
        self.assertEqual(subset(row, self.BUG01_ROW), self.BUG01_ROW)

    def test_anthropic_529_becomes_openai_503(self):
        status, headers, resp = self.gw.chat(chat_body("x sim:fault=529"))
        self.assertEqual(status, 503, resp)
        err = json.loads(resp)["error"]
        self.assertEqual(set(err), {"message", "type", "param", "code"})
        self.assertTrue(err["message"])
        oid = headers["x-tollgate-outcome"]
        self.assertEqual(self.row(oid)["http_status"], 503)
        self.assertEqual(self.only_attempt(oid)["http_status"], 529)


class TestTranslatedShapes(SurfaceCase):
    """What the translation rewrites: system, limits, tool calls, errors
    and a stream that fails half way."""

    def test_system_and_max_tokens_go_where_anthropic_wants_them(self):
        body = {"model": "sonnet", "max_tokens": 50, "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "hi sim:words=5"}]}
        status, _, resp = self.gw.chat(body)
        self.assertEqual(status, 200, resp)
        up = json.loads(self.last_sim_request()["body"])
        self.assertEqual(up["max_tokens"], 50)
        system = up["system"]
        if isinstance(system, list):
            system = "".join(b["text"] for b in system)
        self.assertEqual(system, "Be brief.")
        self.assertEqual([m["role"] for m in up["messages"]], ["user"])
        answer = json.loads(resp)
        self.assertEqual(answer["choices"][0]["finish_reason"], "stop")
        self.assertEqual(answer["usage"]["completion_tokens"], 5)

    def test_tool_use_comes_back_as_tool_calls(self):
        body = chat_body("weather sim:tool=get_weather", tools=[{
            "type": "function", "function": {
                "name": "get_weather", "parameters": {"type": "object"}}}])
        status, headers, resp = self.gw.chat(body)
        self.assertEqual(status, 200, resp)
        up = json.loads(self.last_sim_request()["body"])
        self.assertEqual(up["tools"][0]["name"], "get_weather")
        self.assertIn("input_schema", up["tools"][0])
        choice = json.loads(resp)["choices"][0]
        self.assertEqual(choice["finish_reason"], "tool_calls")
        (call,) = choice["message"]["tool_calls"]
        self.assertEqual(call["type"], "function")
        self.assertEqual(call["function"]["name"], "get_weather")
        self.assertIn("query", json.loads(call["function"]["arguments"]))

        # The same call streamed: the argument fragments join up.
        status, _, raw = self.stream("/v1/chat/completions",
                                     dict(body, stream=True))
        self.assertEqual(status, 200, raw)
        chunks = [json.loads(d) for d in chunks_of(raw) if d != "[DONE]"]
        parts = [tc for c in chunks for tc in
                 (c["choices"][0]["delta"].get("tool_calls") or [])]
        self.assertEqual(parts[0]["function"]["name"], "get_weather")
        joined = "".join(p["function"].get("arguments") or ""
                         for p in parts)
        self.assertEqual(json.loads(joined),
                         json.loads(call["function"]["arguments"]))
        self.assertEqual(chunks[-1]["choices"][0]["finish_reason"],
                         "tool_calls")

    def test_rate_limit_429_becomes_openai_429_with_retry_after(self):
        status, headers, resp = self.gw.chat(chat_body("x sim:fault=429"))
        self.assertEqual(status, 429, resp)
        self.assertEqual(headers.get("retry-after"), "7")
        err = json.loads(resp)["error"]
        self.assertEqual(set(err), {"message", "type", "param", "code"})

    def test_streamed_529_before_any_byte_becomes_503(self):
        status, _, resp = self.stream(
            "/v1/chat/completions", chat_body("x sim:fault=529", stream=True))
        self.assertEqual(status, 503, resp)
        self.assertEqual(set(json.loads(resp)["error"]),
                         {"message", "type", "param", "code"})

    def test_midstream_error_becomes_openai_error_chunk(self):
        body = chat_body("x sim:input=30 sim:words=20 "
                         "sim:fault=midstream-error", stream=True)
        status, headers, raw = self.stream("/v1/chat/completions", body)
        self.assertEqual(status, 200, raw)
        data = chunks_of(raw)
        self.assertNotIn("[DONE]", data)
        self.assertIn("error", json.loads(data[-1]))
        for d in data[:-1]:
            self.assertEqual(json.loads(d)["object"],
                             "chat.completion.chunk")
        row = self.row(headers["x-tollgate-outcome"])
        self.assertEqual(subset(row, {
            "error_type": "upstream_stream_error", "input_tokens": 30}),
            {"error_type": "upstream_stream_error", "input_tokens": 30})
        self.assert_estimated(row, SONNET)


# ----------------------------------------------------------- Responses


V8 = "report sim:input=904 sim:cache_read=4096 sim:words=200 " \
     "sim:reasoning=1000"
V8_PICO = 2728400000                     # $0.0027284
V8_ROW = {"endpoint": "responses", "input_tokens": 5000,
          "cached_tokens": 4096, "output_tokens": 1200,
          "reasoning_tokens": 1000, "cost_status": "priced",
          "cost_pico": V8_PICO}
# max_output_tokens 16 (OpenAI's floor) cuts a 100-word answer.
INCOMPLETE = "essay sim:input=100 sim:words=100"
INCOMPLETE_PICO = openai_pico(PRICES["cheap"], 100, 0, 16)


class TestResponses(SurfaceCase):
    def test_v8_plain_priced_from_usage(self):
        self.assertEqual(openai_pico(GPT5_MINI, 5000, 4096, 1200), V8_PICO)
        body = {"model": "mini5", "input": V8}
        status, headers, resp = self.gw.responses(body)
        self.assertEqual(status, 200, resp)
        usage = json.loads(resp)["usage"]
        self.assertEqual(usage["input_tokens"], 5000)
        self.assertEqual(usage["input_tokens_details"]["cached_tokens"],
                         4096)
        self.assertEqual(usage["output_tokens"], 1200)
        self.assertEqual(headers["x-tollgate-cost-usd"], usd(V8_PICO))
        sent = self.last_sim_request()
        self.assertEqual(sent["path"], "/v1/responses")
        self.assertEqual(json.loads(sent["body"]),
                         dict(body, model="gpt-5-mini"))
        row = self.row(headers["x-tollgate-outcome"])
        self.assertEqual(subset(row, V8_ROW), V8_ROW)

    def test_v8_streamed_usage_from_response_completed(self):
        body = {"model": "mini5", "input": V8, "stream": True}
        status, headers, raw = self.stream("/v1/responses", body)
        self.assertEqual(status, 200, raw)
        events = sse_parse(raw)
        self.assertEqual(events[-1][0], "response.completed")
        _, _, mine = self.direct("/v1/responses",
                                 dict(body, model="gpt-5-mini"))
        self.assertEqual(same_but_ids(raw), same_but_ids(mine))
        row = self.row(headers["x-tollgate-outcome"])
        self.assertEqual(subset(row, dict(V8_ROW, streamed=1)),
                         dict(V8_ROW, streamed=1))

    def test_incomplete_answer_is_still_billed(self):
        body = {"model": "fast", "input": INCOMPLETE,
                "max_output_tokens": 16}
        status, headers, resp = self.gw.responses(body)
        self.assertEqual(status, 200, resp)
        self.assertEqual(json.loads(resp)["status"], "incomplete")
        self.assertEqual(headers["x-tollgate-cost-usd"],
                         usd(INCOMPLETE_PICO))
        status, h2, raw = self.stream("/v1/responses",
                                      dict(body, stream=True))
        self.assertEqual(status, 200, raw)
        self.assertEqual(sse_parse(raw)[-1][0], "response.incomplete")
        want = {"input_tokens": 100, "output_tokens": 16,
                "cost_status": "priced", "cost_pico": INCOMPLETE_PICO}
        for h in (headers, h2):
            row = self.row(h["x-tollgate-outcome"])
            self.assertEqual(subset(row, want), want)

    def test_error_event_passed_and_usage_estimated(self):
        body = {"model": "fast", "stream": True,
                "input": "x sim:words=40 sim:fault=midstream-error"}
        status, headers, raw = self.stream("/v1/responses", body)
        self.assertEqual(status, 200, raw)
        events = sse_parse(raw)
        self.assertEqual(events[-1][0], "error")
        _, _, mine = self.direct("/v1/responses",
                                 dict(body, model="gpt-4o-mini"))
        self.assertEqual(same_but_ids(raw), same_but_ids(mine))
        row = self.row(headers["x-tollgate-outcome"])
        self.assertEqual(row["error_type"], "upstream_stream_error")
        self.assertEqual(row["useful"], 0)
        self.assert_estimated(row, dict(PRICES["cheap"],
                                        cache_write="0.15"))

    def test_failed_event_priced_from_its_usage(self):
        body = {"model": "fast", "stream": True,
                "input": "x sim:input=100 sim:words=40 sim:fault=failed"}
        status, headers, raw = self.stream("/v1/responses", body)
        self.assertEqual(status, 200, raw)
        name, data = sse_parse(raw)[-1]
        self.assertEqual(name, "response.failed")
        usage = json.loads(data)["response"]["usage"]
        want = {"input_tokens": 100,
                "output_tokens": usage["output_tokens"],
                "cost_status": "priced",
                "cost_pico": openai_pico(PRICES["cheap"], 100, 0,
                                         usage["output_tokens"]),
                "error_type": "upstream_stream_error"}
        row = self.row(headers["x-tollgate-outcome"])
        self.assertEqual(subset(row, want), want)


# ---------------------------------------------------------- Embeddings


class TestEmbeddings(SurfaceCase):
    INPUTS = ["hello world", "tokens, counted here"]

    def check(self, model, upstream_path, price_pico_per_token):
        tokens = sum(harness.count_pieces(s) for s in self.INPUTS)
        self.assertEqual(tokens, 6)
        status, headers, resp = self.gw.embeddings(
            {"model": model, "input": self.INPUTS})
        self.assertEqual(status, 200, resp)
        answer = json.loads(resp)
        self.assertEqual(len(answer["data"]), 2)
        self.assertEqual(answer["usage"], {"prompt_tokens": tokens,
                                           "total_tokens": tokens})
        expected = tokens * price_pico_per_token
        self.assertEqual(headers["x-tollgate-cost-usd"], usd(expected))
        self.assertEqual(self.last_sim_request()["path"], upstream_path)
        row = self.row(headers["x-tollgate-outcome"])
        want = {"endpoint": "embeddings", "input_tokens": tokens,
                "output_tokens": 0, "streamed": 0, "http_status": 200,
                "cost_status": "priced", "cost_pico": expected}
        self.assertEqual(subset(row, want), want)

    def test_embeddings_priced_and_recorded(self):
        self.check("embed", "/v1/embeddings", pico(1, EMBED["input"]))
        sent = json.loads(self.last_sim_request()["body"])
        self.assertEqual(sent["model"], "text-embedding-3-small")

    def test_azure_embeddings_priced_by_the_deployments_model(self):
        # No config price: the built-in text-embedding-3-small ($0.02).
        self.check("azure-embed",
                   "/openai/deployments/embed-depl/embeddings"
                   f"?api-version={AZURE_VERSION}", pico(1, "0.02"))

    def test_embeddings_cannot_stream(self):
        status, _, resp = self.gw.embeddings(
            {"model": "embed", "input": "x", "stream": True})
        self.assertEqual(status, 400, resp)
        self.assertEqual(self.sim.requests(), [])


# --------------------------------------------------------------- Azure


AZURE_ASK = "hi sim:input=1000 sim:words=500"
GPT4O_PICO = 7500 * 10**6                # built-in gpt-4o: $0.0075
DATED_PICO = 12500 * 10**6               # exact gpt-4o-2024-05-13


class TestAzure(SurfaceCase):
    def call(self, model, stream=False):
        if not stream:
            return self.gw.chat(chat_body(AZURE_ASK, model=model))
        return self.stream("/v1/chat/completions",
                           chat_body(AZURE_ASK, model=model, stream=True))

    def test_deployment_path_api_version_and_api_key(self):
        status, headers, resp = self.call("azure-4o")
        self.assertEqual(status, 200, resp)
        sent = self.last_sim_request()
        self.assertEqual(sent["path"], "/openai/deployments/prod-4o/chat/"
                         f"completions?api-version={AZURE_VERSION}")
        self.assertEqual(sent["headers"]["api-key"], SIM_KEY)
        self.assertIsNone(sent["authorization"])
        self.assertEqual(json.loads(resp)["model"], "gpt-4o-2024-11-20")

    def test_dated_model_without_entry_priced_as_gpt_4o(self):
        self.assertEqual(openai_pico(PRICES["premium"], 1000, 0, 500),
                         GPT4O_PICO)
        status, headers, resp = self.call("azure-4o")
        self.assertEqual(status, 200, resp)
        self.assertEqual(headers["x-tollgate-cost-usd"], usd(GPT4O_PICO))
        oid = headers["x-tollgate-outcome"]
        self.assertEqual(self.row(oid)["cost_pico"], GPT4O_PICO)
        att = self.only_attempt(oid)
        self.assertEqual(att["upstream_model"], "gpt-4o-2024-11-20")
        self.assertRegex(att["price_source"], r"#gpt-4o$")

    def test_streamed_dated_model_priced_as_gpt_4o(self):
        status, headers, raw = self.call("azure-4o", stream=True)
        self.assertEqual(status, 200, raw)
        sent = json.loads(self.last_sim_request()["body"])
        self.assertEqual(sent["stream_options"], {"include_usage": True})
        row = self.row(headers["x-tollgate-outcome"])
        want = {"input_tokens": 1000, "output_tokens": 500,
                "cost_status": "priced", "cost_pico": GPT4O_PICO}
        self.assertEqual(subset(row, want), want)

    def test_exact_dated_entry_wins_over_alias(self):
        status, headers, resp = self.call("azure-snap")
        self.assertEqual(status, 200, resp)
        self.assertEqual(json.loads(resp)["model"], "gpt-4o-2024-05-13")
        self.assertEqual(headers["x-tollgate-cost-usd"], usd(DATED_PICO))
        att = self.only_attempt(headers["x-tollgate-outcome"])
        self.assertEqual(att["cost_pico"], DATED_PICO)
        self.assertIn("gpt-4o-2024-05-13", att["price_source"])

    def test_alias_prices_an_undated_unknown_name(self):
        status, headers, resp = self.call("azure-house")
        self.assertEqual(status, 200, resp)
        self.assertEqual(json.loads(resp)["model"], "house-4o-build")
        self.assertEqual(headers["x-tollgate-cost-usd"], usd(GPT4O_PICO))

    def test_unknown_model_is_unpriced_never_zero(self):
        status, headers, resp = self.call("azure-zeta")
        self.assertEqual(status, 200, resp)
        self.assertEqual(headers["x-tollgate-cost-usd"], "unpriced")
        row = self.row(headers["x-tollgate-outcome"])
        want = {"cost_status": "unpriced", "cost_pico": None,
                "input_tokens": 1000, "output_tokens": 500}
        self.assertEqual(subset(row, want), want)


# -------------------------------------------------------------- Gemini


GEMINI_ASK = "hi sim:input=600 sim:cache_read=400 sim:words=50 " \
             "sim:reasoning=300"
# Thoughts (300) come on top of the 50 visible tokens.
GEMINI_PICO = openai_pico(GEMINI_PRO, 1000, 400, 350)
GEMINI_ROW = {"input_tokens": 1000, "cached_tokens": 400,
              "output_tokens": 350, "reasoning_tokens": 300,
              "cost_status": "priced", "cost_pico": GEMINI_PICO}


class TestGemini(SurfaceCase):
    def test_plain_thoughts_reported_apart_are_added_to_output(self):
        self.assertEqual(GEMINI_PICO, 4300 * 10**6)
        status, headers, resp = self.gw.chat(chat_body(GEMINI_ASK,
                                                       model="gem-pro"))
        self.assertEqual(status, 200, resp)
        usage = json.loads(resp)["usage"]
        self.assertEqual((usage["prompt_tokens"], usage["completion_tokens"],
                          usage["total_tokens"]), (1000, 50, 1350))
        sent = self.last_sim_request()
        self.assertEqual(sent["path"], "/v1beta/openai/chat/completions")
        self.assertEqual(sent["authorization"], "Bearer " + SIM_KEY)
        self.assertEqual(headers["x-tollgate-cost-usd"], usd(GEMINI_PICO))
        row = self.row(headers["x-tollgate-outcome"])
        self.assertEqual(subset(row, GEMINI_ROW), GEMINI_ROW)

    def test_streamed_usage_on_every_chunk_is_not_summed(self):
        status, headers, raw = self.stream(
            "/v1/chat/completions",
            chat_body(GEMINI_ASK, model="gem-pro", stream=True))
        self.assertEqual(status, 200, raw)
        chunks = [json.loads(d) for d in chunks_of(raw) if d != "[DONE]"]
        with_usage = [c for c in chunks if c.get("usage")]
        self.assertGreaterEqual(len(with_usage), 3)
        self.assertEqual(with_usage[-1]["usage"]["completion_tokens"], 50)
        row = self.row(headers["x-tollgate-outcome"])
        self.assertEqual(subset(row, dict(GEMINI_ROW, streamed=1)),
                         dict(GEMINI_ROW, streamed=1))


# -------------------------------------------------------- missing usage


class TestMissingUsage(SurfaceCase):
    def test_cut_openai_stream_is_estimated_never_zero(self):
        body = chat_body("tell me sim:words=40 sim:fault=cut", model="fast",
                         stream=True)
        status, headers, raw = self.stream("/v1/chat/completions", body)
        self.assertEqual(status, 200, raw)
        data = chunks_of(raw)
        self.assertNotIn("[DONE]", data)
        self.assertEqual(json.loads(data[-1])["error"]["code"],
                         "upstream_cut")
        oid = headers["x-tollgate-outcome"]
        row = self.row(oid)
        self.assertEqual(row["error_type"], "upstream_cut")
        self.assertGreater(row["input_tokens"], 0)
        self.assert_estimated(row, dict(PRICES["cheap"],
                                        cache_write="0.15"))
        att = self.only_attempt(oid)
        self.assertEqual(subset(att, {
            "cost_status": "estimated", "cost_pico": None,
            "usage_estimated": 1,
            "cost_estimate_pico": row["cost_estimate_pico"]}), {
            "cost_status": "estimated", "cost_pico": None,
            "usage_estimated": 1,
            "cost_estimate_pico": row["cost_estimate_pico"]})

    def test_cut_anthropic_stream_is_estimated_never_zero(self):
        body = msg_body("tell me sim:words=40 sim:input=30 sim:fault=cut",
                        stream=True)
        status, headers, raw = self.stream("/v1/messages", body)
        self.assertEqual(status, 200, raw)
        row = self.row(headers["x-tollgate-outcome"])
        self.assertEqual(row["input_tokens"], 30)
        self.assert_estimated(row, SONNET)

    def test_cut_translated_stream_is_estimated_never_zero(self):
        body = chat_body("tell me sim:words=40 sim:input=30 sim:fault=cut",
                         stream=True)
        status, headers, raw = self.stream("/v1/chat/completions", body)
        self.assertEqual(status, 200, raw)
        self.assertNotIn("[DONE]", chunks_of(raw))
        row = self.row(headers["x-tollgate-outcome"])
        self.assertEqual(row["input_tokens"], 30)
        self.assert_estimated(row, SONNET)

    def test_plain_answer_cut_short_says_estimated_in_headers(self):
        status, headers, resp = self.gw.messages(
            msg_body("tell me sim:words=40 sim:fault=cut"))
        self.assertEqual(status, 502, resp)
        obj = json.loads(resp)
        self.assertEqual(obj["type"], "error")
        self.assertEqual(obj["error"]["type"], "api_error")
        self.assertIn("x-tollgate-error", headers)
        self.assertEqual(headers["x-tollgate-cost-usd"], "estimated")
        row = self.row(headers["x-tollgate-outcome"])
        self.assert_estimated(row, SONNET)
        self.assertEqual(headers["x-tollgate-cost-estimate-usd"],
                         usd(row["cost_estimate_pico"]))

    def test_plain_openai_answer_cut_short_counts_the_text_that_came(self):
        status, headers, resp = self.gw.chat(
            chat_body("tell me sim:words=40 sim:fault=cut", model="fast"))
        self.assertEqual(status, 502, resp)
        self.assertEqual(headers["x-tollgate-cost-usd"], "estimated")
        row = self.row(headers["x-tollgate-outcome"])
        self.assert_estimated(row, dict(PRICES["cheap"],
                                        cache_write="0.15"))


class TestHangUp(SurfaceCase):
    # One content chunk per virtual second: the answer waits on the clock.
    sim_args = ("--clock", "virtual", "--key", SIM_KEY,
                "--default-latency", "0,1000")
    WORDS = 50

    def hang_up_after_first_chunk(self, path, body, marker, auth):
        sock = self.gw.raw_post(path, body, auth=auth)
        got = b""
        while marker not in got:
            chunk = sock.recv(65536)
            self.assertTrue(chunk, "stream closed early: %r" % got)
            got += chunk
        sock.close()

    def assert_provider_stopped(self):
        # Time moves one chunk at a time; the provider must see the call
        # end long before its last chunk was due.
        for step in range(self.WORDS):
            if self.sim.stats()["in_flight"] == 0:
                break
            self.sim.advance(1000)
            try:
                wait_for(lambda: self.sim.stats()["in_flight"] == 0,
                         timeout=0.2)
            except AssertionError:
                pass
        self.assertEqual(self.sim.stats()["in_flight"], 0)
        rec = self.sim.usage()[-1]
        self.assertTrue(rec["client_gone"], rec)
        self.assertIsNone(rec["usage"], rec)
        self.assertLess(step, self.WORDS // 2,
                        "the provider kept generating after the hang-up")

    def check(self, path, body, marker, price, auth="bearer",
              input_tokens=None):
        self.hang_up_after_first_chunk(path, body, marker, auth)
        self.assert_provider_stopped()
        self.gw.wait_written(1)
        (row,) = self.gw.rows("outcomes")
        self.assertEqual(subset(row, {
            "http_status": 499, "error_type": "client_disconnected"}), {
            "http_status": 499, "error_type": "client_disconnected"})
        self.assert_estimated(row, price)
        if input_tokens is not None:
            self.assertEqual(row["input_tokens"], input_tokens)

    def test_openai_stream_hang_up_stops_the_provider(self):
        body = chat_body(f"go sim:words={self.WORDS}", model="fast",
                         stream=True)
        self.check("/v1/chat/completions", body, b'"role":"assistant"',
                   dict(PRICES["cheap"], cache_write="0.15"))

    def test_anthropic_stream_hang_up_stops_the_provider(self):
        # message_start already told the input exactly: keep it.
        body = msg_body(f"go sim:words={self.WORDS} sim:input=30 "
                        "sim:cache_read=4000", stream=True)
        self.check("/v1/messages", body, b"text_delta", SONNET,
                   auth="x-api-key", input_tokens=4030)

    def test_translated_stream_hang_up_stops_the_provider(self):
        body = chat_body(f"go sim:words={self.WORDS} sim:input=30 "
                         "sim:cache_read=4000", stream=True)
        self.check("/v1/chat/completions", body, b'"role":"assistant"',
                   SONNET, input_tokens=4030)


if __name__ == "__main__":
    unittest.main()
