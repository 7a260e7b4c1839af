"""End-to-end tests of the provider simulator itself.

Every other e2e test trusts the simulator's wire format, usage and faults,
so these check them against OpenAI's Chat Completions shapes and against
the token rule recomputed in Python (harness.count_pieces/prompt_tokens).
Set TOLLGATE_SIM_BIN to an ASan build to check the simulator under them;
each class fails if the simulator exits uncleanly or ASan reports.
"""

import csv
import http.client as httpclient
import json
import os
import random
import signal
import socket
import subprocess
import tempfile
import unittest

from harness import (SIM_BIN, SSEReader, Sim, count_pieces, free_port, http,
                     http_json, need_shared, open_request, open_stream,
                     prompt_tokens)

GSM8K = "data/routellm-evals/gsm8k_responses.csv"
STRONG = "gpt-4-1106-preview"
WEAK = "mistralai/Mixtral-8x7B-Instruct-v0.1"
# Bounded polling of the simulator's own state; never a wall-clock sleep.
POLLS = 500


def user(text):
    return [{"role": "user", "content": text}]


def check_clean_exit(testcase_cls, sim):
    rc = sim.stop()
    bad = [m for m in ("AddressSanitizer", "runtime error:", "LeakSanitizer")
           if m in sim.stderr]
    if rc != 0 or bad:
        raise AssertionError("%s: provider-sim exited %s; stderr:\n%s"
                             % (testcase_cls.__name__, rc, sim.stderr))


class SimCase(unittest.TestCase):
    """One simulator per test class, reset before each test."""

    SIM_ARGS = ()

    @classmethod
    def setUpClass(cls):
        cls.sim = Sim(cls.SIM_ARGS)

    @classmethod
    def tearDownClass(cls):
        check_clean_exit(cls, cls.sim)

    def setUp(self):
        self.sim.reset()

    def chat(self, body, headers=None):
        return http_json("POST", self.sim.chat_url(), body, headers)

    def ask(self, messages, model="gpt-4o", headers=None, **extra):
        body = dict(model=model, messages=messages, **extra)
        status, hdrs, data = self.chat(body, headers)
        self.assertEqual(status, 200, data)
        return hdrs, data

    def stream(self, messages, model="gpt-4o", headers=None, **extra):
        body = dict(model=model, messages=messages, stream=True, **extra)
        conn, resp, reader = open_stream(self.sim.chat_url(), body, headers)
        try:
            self.assertEqual(resp.status, 200)
            self.assertTrue(resp.getheader("content-type")
                            .startswith("text/event-stream"))
            return reader.read_all(), reader
        finally:
            conn.close()

    def wait_for(self, predicate):
        for _ in range(POLLS):
            value = predicate()
            if value:
                return value
        self.fail("condition never held")

    def assertUsage(self, usage, prompt, answer, reasoning=0, cached=0):
        completion = answer + reasoning
        self.assertEqual(usage, {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": cached,
                                      "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": reasoning, "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0},
        })


MIXED_MESSAGES = [
    {"role": "system", "content": "You are terse. Answer in 3 words!"},
    {"role": "user", "content": [
        {"type": "text", "text": "Look at "},
        {"type": "text", "text": "this: caf\u00e9 \u2615"},
        {"type": "image_url",
         "image_url": {"url": "data:image/png;base64,AAAA"}}]},
    {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_1", "type": "function",
         "function": {"name": "get_weather",
                      "arguments": "{\"city\": \"Paris\"}"}}]},
    {"role": "tool", "tool_call_id": "call_1",
     "content": "{\"temp\": 21.5}"},
    {"role": "user", "content": "And tomorrow? \U0001F600 x2"},
]


class PlainAnswerTest(SimCase):

    def test_token_rule_reference_values(self):
        # Fixed values so the Python rule cannot drift with the C one.
        self.assertEqual(count_pieces("Hello, world!"), 4)
        # "caf" and "\u00e9" split: only ASCII letters and digits join.
        self.assertEqual(count_pieces("caf\u00e9 \u2615 a1b2-c3"), 6)
        self.assertEqual(count_pieces("  \t\n"), 0)
        self.assertEqual(prompt_tokens(user("Hello, world!")), 11)

    def test_plain_answer_usage_matches_token_rule(self):
        hdrs, data = self.ask(MIXED_MESSAGES)
        content = data["choices"][0]["message"]["content"]
        self.assertUsage(data["usage"], prompt_tokens(MIXED_MESSAGES),
                         count_pieces(content))

    def test_simple_prompt_usage_literal(self):
        _, data = self.ask(user("Hello, world! sim:words=7"))
        # Hello , world ! sim : words = 7 -> 9 pieces.
        self.assertEqual(data["usage"]["prompt_tokens"], 3 + 4 + 9)
        self.assertEqual(data["usage"]["completion_tokens"], 7)

    def test_answer_shape_is_openai_chat_completion(self):
        hdrs, data = self.ask(user("shape please"))
        self.assertEqual(hdrs["content-type"], "application/json")
        self.assertTrue(hdrs["x-request-id"].startswith("req_"))
        self.assertNotIn("x-sim-replay", hdrs)
        self.assertRegex(data["id"], r"^chatcmpl-\d+$")
        self.assertEqual(data["object"], "chat.completion")
        self.assertIsInstance(data["created"], int)
        self.assertEqual(data["model"], "gpt-4o")
        self.assertEqual(data["service_tier"], "default")
        self.assertRegex(data["system_fingerprint"], r"^fp_[0-9a-f]{10}$")
        self.assertEqual(len(data["choices"]), 1)
        choice = data["choices"][0]
        self.assertEqual(choice["index"], 0)
        self.assertEqual(choice["finish_reason"], "stop")
        self.assertEqual(choice["message"]["role"], "assistant")
        self.assertIsInstance(choice["message"]["content"], str)

    def test_same_request_same_answer(self):
        _, first = self.ask(user("determinism"))
        _, second = self.ask(user("determinism"))
        _, other = self.ask(user("determinism"), model="gpt-4o-mini")
        text = first["choices"][0]["message"]["content"]
        self.assertEqual(text, second["choices"][0]["message"]["content"])
        self.assertNotEqual(first["id"], second["id"])
        words = len(text.split())
        self.assertTrue(8 <= words < 48, words)
        self.assertNotEqual(text, other["choices"][0]["message"]["content"])

    def test_words_marker_gives_exact_word_count(self):
        for n in (0, 1, 5, 300):
            _, data = self.ask(user("say sim:words=%d please" % n))
            text = data["choices"][0]["message"]["content"]
            self.assertEqual(len(text.split()), n)
            self.assertEqual(data["usage"]["completion_tokens"], n)

    def test_max_tokens_truncates_with_finish_length(self):
        for field in ("max_tokens", "max_completion_tokens"):
            _, data = self.ask(user("sim:words=20"), **{field: 6})
            choice = data["choices"][0]
            self.assertEqual(choice["finish_reason"], "length")
            self.assertEqual(len(choice["message"]["content"].split()), 6)
            self.assertEqual(data["usage"]["completion_tokens"], 6)
        _, data = self.ask(user("sim:words=6"), max_tokens=6)
        self.assertEqual(data["choices"][0]["finish_reason"], "stop")

    def test_usage_journal_records_each_answer(self):
        _, data = self.ask(user("journal me"))
        records = self.sim.usage()
        self.assertEqual(len(records), 1)
        rec = records[0]
        self.assertEqual(rec["id"], data["id"])
        self.assertEqual(rec["model"], "gpt-4o")
        self.assertIs(rec["stream"], False)
        self.assertIsNone(rec["fault"])
        self.assertEqual(rec["usage"], data["usage"])

    def test_requests_journal_holds_exact_bytes(self):
        body = ('{ "model" : "gpt-4o",\n  "messages": [{"role":"user",'
                '"content":"bytes \u00e9\\u00e9 \\"q\\""}], "n": 1.50 }')
        raw = body.encode("utf-8")
        status, _, _ = http("POST", self.sim.chat_url(), raw,
                            {"Authorization": "Bearer sk-anything"})
        self.assertEqual(status, 200)
        bad = b'{"model":"x","messages":"\xff\xfe"}'
        status, _, _ = http("POST", self.sim.chat_url(), bad)
        self.assertEqual(status, 400)

        reqs = self.sim.requests()
        self.assertEqual(len(reqs), 2)
        self.assertEqual(reqs[0], {"path": "/v1/chat/completions",
                                   "method": "POST", "body": body,
                                   "authorization": "Bearer sk-anything"})
        self.assertIsNone(reqs[1]["body"])
        self.assertIsNone(reqs[1]["authorization"])
        import base64
        self.assertEqual(base64.b64decode(reqs[1]["body_base64"]), bad)

    def test_introspection_stays_out_of_requests_journal(self):
        http("GET", self.sim.url + "/health")
        self.sim.usage()
        self.assertEqual(self.sim.requests(), [])

    def test_health(self):
        status, hdrs, body = http("GET", self.sim.url + "/health")
        self.assertEqual((status, body), (200, b"ok"))

    def test_unknown_path_is_openai_404(self):
        status, _, data = http_json("POST", self.sim.url + "/v1/nope", {})
        self.assertEqual(status, 404)
        self.assertEqual(data["error"]["type"], "invalid_request_error")
        status, _, data = http_json("GET", self.sim.chat_url())
        self.assertEqual(status, 405)
        self.assertIn("error", data)

    def test_reset_clears_journals(self):
        self.ask(user("one"))
        self.sim.reset()
        self.assertEqual(self.sim.requests(), [])
        self.assertEqual(self.sim.usage(), [])

    def test_real_clock_cannot_be_advanced(self):
        status, _, data = http_json("POST",
                                    self.sim.url + "/_sim/clock/advance",
                                    {"ms": 5})
        self.assertEqual(status, 409)
        self.assertGreaterEqual(self.sim.now_ms(), 0)


BAD_BODIES = [
    # (body, status, param, code)
    (b"", 400, None, None),
    (b"{", 400, None, None),
    (b"not json", 400, None, None),
    (b"[]", 400, None, None),
    (b'{"model":"gpt-4o","messages":[]} trailing', 400, None, None),
    (b'{"model":"gpt-4o","messages":[{"role":"user","content":"a",}]}',
     400, None, None),
    (b'{"messages":[{"role":"user","content":"a"}]}', 400, "model",
     "missing_required_parameter"),
    (b'{"model":null,"messages":[{"role":"user","content":"a"}]}', 400,
     "model", "missing_required_parameter"),
    (b'{"model":7,"messages":[{"role":"user","content":"a"}]}', 400,
     "model", "invalid_type"),
    (b'{"model":"gpt-4o"}', 400, "messages", "missing_required_parameter"),
    (b'{"model":"gpt-4o","messages":"hi"}', 400, "messages",
     "invalid_type"),
    (b'{"model":"gpt-4o","messages":[]}', 400, "messages", "empty_array"),
    (b'{"model":"gpt-4o","messages":[3]}', 400, "messages[0]",
     "invalid_type"),
    (b'{"model":"gpt-4o","messages":[{"content":"a"}]}', 400,
     "messages[0].role", "missing_required_parameter"),
    (b'{"model":"gpt-4o","messages":[{"role":"bot","content":"a"}]}', 400,
     "messages[0].role", "invalid_value"),
    (b'{"model":"gpt-4o","messages":[{"role":"user","content":{}}]}', 400,
     "messages[0].content", "invalid_type"),
    (b'{"model":"gpt-4o","messages":[{"role":"user","content":"a"}],'
     b'"stream_options":{"include_usage":true}}', 400, "stream_options",
     None),
    (b'{"model":"gpt-4o","messages":[{"role":"user","content":"a"}],'
     b'"stream":false,"stream_options":{"include_usage":true}}', 400,
     "stream_options", None),
    (b'{"model":"gpt-4o","messages":[{"role":"user","content":"a"}],'
     b'"stream":"yes"}', 400, "stream", "invalid_type"),
    (b'{"model":"gpt-4o","messages":[{"role":"user","content":"a"}],'
     b'"max_tokens":0}', 400, "max_tokens", "integer_below_min_value"),
    (b'{"model":"gpt-4o","messages":[{"role":"user","content":"a"}],'
     b'"max_completion_tokens":2.5}', 400, "max_completion_tokens",
     "invalid_type"),
    (b'{"model":"gpt-4o","messages":[{"role":"user","content":"a"}]}',
     200, None, None),
]


class RequestValidationTest(SimCase):

    def test_malformed_requests_get_openai_400s(self):
        for body, status, param, code in BAD_BODIES:
            with self.subTest(body=body):
                got, hdrs, data = http("POST", self.sim.chat_url(), body)
                self.assertEqual(got, status, data)
                if status == 200:
                    continue
                self.assertEqual(hdrs["content-type"], "application/json")
                error = json.loads(data)["error"]
                self.assertEqual(set(error),
                                 {"message", "type", "param", "code"})
                self.assertEqual(error["type"], "invalid_request_error")
                self.assertEqual(error["param"], param)
                self.assertEqual(error["code"], code)
                self.assertTrue(error["message"])
        # Refused requests are journaled as received but never answered.
        self.assertEqual(len(self.sim.requests()), len(BAD_BODIES))
        self.assertEqual(len(self.sim.usage()), 1)

    def test_odd_bodies_never_crash(self):
        rng = random.Random(20261203)
        valid = json.dumps({"model": "gpt-4o", "stream": True,
                            "stream_options": {"include_usage": True},
                            "messages": MIXED_MESSAGES}).encode()
        bodies = [
            b"[" * 100000 + b"]" * 100000,
            b'{"a":' * 5000 + b"1" + b"}" * 5000,
            b'{"model":"gpt-4o","messages":[{"role":"user","content":'
            b'"\\u0000\\ud800 sim:words=3"}]}',
            b'{"model":"gpt-4o","max_tokens":99999999999999999999999,'
            b'"messages":[{"role":"user","content":"a"}]}',
            b'{"model":"gpt-4o","max_tokens":1e400,"messages":[]}',
            b'{"model":"' + b"m" * 200000 + b'","messages":[{"role":"user"}]}',
            json.dumps({"model": "gpt-4o", "messages": [
                {"role": "user", "content": "x"}] * 5000}).encode(),
            b'{"model":"gpt-4o","messages":[{"role":"user","content":'
            b'[1,null,"s",{"type":"text","text":7},{"type":"text"}]}]}',
            b'{"model":"gpt-4o","messages":[{"role":"assistant",'
            b'"tool_calls":[1,{"function":3},{"function":{"name":5}}]}]}',
            b"\x00\x01\x02\xff" * 64,
        ]
        for _ in range(150):
            data = bytearray(valid)
            for _ in range(rng.randint(1, 4)):
                pos = rng.randrange(len(data))
                if rng.random() < 0.5:
                    del data[pos]
                else:
                    data.insert(pos, rng.randrange(256))
            bodies.append(bytes(data))
        for _ in range(50):
            bodies.append(bytes(rng.randrange(256)
                                for _ in range(rng.randint(0, 300))))

        for body in bodies:
            status, _, _ = http("POST", self.sim.chat_url(), body)
            self.assertIn(status, (200, 400))
        self.assertEqual(http("GET", self.sim.url + "/health")[0], 200)

    def test_broken_http_never_crashes(self):
        garbage = [
            b"GARBAGE\r\n\r\n",
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
            b"Content-Length: 500\r\n\r\n{\"model\":",
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
            b"Transfer-Encoding: chunked\r\n\r\nzz\r\n",
            b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n",
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
            b"Content-Length: 60\r\nx-sim-fault: stall\r\n\r\n"
            b'{"model":"m","messages":[{"role":"user","content":"a"}]}   ',
        ]
        for raw in garbage:
            with socket.create_connection(("127.0.0.1", self.sim.port),
                                          timeout=10) as sock:
                sock.sendall(raw)
                sock.shutdown(socket.SHUT_WR)
                while sock.recv(65536):
                    pass
        self.assertEqual(http("GET", self.sim.url + "/health")[0], 200)
        self.wait_for(lambda: self.sim.stats()["in_flight"] == 0)


class StreamTest(SimCase):

    def chunks(self, events):
        self.assertEqual(events[-1], "[DONE]")
        return [json.loads(e) for e in events[:-1]]

    def check_chunk_head(self, chunk, first):
        self.assertEqual(chunk["object"], "chat.completion.chunk")
        for key in ("id", "created", "model", "system_fingerprint",
                    "service_tier"):
            self.assertEqual(chunk[key], first[key])

    def test_stream_without_include_usage_has_no_usage(self):
        events, reader = self.stream(user("stream me sim:words=4"))
        self.assertIsNone(reader.error)
        chunks = self.chunks(events)
        self.assertEqual(len(chunks), 1 + 4 + 1)
        for chunk in chunks:
            self.check_chunk_head(chunk, chunks[0])
            self.assertNotIn("usage", chunk)
        self.assertEqual(chunks[0]["choices"], [{
            "index": 0, "delta": {"role": "assistant", "content": "",
                                  "refusal": None},
            "logprobs": None, "finish_reason": None}])
        for i, chunk in enumerate(chunks[1:5]):
            choice = chunk["choices"][0]
            self.assertEqual(set(choice["delta"]), {"content"})
            self.assertIsNone(choice["finish_reason"])
            if i > 0:
                self.assertTrue(choice["delta"]["content"].startswith(" "))
        self.assertEqual(chunks[-1]["choices"], [{
            "index": 0, "delta": {}, "logprobs": None,
            "finish_reason": "stop"}])
        rec = self.sim.usage()[0]
        self.assertIs(rec["stream"], True)
        self.assertIsNone(rec["usage"])

    def test_stream_with_include_usage_ends_with_usage_chunk(self):
        messages = user("stream usage sim:words=5")
        events, _ = self.stream(messages,
                                stream_options={"include_usage": True})
        chunks = self.chunks(events)
        self.assertEqual(len(chunks), 1 + 5 + 1 + 1)
        for chunk in chunks[:-1]:
            self.check_chunk_head(chunk, chunks[0])
            self.assertIn("usage", chunk)
            self.assertIsNone(chunk["usage"])
        last = chunks[-1]
        self.check_chunk_head(last, chunks[0])
        self.assertEqual(last["choices"], [])
        text = "".join(c["choices"][0]["delta"]["content"]
                       for c in chunks[1:6])
        self.assertUsage(last["usage"], prompt_tokens(messages),
                         count_pieces(text))
        self.assertEqual(self.sim.usage()[0]["usage"], last["usage"])

    def test_include_usage_false_sends_no_usage(self):
        events, _ = self.stream(user("x sim:words=2"),
                                stream_options={"include_usage": False})
        for chunk in self.chunks(events):
            self.assertNotIn("usage", chunk)

    def test_stream_content_equals_plain_content(self):
        messages = user("same text either way")
        _, plain = self.ask(messages)
        events, _ = self.stream(messages,
                                stream_options={"include_usage": True})
        chunks = self.chunks(events)
        text = "".join(c["choices"][0]["delta"].get("content", "")
                       for c in chunks if c["choices"])
        self.assertEqual(text, plain["choices"][0]["message"]["content"])
        self.assertEqual(chunks[-1]["usage"], plain["usage"])

    def test_stream_truncated_by_max_tokens(self):
        events, _ = self.stream(user("sim:words=9"), max_tokens=4)
        chunks = self.chunks(events)
        self.assertEqual(len(chunks), 1 + 4 + 1)
        self.assertEqual(chunks[-1]["choices"][0]["finish_reason"], "length")


class ReasoningAndSnapshotTest(SimCase):
    SIM_ARGS = ("--snapshot", "gpt-4o=gpt-4o-2024-08-06",
                "--snapshot", "o3=o3-2025-04-16")

    def test_reasoning_tokens_are_twice_answer_pieces(self):
        for model in ("o1-mini", "o3", "o4-mini", "gpt-5-nano"):
            _, data = self.ask(user("think sim:words=10"), model=model)
            usage = data["usage"]
            self.assertEqual(
                usage["completion_tokens_details"]["reasoning_tokens"], 20)
            self.assertEqual(usage["completion_tokens"], 30)

    def test_non_reasoning_model_reports_none(self):
        _, data = self.ask(user("sim:words=10"), model="gpt-4.1")
        self.assertEqual(
            data["usage"]["completion_tokens_details"]["reasoning_tokens"], 0)

    def test_reasoning_limit_keeps_completion_within_max(self):
        _, data = self.ask(user("sim:words=50"), model="o4-mini",
                           max_completion_tokens=10)
        self.assertEqual(data["usage"]["completion_tokens"], 9)
        self.assertEqual(data["choices"][0]["finish_reason"], "length")

    def test_snapshot_reported_as_response_model(self):
        hdrs, data = self.ask(user("which model"))
        self.assertEqual(data["model"], "gpt-4o-2024-08-06")
        events, _ = self.stream(user("which model"))
        for event in events[:-1]:
            self.assertEqual(json.loads(event)["model"], "gpt-4o-2024-08-06")
        _, data = self.ask(user("which"), model="o3")
        self.assertEqual(data["model"], "o3-2025-04-16")
        self.assertEqual(self.sim.usage()[0]["model"], "gpt-4o-2024-08-06")


class CustomReasoningPrefixTest(SimCase):
    SIM_ARGS = ("--reasoning-prefix", "deep-")

    def test_prefix_replaces_defaults(self):
        _, data = self.ask(user("sim:words=3"), model="deep-thinker")
        self.assertEqual(data["usage"]["completion_tokens"], 9)
        _, data = self.ask(user("sim:words=3"), model="o3")
        self.assertEqual(data["usage"]["completion_tokens"], 3)


class FaultTest(SimCase):

    def check_error(self, status, hdrs, data, want_status, want_type):
        self.assertEqual(status, want_status)
        self.assertEqual(hdrs["content-type"], "application/json")
        error = json.loads(data)["error"]
        self.assertEqual(set(error), {"message", "type", "param", "code"})
        self.assertEqual(error["type"], want_type)
        return error

    def test_429_fault_by_header(self):
        status, hdrs, data = http("POST", self.sim.chat_url(), {
            "model": "gpt-4o", "messages": user("hi")},
            {"x-sim-fault": "429"})
        error = self.check_error(status, hdrs, data, 429, "requests")
        self.assertEqual(error["code"], "rate_limit_exceeded")
        self.assertEqual(hdrs["retry-after"], "7")
        for name in ("limit", "remaining", "reset"):
            for kind in ("requests", "tokens"):
                self.assertIn("x-ratelimit-%s-%s" % (name, kind), hdrs)
        self.assertEqual(hdrs["x-ratelimit-remaining-requests"], "0")

    def test_429_fault_by_message_marker(self):
        status, hdrs, data = http("POST", self.sim.chat_url(), {
            "model": "gpt-4o",
            "messages": user("please fail sim:fault=429, thanks")})
        self.check_error(status, hdrs, data, 429, "requests")

    def test_500_and_503_faults(self):
        for name, want, want_type in (
                ("500", 500, "server_error"),
                ("503", 503, "service_unavailable_error")):
            status, hdrs, data = http("POST", self.sim.chat_url(), {
                "model": "gpt-4o", "messages": user("sim:fault=" + name)})
            self.check_error(status, hdrs, data, want, want_type)
        self.assertEqual([r["fault"] for r in self.sim.usage()],
                         ["500", "503"])
        for rec in self.sim.usage():
            self.assertIsNone(rec["id"])
            self.assertIsNone(rec["usage"])

    def test_malformed_fault_is_invalid_json(self):
        for stream in (False, True):
            status, hdrs, data = http("POST", self.sim.chat_url(), {
                "model": "gpt-4o", "stream": stream,
                "messages": user("sim:fault=malformed")})
            self.assertEqual(status, 200)
            self.assertEqual(hdrs["content-type"], "application/json")
            self.assertTrue(data.startswith(b'{"id":"chatcmpl-'))
            with self.assertRaises(ValueError):
                json.loads(data)

    def test_cut_plain_closes_mid_body(self):
        conn = open_request("POST", self.sim.chat_url(), {
            "model": "gpt-4o", "messages": user("cut me")},
            {"x-sim-fault": "cut"})
        try:
            resp = conn.getresponse()
            self.assertEqual(resp.status, 200)
            length = int(resp.getheader("content-length"))
            with self.assertRaises(httpclient.IncompleteRead) as ctx:
                resp.read()
            self.assertEqual(len(ctx.exception.partial), length // 2)
        finally:
            conn.close()
        rec = self.sim.usage()[0]
        self.assertEqual(rec["fault"], "cut")
        self.assertIsNone(rec["usage"])

    def test_cut_stream_has_no_done(self):
        events, reader = self.stream(
            user("sim:words=10"), headers={"x-sim-fault": "cut"},
            stream_options={"include_usage": True})
        self.assertIsNotNone(reader.error)
        self.assertNotIn("[DONE]", events)
        chunks = [json.loads(e) for e in events]
        self.assertEqual(len(chunks), 1 + 5)
        self.assertEqual(chunks[0]["choices"][0]["delta"]["role"],
                         "assistant")
        for chunk in chunks:
            self.assertIsNone(chunk["choices"][0]["finish_reason"])
            self.assertIsNone(chunk["usage"])
        self.wait_for(lambda: self.sim.usage())
        self.assertIsNone(self.sim.usage()[0]["usage"])

    def test_midstream_error_stream(self):
        events, reader = self.stream(
            user("sim:words=10 sim:fault=midstream-error"),
            stream_options={"include_usage": True})
        self.assertIsNone(reader.error)
        self.assertNotIn("[DONE]", events)
        chunks = [json.loads(e) for e in events]
        self.assertEqual(len(chunks), 1 + 3 + 1)
        error = chunks[-1]["error"]
        self.assertEqual(set(error), {"message", "type", "param", "code"})
        self.assertEqual(error["type"], "server_error")
        self.assertEqual(set(chunks[-1]), {"error"})
        rec = self.sim.usage()[0]
        self.assertEqual(rec["fault"], "midstream-error")
        self.assertIsNone(rec["usage"])

    def test_midstream_error_on_plain_is_500(self):
        status, hdrs, data = http("POST", self.sim.chat_url(), {
            "model": "gpt-4o", "messages": user("a")},
            {"x-sim-fault": "midstream-error"})
        self.check_error(status, hdrs, data, 500, "server_error")

    def test_unknown_fault_is_400(self):
        status, hdrs, data = http("POST", self.sim.chat_url(), {
            "model": "gpt-4o", "messages": user("a")},
            {"x-sim-fault": "explode"})
        error = self.check_error(status, hdrs, data, 400,
                                 "invalid_request_error")
        self.assertEqual(error["code"], "unknown_sim_fault")

    def test_fault_marker_only_in_last_user_message(self):
        messages = [{"role": "user", "content": "sim:fault=500"},
                    {"role": "assistant", "content": "ok"},
                    {"role": "user", "content": "fine now"}]
        self.ask(messages)


class VirtualClockTest(SimCase):
    SIM_ARGS = ("--clock", "virtual", "--default-latency", "100,10",
                "--latency", "fast=0,0", "--stall-ms", "5000")

    def body(self, text, **extra):
        return dict(model="gpt-4o", messages=user(text), **extra)

    def test_clock_reports_and_advances(self):
        start = self.sim.now_ms()
        self.assertEqual(self.sim.advance(250), start + 250)
        self.assertEqual(self.sim.now_ms(), start + 250)

    def test_plain_waits_for_advance(self):
        # sim:words=5 -> due at ttft 100 + 5 tokens * 10 ms = 150 ms.
        conn = open_request("POST", self.sim.chat_url(),
                            self.body("sim:words=5"))
        try:
            self.wait_for(lambda: self.sim.stats()["in_flight"] == 1)
            self.sim.advance(149)
            self.assertEqual(self.sim.usage(), [])
            self.sim.advance(1)
            resp = conn.getresponse()
            self.assertEqual(resp.status, 200)
            data = json.loads(resp.read())
            self.assertEqual(data["usage"]["completion_tokens"], 5)
        finally:
            conn.close()

    def test_model_latency_overrides_default(self):
        _, data = self.ask(user("sim:words=5"), model="fast")
        self.assertEqual(data["usage"]["completion_tokens"], 5)

    def test_stream_first_chunk_before_end(self):
        conn = open_request("POST", self.sim.chat_url(),
                            self.body("sim:words=5", stream=True))
        try:
            self.wait_for(lambda: self.sim.stats()["in_flight"] == 1)
            self.sim.advance(100)
            resp = conn.getresponse()
            reader = SSEReader(resp)
            role = json.loads(next(reader))
            first = json.loads(next(reader))
            self.assertEqual(role["choices"][0]["delta"]["role"],
                             "assistant")
            self.assertIn("content", first["choices"][0]["delta"])
            # The stream is still open: the rest is not yet due.
            self.assertEqual(self.sim.stats()["in_flight"], 1)
            self.assertEqual(self.sim.usage(), [])
            self.sim.advance(39)
            self.assertEqual(self.sim.usage(), [])
            self.sim.advance(1)
            rest = reader.read_all()[2:]
            self.assertEqual(len(rest), 4 + 1 + 1)
            self.assertEqual(rest[-1], "[DONE]")
        finally:
            conn.close()

    def test_stall_fault_ends_after_advance(self):
        conn = open_request("POST", self.sim.chat_url(),
                            self.body("sim:words=5"),
                            {"x-sim-fault": "stall"})
        try:
            self.wait_for(lambda: self.sim.stats()["in_flight"] == 1)
            self.sim.advance(5000 + 149)
            self.assertEqual(self.sim.usage(), [])
            self.sim.advance(1)
            resp = conn.getresponse()
            self.assertEqual(resp.status, 200)
            self.assertEqual(json.loads(resp.read())["usage"]
                             ["completion_tokens"], 5)
        finally:
            conn.close()
        self.assertEqual(self.sim.usage()[0]["fault"], "stall")

    def test_stall_client_disconnect_is_cleaned_up(self):
        for stream in (False, True):
            conn = open_request("POST", self.sim.chat_url(),
                                self.body("sim:fault=stall", stream=stream))
            self.wait_for(lambda: self.sim.stats()["in_flight"] == 1)
            conn.close()
            self.wait_for(lambda: self.sim.stats()["in_flight"] == 0)
        records = self.sim.usage()
        self.assertEqual([r["client_gone"] for r in records], [True, True])
        self.assertEqual([r["usage"] for r in records], [None, None])
        self.sim.advance(10 ** 6)
        self.assertEqual(len(self.sim.usage()), 2)

    def test_disconnect_mid_stream_is_cleaned_up(self):
        conn = open_request("POST", self.sim.chat_url(),
                            self.body("sim:words=50", stream=True))
        self.wait_for(lambda: self.sim.stats()["in_flight"] == 1)
        self.sim.advance(120)
        resp = conn.getresponse()
        reader = SSEReader(resp)
        next(reader)
        conn.close()
        resp.close()
        self.wait_for(lambda: self.sim.stats()["in_flight"] == 0)
        self.sim.advance(10 ** 6)
        self.assertIs(self.sim.usage()[0]["client_gone"], True)


class PromptCacheTest(SimCase):

    LONG = " ".join("w%d" % i for i in range(1100))

    def convo(self, last, system=None):
        return [{"role": "system", "content": system or self.LONG},
                {"role": "user", "content": "first question"},
                {"role": "assistant", "content": "first answer"},
                {"role": "user", "content": last}]

    def test_repeat_of_long_prefix_reads_cache(self):
        first = self.convo("q1")
        _, data = self.ask(first)
        self.assertEqual(
            data["usage"]["prompt_tokens_details"]["cached_tokens"], 0)
        second = self.convo("another question")
        _, data = self.ask(second)
        prefix = prompt_tokens(second[:-1])
        self.assertGreaterEqual(prefix, 1024)
        cached = prefix // 128 * 128
        self.assertEqual(
            data["usage"]["prompt_tokens_details"]["cached_tokens"], cached)
        self.assertEqual(data["usage"]["prompt_tokens"],
                         prompt_tokens(second))
        events, _ = self.stream(self.convo("third"),
                                stream_options={"include_usage": True})
        usage = json.loads(events[-2])["usage"]
        self.assertEqual(usage["prompt_tokens_details"]["cached_tokens"],
                         cached)

    def test_short_prefix_never_cached(self):
        for _ in range(2):
            _, data = self.ask(self.convo("q", system="short system"))
            self.assertEqual(
                data["usage"]["prompt_tokens_details"]["cached_tokens"], 0)

    def test_cache_is_per_model(self):
        self.ask(self.convo("q1"), model="gpt-4o")
        _, data = self.ask(self.convo("q2"), model="gpt-4o-mini")
        self.assertEqual(
            data["usage"]["prompt_tokens_details"]["cached_tokens"], 0)

    def test_reset_clears_cache(self):
        self.ask(self.convo("q1"))
        self.sim.reset()
        _, data = self.ask(self.convo("q2"))
        self.assertEqual(
            data["usage"]["prompt_tokens_details"]["cached_tokens"], 0)


class AuthAndModelsTest(SimCase):
    SIM_ARGS = ("--key", "sk-sim-test", "--models", "gpt-4o,gpt-4o-mini")
    AUTH = {"Authorization": "Bearer sk-sim-test"}

    def test_missing_or_wrong_key_is_401(self):
        for headers in ({}, {"Authorization": "Bearer sk-wrong"},
                        {"Authorization": "sk-sim-test"},
                        {"Authorization": "Bearer sk-sim-test2"}):
            status, hdrs, data = http_json(
                "POST", self.sim.chat_url(),
                {"model": "gpt-4o", "messages": user("a")}, headers)
            self.assertEqual(status, 401)
            self.assertEqual(data["error"]["code"], "invalid_api_key")
            self.assertEqual(data["error"]["type"], "invalid_request_error")
        self.assertEqual(self.sim.usage(), [])
        auths = [r["authorization"] for r in self.sim.requests()]
        self.assertEqual(auths, [None, "Bearer sk-wrong", "sk-sim-test",
                                 "Bearer sk-sim-test2"])

    def test_right_key_answers(self):
        self.ask(user("a"), headers=self.AUTH)

    def test_unknown_model_is_404(self):
        status, _, data = http_json(
            "POST", self.sim.chat_url(),
            {"model": "gpt-9", "messages": user("a")}, self.AUTH)
        self.assertEqual(status, 404)
        self.assertEqual(data["error"]["code"], "model_not_found")
        self.assertEqual(data["error"]["type"], "invalid_request_error")

    def test_models_list(self):
        status, _, data = http_json("GET", self.sim.url + "/v1/models",
                                    headers=self.AUTH)
        self.assertEqual(status, 200)
        self.assertEqual(data["object"], "list")
        self.assertEqual([m["id"] for m in data["data"]],
                         ["gpt-4o", "gpt-4o-mini"])
        for model in data["data"]:
            self.assertEqual(model["object"], "model")
            self.assertIn("owned_by", model)
        status, _, _ = http("GET", self.sim.url + "/v1/models")
        self.assertEqual(status, 401)
        status, _, data = http_json("GET", self.sim.url
                                    + "/v1/models/gpt-4o-mini",
                                    headers=self.AUTH)
        self.assertEqual((status, data["id"]), (200, "gpt-4o-mini"))


class ReplayRouteLLMTest(unittest.TestCase):
    sim = None

    @classmethod
    def tearDownClass(cls):
        if cls.sim is not None:
            check_clean_exit(cls, cls.sim)

    def setUp(self):
        path = need_shared(self, GSM8K)
        if ReplayRouteLLMTest.sim is None:
            ReplayRouteLLMTest.sim = Sim(["--replay-routellm", str(path)])
        with open(path, newline="", encoding="utf-8") as fp:
            self.rows = list(csv.DictReader(fp))

    def ask(self, prompt, model, stream=False):
        body = {"model": model, "messages": user(prompt)}
        if stream:
            body.update(stream=True, stream_options={"include_usage": True})
        conn = open_request("POST", self.sim.chat_url(), body)
        try:
            resp = conn.getresponse()
            self.assertEqual(resp.status, 200)
            replay = resp.getheader("x-sim-replay")
            if not stream:
                data = json.loads(resp.read())
                return replay, data["choices"][0]["message"]["content"]
            events = SSEReader(resp).read_all()
            text = "".join(json.loads(e)["choices"][0]["delta"]
                           .get("content", "")
                           for e in events[:-1] if json.loads(e)["choices"])
            return replay, text
        finally:
            conn.close()

    def test_loads_every_row(self):
        self.assertEqual(len(self.rows), 1319)

    def test_gsm8k_prompt_hits_for_both_models(self):
        quoted = next(r for r in self.rows if '"' in r["prompt"])
        for row in (self.rows[0], self.rows[1], quoted, self.rows[-1]):
            for model in (STRONG, WEAK):
                replay, text = self.ask(row["prompt"], model)
                self.assertEqual(replay, "hit")
                self.assertEqual(text, row[model + "_response"])

    def test_gsm8k_stream_replays_same_text(self):
        row = self.rows[1]
        replay, text = self.ask(row["prompt"], WEAK, stream=True)
        self.assertEqual(replay, "hit")
        self.assertEqual(text, row[WEAK + "_response"])

    def test_gsm8k_usage_counts_replayed_text(self):
        row = self.rows[2]
        status, _, data = http_json("POST", self.sim.chat_url(), {
            "model": STRONG, "messages": user(row["prompt"])})
        self.assertEqual(data["usage"]["completion_tokens"],
                         count_pieces(row[STRONG + "_response"]))
        self.assertEqual(data["usage"]["prompt_tokens"],
                         prompt_tokens(user(row["prompt"])))

    def test_miss_answers_normally_with_miss_header(self):
        replay, text = self.ask(self.rows[0]["prompt"] + " ", STRONG)
        self.assertEqual(replay, "miss")
        self.assertTrue(text)
        replay, _ = self.ask(self.rows[0]["prompt"], "gpt-4o")
        self.assertEqual(replay, "miss")
        self.assertEqual([r["replay"] for r in self.sim.usage()][-2:],
                         ["miss", "miss"])


class ReplayJsonlTest(SimCase):
    RECORDS = [
        {"model": "gpt-4o", "prompt": "What is 2+2?", "response": "4."},
        {"model": "gpt-4o-mini", "prompt": "What is 2+2?",
         "response": "Four \u2014 \"exactly\".\nDone. \U0001F600"},
        {"model": "gpt-4o", "prompt": "multi\nline\tprompt",
         "response": "  leading and trailing spaces  "},
    ]

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        path = os.path.join(cls.tmp.name, "replay.jsonl")
        with open(path, "w", encoding="utf-8") as fp:
            for rec in cls.RECORDS:
                fp.write(json.dumps(rec) + "\n")
            fp.write("\n")
        cls.SIM_ARGS = ("--replay-jsonl", path)
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.tmp.cleanup()

    def test_jsonl_hit_and_miss(self):
        for rec in self.RECORDS:
            hdrs, data = self.ask(user(rec["prompt"]), model=rec["model"])
            self.assertEqual(hdrs["x-sim-replay"], "hit")
            self.assertEqual(data["choices"][0]["message"]["content"],
                             rec["response"])
            self.assertEqual(data["usage"]["completion_tokens"],
                             count_pieces(rec["response"]))
        hdrs, _ = self.ask(user("What is 2+3?"))
        self.assertEqual(hdrs["x-sim-replay"], "miss")

    def test_replay_keys_on_last_user_message(self):
        messages = [{"role": "user", "content": "earlier"},
                    {"role": "assistant", "content": "reply"},
                    {"role": "user", "content": [
                        {"type": "text", "text": "What is "},
                        {"type": "text", "text": "2+2?"}]}]
        hdrs, data = self.ask(messages)
        self.assertEqual(hdrs["x-sim-replay"], "hit")
        self.assertEqual(data["choices"][0]["message"]["content"], "4.")

    def test_stream_replay_keeps_whitespace(self):
        rec = self.RECORDS[2]
        events, _ = self.stream(user(rec["prompt"]))
        text = "".join(json.loads(e)["choices"][0]["delta"]
                       .get("content", "") for e in events[:-1])
        self.assertEqual(text, rec["response"])


class SimProcessTest(unittest.TestCase):

    def test_listens_on_requested_port_and_exits_cleanly(self):
        port = free_port()
        proc = subprocess.Popen(
            [SIM_BIN, "--listen", "127.0.0.1:%d" % port],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            line = proc.stdout.readline().decode()
            self.assertEqual(line,
                             "provider-sim listening on 127.0.0.1:%d\n"
                             % port)
            status, _, body = http("GET", "http://127.0.0.1:%d/health"
                                   % port)
            self.assertEqual(body, b"ok")
        finally:
            proc.terminate()
            _, err = proc.communicate(timeout=10)
        self.assertEqual(proc.returncode, 0, err)

    def test_sigint_with_calls_in_flight_exits_cleanly(self):
        sim = Sim(["--stall-ms", "600000"])
        conns = [open_request("POST", sim.chat_url(), {
            "model": "m", "stream": stream,
            "messages": user("sim:fault=stall")}) for stream in (False, True)]
        try:
            for _ in range(POLLS):
                if sim.stats()["in_flight"] == 2:
                    break
            self.assertEqual(sim.stats()["in_flight"], 2)
            sim.proc.send_signal(signal.SIGINT)
            sim.proc.wait(timeout=10)
            check_clean_exit(type(self), sim)
        finally:
            for conn in conns:
                conn.close()
            sim.stop()

    def test_bad_arguments_fail(self):
        for args in (["--listen", "nope"], ["--clock", "sideways"],
                     ["--latency", "gpt-4o=1"], ["--stall-ms", "-1"],
                     ["--replay-jsonl", "/nonexistent/file.jsonl"],
                     ["--bogus"]):
            proc = subprocess.run([SIM_BIN, "--listen", "127.0.0.1:0"]
                                  + args, capture_output=True, timeout=10)
            self.assertNotEqual(proc.returncode, 0, args)
            self.assertTrue(proc.stderr, args)


if __name__ == "__main__":
    unittest.main()
