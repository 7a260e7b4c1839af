"""End-to-end tests of the provider simulator's other wire formats.

Anthropic Messages, OpenAI Responses, embeddings, Azure OpenAI and
Gemini's OpenAI-compatible endpoint: each surface plain and streamed,
its faults and error shapes, and the sim: usage directives reproducing
the research vectors (billing-semantics.md V8, V12, V13, V14, V17, V18,
V19 and gateway-faults.md BUG-01, BUG-08) to the token. Where a vector
states a price, the test also recomputes its expected cost in integer
picodollars, so the numbers are known to be the vector's numbers.
"""

import base64
import http.client as httpclient
import json
import struct
import unittest
from decimal import Decimal

from harness import (SSEReader, Sim, count_pieces, http, http_json,
                     message_tokens, open_request, open_stream,
                     prompt_tokens)

VERSION = {"anthropic-version": "2023-06-01"}
HAIKU = "claude-haiku-4-5"
HAIKU_SNAPSHOT = "claude-haiku-4-5-20251001"
POLLS = 500


def user(text):
    return [{"role": "user", "content": text}]


def pico(tokens, usd_per_mtok):
    """Exact picodollars of tokens at a $/MTok price given as text."""
    value = Decimal(tokens) * Decimal(usd_per_mtok) * 10 ** 6
    assert value == value.to_integral_value(), value
    return int(value)


def usd(text):
    """A dollar amount given as text, in picodollars."""
    return int(Decimal(text) * 10 ** 12)


def check_clean_exit(testcase_cls, sim):
    rc = sim.stop()
    bad = [m for m in ("AddressSanitizer", "runtime error:", "LeakSanitizer")
           if m in sim.stderr]
    if rc != 0 or bad:
        raise AssertionError("%s: provider-sim exited %s; stderr:\n%s"
                             % (testcase_cls.__name__, rc, sim.stderr))


class NamedSSE(SSEReader):
    """SSEReader that yields (event name or None, data) pairs, for the
    named-event streams of Anthropic and the Responses API."""

    def _next_event(self):
        name, lines = None, []
        while True:
            raw = self._readline()
            if not raw:
                return (name, "\n".join(lines)) if lines else None
            line = raw.decode("utf-8").rstrip("\r\n")
            if line == "":
                if lines:
                    return (name, "\n".join(lines))
                name = None
            elif line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                value = line[5:]
                lines.append(value[1:] if value.startswith(" ") else value)


def accumulate_anthropic(events):
    """Usage by Anthropic's rule: start from message_start, let each
    message_delta replace the fields it carries. Never sums."""
    usage = None
    for name, data in events:
        if name == "message_start":
            usage = dict(data["message"]["usage"])
        elif name == "message_delta":
            for key, value in data["usage"].items():
                if value is not None:
                    usage[key] = value
    return usage


def anthropic_cost(usage, rates):
    """Picodollars by billing-semantics.md 5.2 (Anthropic), no geo."""
    split = usage.get("cache_creation") or {}
    writes_1h = split.get("ephemeral_1h_input_tokens", 0)
    writes_5m = usage["cache_creation_input_tokens"] - writes_1h
    return (pico(usage["input_tokens"], rates["in"])
            + pico(writes_5m, rates.get("w5", "0"))
            + pico(writes_1h, rates.get("w1", "0"))
            + pico(usage["cache_read_input_tokens"], rates.get("read", "0"))
            + pico(usage["output_tokens"], rates["out"]))


class ShapesCase(unittest.TestCase):
    """One simulator per class, reset before each test."""

    SIM_ARGS = ("--snapshot", HAIKU + "=" + HAIKU_SNAPSHOT,
                "--snapshot", "gpt-5-mini=gpt-5-mini-2025-08-07")

    @classmethod
    def setUpClass(cls):
        cls.sim = Sim(cls.SIM_ARGS)

    @classmethod
    def tearDownClass(cls):
        check_clean_exit(cls, cls.sim)

    def setUp(self):
        self.sim.reset()

    def post(self, path, body, headers=None):
        return http("POST", self.sim.url + path, body, headers)

    def post_json(self, path, body, headers=None):
        status, hdrs, data = self.post(path, body, headers)
        return status, hdrs, json.loads(data)

    def stream_events(self, path, body, headers=None, named=True):
        conn = open_request("POST", self.sim.url + path, body, headers)
        try:
            resp = conn.getresponse()
            self.assertEqual(resp.status, 200)
            self.assertTrue(resp.getheader("content-type")
                            .startswith("text/event-stream"))
            reader = NamedSSE(resp) if named else SSEReader(resp)
            events = reader.read_all()
            return events, reader, resp
        finally:
            conn.close()

    def wait_for(self, predicate):
        for _ in range(POLLS):
            value = predicate()
            if value:
                return value
        self.fail("condition never held")

    def last_record(self):
        return self.wait_for(lambda: self.sim.usage())[-1]


# ------------------------------------------------------------ Anthropic


class AnthropicCase(ShapesCase):

    def messages(self, text=None, messages=None, headers=None, **extra):
        body = dict(model=HAIKU, max_tokens=100000,
                    messages=messages or user(text))
        body.update(extra)
        return self.post_json("/v1/messages", body,
                              dict(VERSION, **(headers or {})))

    def ask(self, text, **extra):
        status, hdrs, data = self.messages(text, **extra)
        self.assertEqual(status, 200, data)
        return hdrs, data

    def stream(self, text, headers=None, **extra):
        body = dict(model=HAIKU, max_tokens=100000, messages=user(text),
                    stream=True, **extra)
        events, reader, _ = self.stream_events(
            "/v1/messages", body, dict(VERSION, **(headers or {})))
        return [(n, json.loads(d)) for n, d in events], reader

    def check_error(self, status, hdrs, data, want_status, want_type):
        self.assertEqual(status, want_status, data)
        self.assertEqual(set(data), {"type", "error", "request_id"})
        self.assertEqual(data["type"], "error")
        self.assertEqual(data["error"]["type"], want_type)
        self.assertTrue(data["request_id"].startswith("req_"))
        self.assertEqual(hdrs["request-id"], data["request_id"])
        return data["error"]


class AnthropicPlainTest(AnthropicCase):

    def test_plain_message_shape_and_token_rule(self):
        system = "You are terse, and exact."
        messages = [{"role": "user", "content": [
                        {"type": "text", "text": "Look: "},
                        {"type": "image", "source": {"type": "base64",
                                                     "data": "AAAA"}}]},
                    {"role": "assistant", "content": "An image."},
                    {"role": "user", "content": "Describe it sim:words=9"}]
        status, hdrs, data = self.messages(messages=messages, system=system)
        self.assertEqual(status, 200, data)
        self.assertEqual(hdrs["content-type"], "application/json")
        self.assertTrue(hdrs["request-id"].startswith("req_"))
        self.assertRegex(data["id"], r"^msg_[0-9a-f]{32}$")
        self.assertEqual(data["type"], "message")
        self.assertEqual(data["role"], "assistant")
        self.assertEqual(data["model"], HAIKU_SNAPSHOT)
        self.assertEqual(data["stop_reason"], "end_turn")
        self.assertIsNone(data["stop_sequence"])
        self.assertEqual(len(data["content"]), 1)
        block = data["content"][0]
        self.assertEqual(set(block), {"type", "text"})
        self.assertEqual(len(block["text"].split()), 9)
        # The system prompt counts as one more message.
        counted = [{"role": "system", "content": system}] + messages
        self.assertEqual(data["usage"], {
            "input_tokens": prompt_tokens(counted),
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "cache_creation": {"ephemeral_5m_input_tokens": 0,
                               "ephemeral_1h_input_tokens": 0},
            "output_tokens": count_pieces(block["text"]),
            "service_tier": "standard"})
        rec = self.last_record()
        self.assertEqual(rec["surface"], "anthropic.messages")
        self.assertEqual(rec["id"], data["id"])
        self.assertEqual(rec["usage"], data["usage"])

    def test_system_as_blocks_counts_like_chat_parts(self):
        system = [{"type": "text", "text": "Be brief."},
                  {"type": "text", "text": " Be kind."}]
        _, data = self.ask("hi", system=system)
        want = prompt_tokens([{"role": "system", "content": system}]
                             + user("hi"))
        self.assertEqual(data["usage"]["input_tokens"], want)

    def test_max_tokens_stop_reason(self):
        _, data = self.ask("sim:words=20", max_tokens=6)
        self.assertEqual(data["stop_reason"], "max_tokens")
        self.assertEqual(data["usage"]["output_tokens"], 6)
        self.assertEqual(len(data["content"][0]["text"].split()), 6)
        _, data = self.ask("sim:words=6", max_tokens=6)
        self.assertEqual(data["stop_reason"], "end_turn")

    def test_v12_read_and_untimed_write(self):
        # V12: no cache_creation split, so every write is a 5m write.
        _, data = self.ask("sim:input=3000 sim:cache_write=2000 "
                           "sim:cache_read=10000 sim:words=800 "
                           "sim:cache_split=none")
        usage = data["usage"]
        self.assertEqual(usage, {"input_tokens": 3000,
                                 "cache_creation_input_tokens": 2000,
                                 "cache_read_input_tokens": 10000,
                                 "output_tokens": 800,
                                 "service_tier": "standard"})
        rates = {"in": "3", "w5": "3.75", "w1": "6", "read": "0.30",
                 "out": "15"}
        self.assertEqual(anthropic_cost(usage, rates), usd("0.031500"))
        norm = self.last_record()["normalized"]
        self.assertEqual(norm["input_tokens"], 15000)
        self.assertEqual(norm["cache_write_1h_tokens"], 0)

    def test_v13_five_minute_and_one_hour_writes(self):
        _, data = self.ask("sim:input=500 sim:cache_write=2000 "
                           "sim:cache_write_1h=4000 sim:words=1000")
        usage = data["usage"]
        self.assertEqual(usage["input_tokens"], 500)
        self.assertEqual(usage["cache_creation_input_tokens"], 6000)
        self.assertEqual(usage["cache_creation"], {
            "ephemeral_5m_input_tokens": 2000,
            "ephemeral_1h_input_tokens": 4000})
        self.assertEqual(usage["cache_read_input_tokens"], 0)
        self.assertEqual(usage["output_tokens"], 1000)
        rates = {"in": "3", "w5": "3.75", "w1": "6", "out": "15"}
        self.assertEqual(anthropic_cost(usage, rates), usd("0.048000"))
        norm = self.last_record()["normalized"]
        self.assertEqual((norm["cache_write_tokens"],
                          norm["cache_write_1h_tokens"]), (6000, 4000))

    def test_bug01_cache_buckets_are_disjoint(self):
        _, data = self.ask("sim:input=20 sim:cache_write=10000 "
                           "sim:cache_read=30000 sim:words=400")
        usage = data["usage"]
        self.assertEqual((usage["input_tokens"],
                          usage["cache_creation_input_tokens"],
                          usage["cache_read_input_tokens"],
                          usage["output_tokens"]), (20, 10000, 30000, 400))
        rates = {"in": "3.00", "w5": "3.75", "read": "0.30", "out": "15.00"}
        self.assertEqual(anthropic_cost(usage, rates), usd("0.05256"))
        self.assertEqual(self.last_record()["normalized"]["input_tokens"],
                         40020)

    def test_v17_web_search_and_thinking(self):
        _, data = self.ask("sim:input=2000 sim:words=1500 sim:web_search=3")
        usage = data["usage"]
        self.assertEqual(usage["server_tool_use"],
                         {"web_search_requests": 3, "web_fetch_requests": 0})
        tokens = pico(2000, "3") + pico(1500, "15")
        fees = 3 * usd("10") // 1000
        self.assertEqual(tokens + fees, usd("0.058500"))
        self.assertEqual(self.last_record()["normalized"]["web_searches"], 3)

        _, data = self.ask("sim:words=10 sim:reasoning=90")
        self.assertEqual(data["usage"]["output_tokens"], 100)
        self.assertEqual(data["usage"]["output_tokens_details"],
                         {"thinking_tokens": 90})

    def test_v18_batch_tier_and_us_geography(self):
        _, data = self.ask("sim:input=10000 sim:cache_read=50000 "
                           "sim:words=2000 sim:service_tier=batch")
        self.assertEqual(data["usage"]["service_tier"], "batch")
        self.assertNotIn("inference_geo", data["usage"])
        self.assertEqual(self.last_record()["normalized"]["service_tier"],
                         "batch")
        _, data = self.ask("sim:input=10000 sim:cache_read=50000 "
                           "sim:words=2000 sim:geo=us")
        usage = data["usage"]
        self.assertEqual((usage["service_tier"], usage["inference_geo"]),
                         ("standard", "us"))
        base = (pico(10000, "3") + pico(50000, "0.30")
                + pico(2000, "15"))
        self.assertEqual(base * 11 // 10, usd("0.082500"))
        norm = self.last_record()["normalized"]
        self.assertEqual((norm["geo"], norm["cached_tokens"]), ("us", 50000))

    def test_tool_use_answer(self):
        tools = [{"name": "get_weather", "description": "Weather",
                  "input_schema": {"type": "object"}}]
        _, data = self.ask("weather? sim:tool=get_weather sim:words=3",
                           tools=tools)
        self.assertEqual(data["stop_reason"], "tool_use")
        block = data["content"][0]
        self.assertEqual(block["type"], "tool_use")
        self.assertEqual(block["name"], "get_weather")
        self.assertRegex(block["id"], r"^toolu_[0-9a-f]{32}$")
        self.assertEqual(set(block["input"]), {"query"})
        self.assertEqual(len(block["input"]["query"].split()), 3)
        # A tool the request does not offer is not called.
        _, data = self.ask("sim:tool=nope sim:words=3", tools=tools)
        self.assertEqual(data["content"][0]["type"], "text")
        _, data = self.ask("sim:tool=get_weather sim:words=3")
        self.assertEqual(data["stop_reason"], "end_turn")


class AnthropicStreamTest(AnthropicCase):

    def test_event_sequence_and_cumulative_usage(self):
        events, reader = self.stream("stream sim:words=6")
        self.assertIsNone(reader.error)
        names = [n for n, _ in events]
        self.assertEqual(names, [
            "message_start", "content_block_start", "ping",
            "content_block_delta", "content_block_delta",
            "content_block_delta", "message_delta",
            "content_block_delta", "content_block_delta",
            "content_block_delta", "content_block_stop",
            "message_delta", "message_stop"])
        for name, data in events:
            self.assertEqual(data["type"], name)
        start = events[0][1]["message"]
        self.assertEqual(start["content"], [])
        self.assertIsNone(start["stop_reason"])
        self.assertEqual(start["usage"]["output_tokens"], 1)
        deltas = [d for n, d in events if n == "message_delta"]
        self.assertEqual([d["usage"] for d in deltas],
                         [{"output_tokens": 3}, {"output_tokens": 6}])
        self.assertIsNone(deltas[0]["delta"]["stop_reason"])
        self.assertEqual(deltas[1]["delta"],
                         {"stop_reason": "end_turn", "stop_sequence": None})
        text = "".join(d["delta"]["text"] for n, d in events
                       if n == "content_block_delta")
        _, plain = self.ask("stream sim:words=6")
        self.assertEqual(text, plain["content"][0]["text"])
        self.assertEqual(accumulate_anthropic(events), plain["usage"])
        self.assertEqual(self.last_record()["usage"], plain["usage"])

    def test_short_answer_still_has_two_message_deltas(self):
        for words in (0, 1):
            events, _ = self.stream("sim:words=%d" % words)
            deltas = [d for n, d in events if n == "message_delta"]
            self.assertEqual(len(deltas), 2)
            self.assertEqual(deltas[-1]["usage"]["output_tokens"], words)

    def test_v14_input_from_start_output_last_wins(self):
        events, _ = self.stream("sim:input=472 sim:cache_read=12000 "
                                "sim:words=350")
        start = events[0][1]["message"]
        self.assertEqual(start["model"], HAIKU_SNAPSHOT)
        self.assertEqual(start["usage"], {
            "input_tokens": 472, "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 12000,
            "cache_creation": {"ephemeral_5m_input_tokens": 0,
                               "ephemeral_1h_input_tokens": 0},
            "output_tokens": 1, "service_tier": "standard"})
        deltas = [d["usage"] for n, d in events if n == "message_delta"]
        self.assertEqual(deltas[-1], {"output_tokens": 350})
        usage = accumulate_anthropic(events)
        rates = {"in": "1", "w5": "1.25", "read": "0.10", "out": "5"}
        self.assertEqual(anthropic_cost(usage, rates), usd("0.003422"))
        summed = 1 + sum(d["output_tokens"] for d in deltas)
        self.assertNotEqual(summed, 350)

    def check_bug08(self, text, want_last):
        events, _ = self.stream(text)
        deltas = [d["usage"] for n, d in events if n == "message_delta"]
        self.assertEqual(deltas[-1], want_last)
        usage = accumulate_anthropic(events)
        self.assertEqual((usage["input_tokens"],
                          usage["cache_read_input_tokens"],
                          usage["output_tokens"]), (25, 4000, 300))
        rates = {"in": "3.00", "read": "0.30", "w5": "3.75", "out": "15.00"}
        self.assertEqual(anthropic_cost(usage, rates), usd("0.005775"))
        # What a gateway that adds the delta to message_start would get.
        start = events[0][1]["message"]["usage"]
        doubled = {k: start.get(k, 0) + deltas[-1].get(k, 0)
                   for k in ("input_tokens", "cache_read_input_tokens",
                             "cache_creation_input_tokens", "output_tokens")}
        self.assertNotEqual(anthropic_cost(dict(usage, **doubled), rates),
                            usd("0.005775"))
        norm = self.last_record()["normalized"]
        self.assertEqual((norm["input_tokens"], norm["cached_tokens"],
                          norm["output_tokens"]), (4025, 4000, 300))

    def test_bug08_delta_repeats_input_and_cache(self):
        self.check_bug08(
            "sim:input=25 sim:cache_read=4000 sim:words=300 "
            "sim:delta_usage=full",
            {"input_tokens": 25, "cache_creation_input_tokens": 0,
             "cache_read_input_tokens": 4000, "output_tokens": 300})

    def test_bug08_older_delta_has_output_only(self):
        self.check_bug08("sim:input=25 sim:cache_read=4000 sim:words=300",
                         {"output_tokens": 300})

    def test_thinking_and_searches_on_final_delta_only(self):
        events, _ = self.stream("sim:words=4 sim:reasoning=8 "
                                "sim:web_search=2")
        deltas = [d["usage"] for n, d in events if n == "message_delta"]
        self.assertEqual(deltas[0], {"output_tokens": 8 + 2})
        self.assertEqual(deltas[-1], {
            "output_tokens": 12,
            "output_tokens_details": {"thinking_tokens": 8},
            "server_tool_use": {"web_search_requests": 2,
                                "web_fetch_requests": 0}})

    def test_tool_use_streams_input_json_deltas(self):
        tools = [{"name": "lookup", "input_schema": {"type": "object"}}]
        events, _ = self.stream("sim:tool=lookup sim:words=5", tools=tools)
        start = [d for n, d in events if n == "content_block_start"][0]
        self.assertEqual(start["content_block"]["type"], "tool_use")
        self.assertEqual(start["content_block"]["input"], {})
        parts = [d["delta"] for n, d in events if n == "content_block_delta"]
        self.assertGreater(len(parts), 1)
        for part in parts:
            self.assertEqual(part["type"], "input_json_delta")
        joined = "".join(p["partial_json"] for p in parts)
        _, plain = self.ask("sim:tool=lookup sim:words=5", tools=tools)
        self.assertEqual(json.loads(joined), plain["content"][0]["input"])
        final = [d for n, d in events if n == "message_delta"][-1]
        self.assertEqual(final["delta"]["stop_reason"], "tool_use")
        self.assertEqual(final["usage"]["output_tokens"],
                         count_pieces(joined))


class AnthropicErrorTest(AnthropicCase):
    SIM_ARGS = ("--key", "sk-ant-test", "--models", HAIKU + ",claude-x")
    KEY = {"x-api-key": "sk-ant-test"}

    def test_key_is_read_from_x_api_key(self):
        body = {"model": HAIKU, "max_tokens": 5, "messages": user("hi")}
        for headers, message in (
                ({}, "x-api-key header is required"),
                ({"x-api-key": "wrong"}, "invalid x-api-key"),
                ({"Authorization": "Bearer sk-ant-test"},
                 "x-api-key header is required")):
            status, hdrs, data = self.post_json(
                "/v1/messages", body, dict(VERSION, **headers))
            error = self.check_error(status, hdrs, data, 401,
                                     "authentication_error")
            self.assertEqual(error["message"], message)
        status, _, data = self.messages("hi", headers=self.KEY)
        self.assertEqual(status, 200, data)
        sent = self.sim.requests()[-1]
        self.assertEqual(sent["headers"], {"x-api-key": "sk-ant-test",
                                           "anthropic-version": "2023-06-01"})
        self.assertEqual(sent["path"], "/v1/messages")
        self.assertEqual(json.loads(sent["body"])["model"], HAIKU)

    def test_bad_requests_are_invalid_request_errors(self):
        good = {"model": HAIKU, "max_tokens": 5, "messages": user("hi")}
        cases = [
            (dict(good), {}, "anthropic-version: header is required"),
            ({k: v for k, v in good.items() if k != "max_tokens"}, VERSION,
             "max_tokens: Field required"),
            ({k: v for k, v in good.items() if k != "model"}, VERSION,
             "model: Field required"),
            ({k: v for k, v in good.items() if k != "messages"}, VERSION,
             "messages: Field required"),
            (dict(good, max_tokens=0), VERSION,
             "max_tokens: Input should be greater than or equal to 1"),
            (dict(good, max_tokens="5"), VERSION,
             "max_tokens: Input should be a valid integer"),
            (dict(good, messages=[{"role": "system", "content": "x"}]),
             VERSION, "messages.0.role: Input should be 'user' or "
             "'assistant'"),
            (dict(good, messages=[]), VERSION,
             "messages: at least one message is required"),
            (b"{nope", VERSION, None),
        ]
        for body, headers, message in cases:
            status, hdrs, data = self.post_json(
                "/v1/messages", body, dict(headers, **self.KEY))
            error = self.check_error(status, hdrs, data, 400,
                                     "invalid_request_error")
            if message is not None:
                self.assertEqual(error["message"], message)

    def test_unknown_model_is_not_found(self):
        status, hdrs, data = self.post_json(
            "/v1/messages", {"model": "claude-nope", "max_tokens": 5,
                             "messages": user("hi")},
            dict(VERSION, **self.KEY))
        error = self.check_error(status, hdrs, data, 404, "not_found_error")
        self.assertEqual(error["message"], "model: claude-nope")

    def test_body_over_32_mib_is_request_too_large(self):
        text = "a " * (17 * 1024 * 1024)
        status, hdrs, data = self.post_json(
            "/v1/messages", {"model": HAIKU, "max_tokens": 5,
                             "messages": user(text)},
            dict(VERSION, **self.KEY))
        self.check_error(status, hdrs, data, 413, "request_too_large")


class AnthropicFaultTest(AnthropicCase):

    def fault(self, name, stream=False):
        body = {"model": HAIKU, "max_tokens": 50, "stream": stream,
                "messages": user("sim:words=10 sim:fault=" + name)}
        return self.post_json("/v1/messages", body, VERSION)

    def test_rate_limit_429_has_retry_after(self):
        status, hdrs, data = self.fault("429")
        self.check_error(status, hdrs, data, 429, "rate_limit_error")
        self.assertEqual(hdrs["retry-after"], "7")
        self.assertEqual(hdrs["anthropic-ratelimit-requests-remaining"], "0")
        self.assertIn("anthropic-ratelimit-output-tokens-reset", hdrs)
        self.assertNotIn("details", data["error"])

    def test_spend_cap_429_has_no_retry_after(self):
        status, hdrs, data = self.fault("spendcap")
        error = self.check_error(status, hdrs, data, 429, "rate_limit_error")
        self.assertNotIn("retry-after", hdrs)
        self.assertEqual(error["details"],
                         {"error_code": "enforced_spend_limit_reached"})

    def test_status_faults_map_to_anthropic_types(self):
        for name, want, want_type in (
                ("500", 500, "api_error"),
                ("529", 529, "overloaded_error"),
                ("503", 529, "overloaded_error"),
                ("413", 413, "request_too_large")):
            status, hdrs, data = self.fault(name)
            self.check_error(status, hdrs, data, want, want_type)
        status, hdrs, data = self.fault("midstream-error")
        self.check_error(status, hdrs, data, 500, "api_error")
        for rec in self.sim.usage():
            self.assertIsNone(rec["id"])
            self.assertIsNone(rec["usage"])
            self.assertIsNone(rec["normalized"])

    def test_midstream_overloaded_event_without_message_stop(self):
        events, reader = self.stream("sim:words=10 "
                                     "sim:fault=midstream-error")
        self.assertIsNone(reader.error)
        names = [n for n, _ in events]
        self.assertEqual(names[:3], ["message_start", "content_block_start",
                                     "ping"])
        self.assertEqual(names.count("content_block_delta"), 3)
        self.assertEqual(names[-1], "error")
        self.assertNotIn("message_stop", names)
        error = events[-1][1]
        self.assertEqual(error["type"], "error")
        self.assertEqual(error["error"], {"type": "overloaded_error",
                                          "message": "Overloaded"})
        self.assertIsNone(self.last_record()["usage"])

    def test_cut_stream_ends_without_message_stop(self):
        events, reader = self.stream("sim:words=10 sim:fault=cut")
        self.assertIsNotNone(reader.error)
        names = [n for n, _ in events]
        self.assertEqual(names.count("content_block_delta"), 5)
        self.assertNotIn("message_stop", names)
        self.assertNotIn("content_block_stop", names)
        self.assertIsNone(self.last_record()["usage"])

    def test_malformed_is_half_a_message(self):
        status, hdrs, data = self.post(
            "/v1/messages", {"model": HAIKU, "max_tokens": 50,
                             "messages": user("sim:fault=malformed")},
            VERSION)
        self.assertEqual(status, 200)
        self.assertTrue(data.startswith(b'{"id":"msg_'))
        with self.assertRaises(ValueError):
            json.loads(data)

    def test_unknown_fault_is_400(self):
        status, hdrs, data = self.fault("explode")
        self.check_error(status, hdrs, data, 400, "invalid_request_error")


# ------------------------------------------------------- OpenAI Responses


def responses_counted(instructions, items):
    """The Responses input as the token rule sees it (chat messages)."""
    counted = []
    if instructions is not None:
        counted.append({"role": "system", "content": instructions})
    if isinstance(items, str):
        return counted + user(items)
    for item in items:
        content = item.get("content")
        if isinstance(content, list):
            content = [{"type": "text", "text": p["text"]}
                       if p.get("type") in ("input_text", "output_text")
                       else p for p in content]
        counted.append({"role": item["role"], "content": content}
                       if "role" in item else {})
    return counted


class ResponsesTest(ShapesCase):

    def respond(self, body, headers=None):
        return self.post_json("/v1/responses", body, headers)

    def ask(self, text, model="gpt-4o", **extra):
        status, hdrs, data = self.respond(dict(model=model, input=text,
                                               **extra))
        self.assertEqual(status, 200, data)
        return hdrs, data

    def stream(self, text, model="gpt-4o", **extra):
        body = dict(model=model, input=text, stream=True, **extra)
        events, reader, _ = self.stream_events("/v1/responses", body)
        return [(n, json.loads(d)) for n, d in events], reader

    def text_of(self, response):
        message = [i for i in response["output"] if i["type"] == "message"]
        return message[0]["content"][0]["text"]

    def test_plain_response_shape(self):
        items = [{"role": "user", "content": [
                     {"type": "input_text", "text": "Hello there"}]},
                 {"role": "assistant", "content": "Hi."},
                 {"type": "function_call_output", "call_id": "c1",
                  "output": "{}"},
                 {"role": "user", "content": "again sim:words=7"}]
        hdrs, data = self.ask(items, instructions="Be brief.")
        self.assertTrue(hdrs["x-request-id"].startswith("req_"))
        self.assertRegex(data["id"], r"^resp_[0-9a-f]{32}$")
        self.assertEqual(data["object"], "response")
        self.assertEqual(data["status"], "completed")
        self.assertIsNone(data["error"])
        self.assertIsNone(data["incomplete_details"])
        self.assertEqual(data["instructions"], "Be brief.")
        self.assertEqual(len(data["output"]), 1)
        item = data["output"][0]
        self.assertEqual((item["type"], item["role"], item["status"]),
                         ("message", "assistant", "completed"))
        self.assertRegex(item["id"], r"^msg_")
        self.assertEqual(item["content"][0]["type"], "output_text")
        text = item["content"][0]["text"]
        self.assertEqual(len(text.split()), 7)
        prompt = prompt_tokens(responses_counted("Be brief.", items))
        self.assertEqual(data["usage"], {
            "input_tokens": prompt,
            "input_tokens_details": {"cached_tokens": 0,
                                     "cache_write_tokens": 0},
            "output_tokens": 7,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": prompt + 7})
        rec = self.last_record()
        self.assertEqual(rec["surface"], "openai.responses")
        self.assertEqual(rec["usage"], data["usage"])

    def test_max_output_tokens_makes_it_incomplete(self):
        _, data = self.ask("sim:words=40", max_output_tokens=16)
        self.assertEqual(data["status"], "incomplete")
        self.assertEqual(data["incomplete_details"],
                         {"reason": "max_output_tokens"})
        self.assertEqual(data["max_output_tokens"], 16)
        self.assertEqual(data["output"][0]["status"], "incomplete")
        self.assertEqual(data["usage"]["output_tokens"], 16)

    def test_stream_events_and_sequence_numbers(self):
        events, reader = self.stream("stream me sim:words=4")
        self.assertIsNone(reader.error)
        names = [n for n, _ in events]
        self.assertEqual(names, [
            "response.created", "response.in_progress",
            "response.output_item.added", "response.content_part.added"]
            + ["response.output_text.delta"] * 4 + [
            "response.output_text.done", "response.content_part.done",
            "response.output_item.done", "response.completed"])
        for seq, (name, data) in enumerate(events):
            self.assertEqual(data["type"], name)
            self.assertEqual(data["sequence_number"], seq)
        for name, data in events[:2]:
            self.assertEqual(data["response"]["status"], "in_progress")
            self.assertIsNone(data["response"]["usage"])
        deltas = "".join(d["delta"] for n, d in events
                         if n == "response.output_text.delta")
        self.assertEqual(events[-4][1]["text"], deltas)
        final = events[-1][1]["response"]
        _, plain = self.ask("stream me sim:words=4")
        self.assertEqual(self.text_of(final), self.text_of(plain))
        self.assertEqual(final["usage"], plain["usage"])
        self.assertEqual(final["status"], "completed")

    def test_stream_ends_incomplete_at_max_output_tokens(self):
        events, _ = self.stream("sim:words=40", max_output_tokens=20)
        name, data = events[-1]
        self.assertEqual(name, "response.incomplete")
        self.assertEqual(data["response"]["status"], "incomplete")
        self.assertEqual(data["response"]["usage"]["output_tokens"], 20)

    def test_v8_streamed_usage_on_response_completed(self):
        events, _ = self.stream("sim:input=904 sim:cache_read=4096 "
                                "sim:reasoning=1000 sim:words=200",
                                model="gpt-5-mini")
        final = events[-1][1]["response"]
        self.assertEqual(final["model"], "gpt-5-mini-2025-08-07")
        usage = final["usage"]
        self.assertEqual(usage, {
            "input_tokens": 5000,
            "input_tokens_details": {"cached_tokens": 4096,
                                     "cache_write_tokens": 0},
            "output_tokens": 1200,
            "output_tokens_details": {"reasoning_tokens": 1000},
            "total_tokens": 6200})
        uncached = (usage["input_tokens"]
                    - usage["input_tokens_details"]["cached_tokens"])
        cost = (pico(uncached, "0.25") + pico(4096, "0.025")
                + pico(usage["output_tokens"], "2.00"))
        self.assertEqual(cost, usd("0.0027284"))
        # A reasoning item comes first, so the text is output_index 1.
        self.assertEqual(final["output"][0]["type"], "reasoning")
        delta = [d for n, d in events
                 if n == "response.output_text.delta"][0]
        self.assertEqual(delta["output_index"], 1)
        self.assertEqual(self.last_record()["normalized"]["output_tokens"],
                         1200)

    def test_web_search_calls_are_output_items(self):
        _, data = self.ask("sim:words=3 sim:web_search=2")
        kinds = [i["type"] for i in data["output"]]
        self.assertEqual(kinds, ["web_search_call", "web_search_call",
                                 "message"])
        self.assertEqual(data["output"][0]["status"], "completed")
        self.assertEqual(self.last_record()["normalized"]["web_searches"], 2)
        events, _ = self.stream("sim:words=3 sim:web_search=2")
        names = [n for n, _ in events]
        for suffix in ("in_progress", "searching", "completed"):
            self.assertEqual(
                names.count("response.web_search_call." + suffix), 2)

    def test_cache_write_and_tier_directives(self):
        _, data = self.ask("sim:input=4000 sim:cache_write=16000 "
                           "sim:words=1000 sim:service_tier=flex")
        self.assertEqual(data["usage"]["input_tokens"], 20000)
        self.assertEqual(data["usage"]["input_tokens_details"],
                         {"cached_tokens": 0, "cache_write_tokens": 16000})
        self.assertEqual(data["service_tier"], "flex")
        norm = self.last_record()["normalized"]
        self.assertEqual((norm["cache_write_tokens"], norm["service_tier"]),
                         (16000, "flex"))

    def test_midstream_error_event(self):
        events, reader = self.stream("sim:words=10 "
                                     "sim:fault=midstream-error")
        self.assertIsNone(reader.error)
        name, data = events[-1]
        self.assertEqual(name, "error")
        self.assertEqual(data["code"], "server_error")
        self.assertEqual(data["sequence_number"], len(events) - 1)
        self.assertFalse([n for n, _ in events
                          if n in ("response.completed",
                                   "response.failed")])
        self.assertIsNone(self.last_record()["usage"])

    def test_failed_fault_is_response_failed_with_usage(self):
        events, _ = self.stream("sim:words=10 sim:fault=failed")
        name, data = events[-1]
        self.assertEqual(name, "response.failed")
        response = data["response"]
        self.assertEqual(response["status"], "failed")
        self.assertEqual(response["error"]["code"], "server_error")
        sent = "".join(d["delta"] for n, d in events
                       if n == "response.output_text.delta")
        self.assertEqual(self.text_of(response), sent)
        self.assertEqual(response["usage"]["output_tokens"],
                         count_pieces(sent))
        rec = self.last_record()
        self.assertEqual(rec["usage"], response["usage"])
        self.assertEqual(rec["normalized"]["output_tokens"],
                         count_pieces(sent))

    def test_cut_and_status_faults(self):
        events, reader = self.stream("sim:words=10 sim:fault=cut")
        self.assertIsNotNone(reader.error)
        self.assertEqual([n for n, _ in events].count(
            "response.output_text.delta"), 5)
        status, hdrs, data = self.respond(
            {"model": "gpt-4o", "input": "x"}, {"x-sim-fault": "429"})
        self.assertEqual(status, 429)
        self.assertEqual(data["error"]["code"], "rate_limit_exceeded")
        self.assertEqual(hdrs["retry-after"], "7")
        status, _, data = self.respond({"model": "gpt-4o",
                                        "input": "sim:fault=failed"})
        self.assertEqual(status, 500)
        self.assertEqual(data["error"]["type"], "server_error")

    def test_bad_requests(self):
        for body, param, code in (
                ({"model": "gpt-4o"}, "input",
                 "missing_required_parameter"),
                ({"input": "x"}, "model", "missing_required_parameter"),
                ({"model": "gpt-4o", "input": 5}, "input", "invalid_type"),
                ({"model": "gpt-4o", "input": "x", "max_output_tokens": 15},
                 "max_output_tokens", "integer_below_min_value")):
            status, _, data = self.respond(body)
            self.assertEqual(status, 400, body)
            self.assertEqual(set(data["error"]),
                             {"message", "type", "param", "code"})
            self.assertEqual((data["error"]["param"], data["error"]["code"]),
                             (param, code))


# ----------------------------------------------------------- embeddings


class EmbeddingsTest(ShapesCase):

    def embed(self, body, headers=None):
        return self.post_json("/v1/embeddings", body, headers)

    def test_string_and_batch_inputs(self):
        status, _, data = self.embed({"model": "text-embedding-3-small",
                                      "input": "Hello, world!"})
        self.assertEqual(status, 200, data)
        self.assertEqual(data["object"], "list")
        self.assertEqual(data["model"], "text-embedding-3-small")
        self.assertEqual(data["usage"], {"prompt_tokens": 4,
                                         "total_tokens": 4})
        self.assertEqual(len(data["data"]), 1)
        item = data["data"][0]
        self.assertEqual((item["object"], item["index"]), ("embedding", 0))
        self.assertEqual(len(item["embedding"]), 8)
        for value in item["embedding"]:
            self.assertTrue(-1 <= value <= 1)

        inputs = ["one two", "caf\u00e9 \u2615", [5, 6, 7]]
        _, _, data = self.embed({"model": "m", "input": inputs,
                                 "dimensions": 3})
        self.assertEqual([d["index"] for d in data["data"]], [0, 1, 2])
        self.assertEqual(data["usage"]["prompt_tokens"], 2 + 3 + 3)
        self.assertEqual(len(data["data"][2]["embedding"]), 3)
        _, _, again = self.embed({"model": "m", "input": inputs,
                                  "dimensions": 3})
        self.assertEqual(again["data"], data["data"])
        rec = self.last_record()
        self.assertEqual(rec["surface"], "openai.embeddings")
        self.assertEqual(rec["usage"], again["usage"])
        self.assertEqual(rec["normalized"]["input_tokens"], 8)
        self.assertEqual(rec["normalized"]["output_tokens"], 0)

    def test_token_array_is_one_input_and_base64_packs_floats(self):
        _, _, data = self.embed({"model": "m", "input": [1, 2, 3, 4]})
        self.assertEqual(len(data["data"]), 1)
        self.assertEqual(data["usage"]["prompt_tokens"], 4)
        _, _, floats = self.embed({"model": "m", "input": "abc"})
        _, _, packed = self.embed({"model": "m", "input": "abc",
                                   "encoding_format": "base64"})
        raw = base64.b64decode(packed["data"][0]["embedding"])
        self.assertEqual(list(struct.unpack("<8f", raw)),
                         floats["data"][0]["embedding"])

    def test_bad_inputs_and_faults(self):
        for body in ({"model": "m"}, {"model": "m", "input": ""},
                     {"model": "m", "input": []},
                     {"model": "m", "input": [{"x": 1}]},
                     {"input": "x"},
                     {"model": "m", "input": "x", "dimensions": 0}):
            status, _, data = self.embed(body)
            self.assertEqual(status, 400, body)
            self.assertEqual(data["error"]["type"], "invalid_request_error")
        status, hdrs, data = self.embed({"model": "m", "input": "x"},
                                        {"x-sim-fault": "429"})
        self.assertEqual((status, hdrs["retry-after"]), (429, "7"))
        status, _, data = self.embed({"model": "m",
                                      "input": ["a", "b sim:fault=503"]})
        self.assertEqual(status, 503)
        self.assertEqual(data["error"]["code"], "server_is_overloaded")


# ---------------------------------------------------------------- Azure


AZURE_CHAT = "/openai/deployments/%s/chat/completions?api-version=2024-10-21"


class AzureTest(ShapesCase):
    SIM_ARGS = ("--key", "azure-secret")
    KEY = {"api-key": "azure-secret"}

    def azure(self, path, body, headers=None):
        return self.post_json(path, body,
                              self.KEY if headers is None else headers)

    def test_path_api_version_and_key(self):
        body = {"messages": user("hi sim:words=3")}
        status, hdrs, data = self.azure(AZURE_CHAT % "prod", body)
        self.assertEqual(status, 200, data)
        self.assertEqual(data["model"], "gpt-4o-2024-11-20")
        self.assertEqual(data["object"], "chat.completion")
        self.assertEqual(hdrs["apim-request-id"], hdrs["x-request-id"])
        self.assertEqual(data["usage"]["completion_tokens"], 3)
        self.assertIn("prompt_filter_results", data)
        self.assertIn("content_filter_results", data["choices"][0])
        sent = self.sim.requests()[-1]
        self.assertEqual(sent["path"], AZURE_CHAT % "prod")
        self.assertEqual(sent["headers"], {"api-key": "azure-secret"})
        self.assertEqual(self.last_record()["surface"], "azure.chat")

        # No api-version: Azure's bare 404, before the key is looked at.
        for path in ("/openai/deployments/prod/chat/completions",
                     "/openai/deployments/prod/chat/completions"
                     "?api-version=",
                     "/openai/deployments/prod/completions"
                     "?api-version=2024-10-21"):
            status, _, data = self.azure(path, body, {})
            self.assertEqual(status, 404, path)
            self.assertEqual(data["error"]["code"], "404")
            self.assertEqual(data["error"]["message"], "Resource not found")

        for headers in ({}, {"api-key": "nope"},
                        {"Authorization": "Bearer azure-secret"}):
            status, _, data = self.azure(AZURE_CHAT % "prod", body, headers)
            self.assertEqual(status, 401, headers)
            self.assertEqual(set(data["error"]),
                             {"message", "type", "param", "code"})
            self.assertEqual(data["error"]["code"], "401")

    def test_stream_starts_with_filter_chunk(self):
        body = {"messages": user("sim:words=3"), "stream": True,
                "stream_options": {"include_usage": True}}
        events, _, _ = self.stream_events(AZURE_CHAT % "prod", body,
                                          self.KEY, named=False)
        self.assertEqual(events[-1], "[DONE]")
        chunks = [json.loads(e) for e in events[:-1]]
        self.assertEqual(chunks[0]["choices"], [])
        self.assertNotIn("usage", chunks[0])
        self.assertIn("prompt_filter_results", chunks[0])
        self.assertEqual(chunks[1]["choices"][0]["delta"]["role"],
                         "assistant")
        self.assertEqual(chunks[-1]["choices"], [])
        self.assertEqual(chunks[-1]["usage"]["completion_tokens"], 3)
        self.assertEqual(chunks[-1]["model"], "gpt-4o-2024-11-20")

    def test_faults_in_openai_shape(self):
        for name, want in (("429", 429), ("500", 500), ("503", 503),
                           ("spendcap", 429)):
            status, hdrs, data = self.azure(
                AZURE_CHAT % "prod", {"messages": user("x")},
                dict(self.KEY, **{"x-sim-fault": name}))
            self.assertEqual(status, want, name)
            self.assertEqual(set(data["error"]),
                             {"message", "type", "param", "code"})
        self.assertEqual(data["error"]["code"], "insufficient_quota")
        self.assertNotIn("retry-after", hdrs)

    def test_embeddings_deployment(self):
        path = ("/openai/deployments/emb/embeddings"
                "?api-version=2024-10-21")
        status, hdrs, data = self.azure(path, {"input": ["a b", "c"]})
        self.assertEqual(status, 200, data)
        self.assertEqual(data["model"], "gpt-4o-2024-11-20")
        self.assertEqual(data["usage"]["prompt_tokens"], 3)
        self.assertEqual(self.last_record()["surface"], "azure.embeddings")


class AzureDeploymentTest(ShapesCase):
    SIM_ARGS = ("--azure-deployment", "prod=gpt-4o-mini-2024-07-18",
                "--azure-deployment", "think=o3-mini-2025-01-31")

    def test_deployments_name_their_dated_model(self):
        status, _, data = self.post_json(AZURE_CHAT % "prod",
                                         {"messages": user("sim:words=2")})
        self.assertEqual(status, 200, data)
        self.assertEqual(data["model"], "gpt-4o-mini-2024-07-18")
        # The body's model never overrides the deployment's.
        _, _, data = self.post_json(AZURE_CHAT % "think",
                                    {"model": "gpt-4o",
                                     "messages": user("sim:words=2")})
        self.assertEqual(data["model"], "o3-mini-2025-01-31")
        self.assertEqual(
            data["usage"]["completion_tokens_details"]["reasoning_tokens"], 4)
        status, _, data = self.post_json(AZURE_CHAT % "other",
                                         {"messages": user("x")})
        self.assertEqual(status, 404)
        self.assertEqual(data["error"]["code"], "DeploymentNotFound")


# ------------------------------------------------------ Gemini (OpenAI)


GEMINI_CHAT = "/v1beta/openai/chat/completions"


class GeminiTest(ShapesCase):
    SIM_ARGS = ("--key", "gem-key")
    AUTH = {"Authorization": "Bearer gem-key"}

    def gemini(self, body, headers=None):
        return self.post_json(GEMINI_CHAT, body,
                              self.AUTH if headers is None else headers)

    def test_plain_completion_excludes_thoughts_total_includes(self):
        # V19's counts: prompt 120,000 with 100,000 cached, candidates
        # 2,000, thoughts 3,000, total 125,000.
        status, hdrs, data = self.gemini({
            "model": "gemini-2.5-pro",
            "messages": user("sim:input=20000 sim:cache_read=100000 "
                             "sim:reasoning=3000 sim:words=2000")})
        self.assertEqual(status, 200, data)
        self.assertNotIn("x-request-id", hdrs)
        self.assertNotIn("system_fingerprint", data)
        self.assertEqual(data["model"], "gemini-2.5-pro")
        usage = data["usage"]
        self.assertEqual(usage, {"prompt_tokens": 120000,
                                 "completion_tokens": 2000,
                                 "total_tokens": 125000,
                                 "prompt_tokens_details":
                                     {"cached_tokens": 100000}})
        thoughts = (usage["total_tokens"] - usage["prompt_tokens"]
                    - usage["completion_tokens"])
        cached = usage["prompt_tokens_details"]["cached_tokens"]
        cost = (pico(usage["prompt_tokens"] - cached, "1.25")
                + pico(cached, "0.125")
                + pico(usage["completion_tokens"] + thoughts, "10"))
        self.assertEqual(cost, usd("0.087500"))
        norm = self.last_record()["normalized"]
        self.assertEqual(self.last_record()["surface"], "gemini.chat")
        self.assertEqual((norm["output_tokens"], norm["reasoning_tokens"]),
                         (5000, 3000))

    def test_every_chunk_carries_cumulative_usage(self):
        messages = user("sim:words=4 sim:reasoning=100")
        events, _, _ = self.stream_events(
            GEMINI_CHAT, {"model": "gemini-2.5-flash", "stream": True,
                          "messages": messages}, self.AUTH, named=False)
        self.assertEqual(events[-1], "[DONE]")
        chunks = [json.loads(e) for e in events[:-1]]
        self.assertEqual(len(chunks), 1 + 4 + 1)
        prompt = prompt_tokens(messages)
        text = ""
        for chunk in chunks:
            self.assertEqual(len(chunk["choices"]), 1)
            delta = chunk["choices"][0]["delta"]
            text += delta.get("content", "")
            usage = chunk["usage"]
            self.assertEqual(usage["prompt_tokens"], prompt)
            self.assertEqual(usage["completion_tokens"], count_pieces(text))
            self.assertEqual(usage["total_tokens"],
                             prompt + count_pieces(text) + 100)
        self.assertEqual(chunks[-1]["choices"][0]["finish_reason"], "stop")
        summed = sum(c["usage"]["prompt_tokens"] for c in chunks)
        self.assertNotEqual(summed, prompt)
        self.assertEqual(self.last_record()["usage"], chunks[-1]["usage"])

    def test_usage_on_every_chunk_even_without_include_usage(self):
        events, _, _ = self.stream_events(
            GEMINI_CHAT, {"model": "g", "stream": True,
                          "stream_options": {"include_usage": False},
                          "messages": user("sim:words=2")},
            self.AUTH, named=False)
        for event in events[:-1]:
            self.assertIn("usage", json.loads(event))

    def test_errors_in_google_shape(self):
        def check(status, data, want, want_status):
            self.assertEqual(status, want)
            self.assertEqual(set(data), {"error"})
            self.assertEqual(data["error"]["code"], want)
            self.assertEqual(data["error"]["status"], want_status)
            self.assertIsInstance(data["error"]["message"], str)

        body = {"model": "g", "messages": user("x")}
        status, _, data = self.gemini(body, {})
        check(status, data, 401, "UNAUTHENTICATED")
        status, _, data = self.gemini(body, {"Authorization": "Bearer no"})
        check(status, data, 400, "INVALID_ARGUMENT")
        status, _, data = self.gemini({"model": "g"})
        check(status, data, 400, "INVALID_ARGUMENT")
        status, hdrs, data = self.gemini(
            dict(body, messages=user("sim:fault=429")))
        check(status, data, 429, "RESOURCE_EXHAUSTED")
        self.assertEqual(data["error"]["details"][0]["retryDelay"], "7s")
        status, _, data = self.gemini(
            dict(body, messages=user("sim:fault=spendcap")))
        check(status, data, 429, "RESOURCE_EXHAUSTED")
        self.assertNotIn("details", data["error"])
        for name, want, want_status in (("500", 500, "INTERNAL"),
                                        ("503", 503, "UNAVAILABLE"),
                                        ("529", 503, "UNAVAILABLE")):
            status, _, data = self.gemini(
                dict(body, messages=user("sim:fault=" + name)))
            check(status, data, want, want_status)

    def test_midstream_error_in_google_shape(self):
        events, reader, _ = self.stream_events(
            GEMINI_CHAT, {"model": "g", "stream": True,
                          "messages": user("sim:words=10 "
                                           "sim:fault=midstream-error")},
            self.AUTH, named=False)
        self.assertNotIn("[DONE]", events)
        last = json.loads(events[-1])
        self.assertEqual(last["error"]["status"], "INTERNAL")
        self.assertIsNone(self.last_record()["usage"])


# -------------------------------------------------------- virtual clock


class VirtualClockShapesTest(ShapesCase):
    SIM_ARGS = ("--clock", "virtual", "--default-latency", "100,10",
                "--stall-ms", "5000")

    def test_anthropic_stream_is_paced_per_chunk(self):
        body = {"model": HAIKU, "max_tokens": 100, "stream": True,
                "messages": user("sim:words=5")}
        conn = open_request("POST", self.sim.url + "/v1/messages", body,
                            VERSION)
        try:
            self.wait_for(lambda: self.sim.stats()["in_flight"] == 1)
            self.sim.advance(100)
            reader = NamedSSE(conn.getresponse())
            names = [next(reader)[0] for _ in range(4)]
            self.assertEqual(names, ["message_start", "content_block_start",
                                     "ping", "content_block_delta"])
            self.assertEqual(self.sim.stats()["in_flight"], 1)
            self.sim.advance(39)
            self.assertEqual(self.sim.usage(), [])
            self.sim.advance(1)
            rest = [n for n, _ in reader.read_all()[4:]]
            self.assertEqual(rest[-1], "message_stop")
            self.assertEqual(rest.count("content_block_delta"), 4)
        finally:
            conn.close()
        self.assertEqual(self.last_record()["usage"]["output_tokens"], 5)

    def test_responses_plain_waits_for_reasoning_too(self):
        # ttft 100 + (3 words + 7 reasoning) * 10 ms = 200 ms.
        conn = open_request("POST", self.sim.url + "/v1/responses",
                            {"model": "gpt-4o",
                             "input": "sim:words=3 sim:reasoning=7"})
        try:
            self.wait_for(lambda: self.sim.stats()["in_flight"] == 1)
            self.sim.advance(199)
            self.assertEqual(self.sim.usage(), [])
            self.sim.advance(1)
            data = json.loads(conn.getresponse().read())
            self.assertEqual(data["usage"]["output_tokens"], 10)
        finally:
            conn.close()

    def test_stall_then_client_gone_on_gemini(self):
        conn = open_request("POST", self.sim.url + GEMINI_CHAT,
                            {"model": "g", "stream": True,
                             "messages": user("sim:fault=stall")})
        self.wait_for(lambda: self.sim.stats()["in_flight"] == 1)
        conn.close()
        self.wait_for(lambda: self.sim.stats()["in_flight"] == 0)
        rec = self.sim.usage()[0]
        self.assertEqual((rec["surface"], rec["client_gone"], rec["usage"]),
                         ("gemini.chat", True, None))


# ------------------------------------------- the same usage, two surfaces


class CrossSurfaceTest(ShapesCase):

    def test_bug01_same_numbers_on_openai_surface(self):
        text = ("sim:input=20 sim:cache_write=10000 sim:cache_read=30000 "
                "sim:words=400")
        status, _, chat = self.post_json("/v1/chat/completions", {
            "model": "claude-sonnet-4-5", "messages": user(text)})
        self.assertEqual(status, 200, chat)
        usage = chat["usage"]
        self.assertEqual(usage["prompt_tokens"], 40020)
        self.assertEqual(usage["prompt_tokens_details"], {
            "cached_tokens": 30000, "cache_write_tokens": 10000,
            "audio_tokens": 0})
        self.assertEqual(usage["completion_tokens"], 400)
        uncached = (usage["prompt_tokens"] - 30000 - 10000)
        cost = (pico(uncached, "3.00") + pico(10000, "3.75")
                + pico(30000, "0.30") + pico(400, "15.00"))
        self.assertEqual(cost, usd("0.05256"))
        chat_norm = self.last_record()["normalized"]

        status, _, msg = self.post_json("/v1/messages", {
            "model": "claude-sonnet-4-5", "max_tokens": 1000,
            "messages": user(text)}, VERSION)
        self.assertEqual(status, 200, msg)
        anthropic_norm = self.last_record()["normalized"]
        # The 1h split is Anthropic's alone; everything else agrees.
        self.assertEqual(chat_norm, anthropic_norm)

    def test_chat_without_directives_keeps_its_usage_shape(self):
        status, _, data = self.post_json("/v1/chat/completions", {
            "model": "gpt-4o", "messages": user("plain")})
        self.assertEqual(set(data["usage"]["prompt_tokens_details"]),
                         {"cached_tokens", "audio_tokens"})
        self.assertEqual(data["service_tier"], "default")

    def test_chat_tier_and_reasoning_directives(self):
        # V11(b) flex, and a forced reasoning count inside completion.
        status, _, data = self.post_json("/v1/chat/completions", {
            "model": "gpt-5", "messages": user(
                "sim:input=10000 sim:words=1500 sim:reasoning=500 "
                "sim:service_tier=flex")})
        self.assertEqual(data["service_tier"], "flex")
        usage = data["usage"]
        self.assertEqual((usage["prompt_tokens"], usage["completion_tokens"],
                          usage["completion_tokens_details"]
                          ["reasoning_tokens"]), (10000, 2000, 500))
        cost = pico(10000, "0.625") + pico(2000, "5.00")
        self.assertEqual(cost, usd("0.016250"))
        self.assertEqual(self.last_record()["normalized"]["service_tier"],
                         "flex")

    def test_directive_parsing_edges(self):
        # Later directives win; unknown keys and bad values are ignored.
        status, _, data = self.post_json("/v1/chat/completions", {
            "model": "gpt-4o", "messages": user(
                "sim:cache_read=5 sim:cache_read=7 sim:bogus=1 "
                "sim:input=x sim:words=1")})
        self.assertEqual(status, 200)
        self.assertEqual(
            data["usage"]["prompt_tokens_details"]["cached_tokens"], 7)

    def test_message_tokens_helper_matches_system_rule(self):
        # Guards the assumption the Anthropic tests make about counting.
        self.assertEqual(message_tokens({"role": "system",
                                         "content": "a b"}), 6)


if __name__ == "__main__":
    unittest.main()
