"""End-to-end tests of the gateway core: the real binary (sanitizer
build) in front of the provider simulator, asserting status codes,
headers, exact costs and ledger rows."""
import http.client
import json
import os
import subprocess
import time
import unittest

import harness
from gateway import (BIN, Gateway, PRICES, cost_of, default_models, pico,
                     usd, wait_for)

HELLO = {"model": "fast", "messages": [{"role": "user", "content": "hi"}]}


def start_sim(*args):
    return harness.Sim(list(args))


class GatewayCase(unittest.TestCase):
    sim_args = ("--clock", "virtual", "--key", "sim-secret")
    gateway_kw = {}

    def setUp(self):
        self.sim = start_sim(*self.sim_args)
        self.gw = Gateway(self.sim.url + "/v1", **self.gateway_kw).start()

    def tearDown(self):
        rc = self.gw.stop()
        log = self.gw.log()
        self.sim.stop()
        self.assertEqual(rc, 0, "gateway exit code; log:\n" + log)
        self.assertNotIn("ERROR: AddressSanitizer", log)
        self.assertNotIn("runtime error:", log)

    def assert_estimated(self, row, model):
        """A call whose usage never came: counted by Tollgate, priced as
        an estimate apart from cost_pico, never $0."""
        price = {m["name"]: m for m in default_models("")}[model]["price"]
        self.assertEqual(row["cost_status"], "estimated")
        self.assertEqual(row["usage_estimated"], 1)
        self.assertIsNone(row["cost_pico"])
        self.assertGreater(row["input_tokens"], 0)
        self.assertEqual(row["cost_estimate_pico"],
                         pico(row["input_tokens"], price["input"]) +
                         pico(row["output_tokens"], price["output"]))

    def last_usage(self):
        usage = self.sim.usage()
        self.assertTrue(usage, "the simulator answered nothing")
        return usage[-1]["usage"]


class TestPlain(GatewayCase):
    def test_plain_call_is_priced_recorded_and_passed_on(self):
        status, headers, body = self.gw.chat(HELLO)
        self.assertEqual(status, 200, body)
        answer = json.loads(body)
        usage = self.last_usage()
        self.assertEqual(answer["usage"], usage)
        expected = cost_of(usage, PRICES["cheap"])
        self.assertEqual(headers["x-tollgate-cost-usd"], usd(expected))
        oid = headers["x-tollgate-outcome"]
        self.assertRegex(oid, r"^out_[0-9a-f]{24}$")

        self.gw.wait_written(1)
        row = self.gw.outcome(oid)
        self.assertEqual(row["cost_pico"], expected)
        self.assertEqual(row["cost_status"], "priced")
        self.assertEqual(row["http_status"], 200)
        self.assertEqual(row["key_id"], "alpha")
        self.assertEqual(row["team"], "support")
        self.assertEqual(row["owner"], "alice@example.com")
        self.assertEqual(row["task"], "triage")
        self.assertEqual(row["requested_model"], "fast")
        self.assertEqual(row["model"], "fast")
        self.assertEqual(row["input_tokens"], usage["prompt_tokens"])
        self.assertEqual(row["output_tokens"], usage["completion_tokens"])
        self.assertEqual(row["streamed"], 0)
        self.assertEqual(row["useful"], 1)
        self.assertEqual(row["n_attempts"], 1)
        (att,) = self.gw.attempts(oid)
        self.assertEqual(att["upstream_model"], "gpt-4o-mini")
        self.assertEqual(att["provider"], "sim")
        self.assertEqual(att["http_status"], 200)
        self.assertEqual(att["cost_pico"], expected)
        self.assertEqual(att["price_source"], "config#fast")
        self.assertEqual(att["reason"], "first")

    def test_upstream_gets_callers_bytes_with_only_model_swapped(self):
        raw = (b'{"model" : "fast", "temperature": 0.70, "top_p": 1e-1,'
               b' "seed": 12345678901234567890, "messages": [{"role":'
               b'"user","content":"caf\\u00e9 \xc3\xa9"}], "n": 1 }')
        status, _, body = self.gw.chat(None, raw=raw)
        self.assertEqual(status, 200, body)
        sent = self.sim.requests()[-1]
        self.assertEqual(sent["body"].encode(),
                         raw.replace(b'"fast"', b'"gpt-4o-mini"'))
        self.assertEqual(sent["authorization"], "Bearer sim-secret")

    def test_task_from_header_then_metadata_then_key_default(self):
        body = dict(HELLO, metadata={"task": "from-metadata"})
        _, h1, _ = self.gw.chat(body, headers={"X-Tollgate-Task": "hdr"})
        _, h2, _ = self.gw.chat(body)
        _, h3, _ = self.gw.chat(HELLO)
        _, h4, _ = self.gw.chat(HELLO, key="tg-key-beta")
        self.gw.wait_written(4)
        tasks = [self.gw.outcome(h["x-tollgate-outcome"])["task"]
                 for h in (h1, h2, h3, h4)]
        self.assertEqual(tasks, ["hdr", "from-metadata", "triage", "default"])

    def test_unpriced_model_is_never_zero(self):
        body = dict(HELLO, model="mystery")
        status, headers, _ = self.gw.chat(body)
        self.assertEqual(status, 200)
        self.assertEqual(headers["x-tollgate-cost-usd"], "unpriced")
        self.gw.wait_written(1)
        row = self.gw.outcome(headers["x-tollgate-outcome"])
        self.assertEqual(row["cost_status"], "unpriced")
        self.assertIsNone(row["cost_pico"])

    def test_models_and_health(self):
        status, _, body = harness.http(
            "GET", self.gw.url + "/v1/models", None,
            {"Authorization": "Bearer tg-key-alpha"})
        self.assertEqual(status, 200)
        ids = [m["id"] for m in json.loads(body)["data"]]
        self.assertEqual(ids, ["fast", "gpt-4o", "mystery"])
        status, _, body = harness.http("GET", self.gw.url + "/healthz")
        self.assertEqual(status, 200)
        health = json.loads(body)
        self.assertEqual(health["status"], "ok")
        self.assertFalse(health["ledger"]["full"])
        self.assertEqual(health["ledger"]["capacity"], 65536)

    def test_reasoning_tokens_billed_once(self):
        gw = Gateway(self.sim.url + "/v1", models=[
            {"name": "gpt-5-mini", "price": {"input": "0.25",
                                             "output": "2.00"}}]).start()
        try:
            status, headers, body = gw.chat(dict(HELLO, model="gpt-5-mini"))
            self.assertEqual(status, 200, body)
            usage = json.loads(body)["usage"]
            reasoning = usage["completion_tokens_details"]["reasoning_tokens"]
            self.assertGreater(reasoning, 0)
            expected = (pico(usage["prompt_tokens"], "0.25") +
                        pico(usage["completion_tokens"], "2.00"))
            self.assertEqual(headers["x-tollgate-cost-usd"], usd(expected))
        finally:
            self.assertEqual(gw.stop(), 0)

    def test_cached_prompt_tokens_priced_at_cached_rate(self):
        system = "Follow the house rules carefully. " * 300
        body = {"model": "gpt-4o", "messages": [
            {"role": "system", "content": system},
            {"role": "user", "content": "first question"}]}
        self.gw.chat(body)
        body["messages"][1]["content"] = "second question"
        status, headers, resp = self.gw.chat(body)
        self.assertEqual(status, 200)
        usage = json.loads(resp)["usage"]
        cached = usage["prompt_tokens_details"]["cached_tokens"]
        self.assertGreater(cached, 0)
        expected = (pico(usage["prompt_tokens"] - cached, "2.50") +
                    pico(cached, "1.25") +
                    pico(usage["completion_tokens"], "10.00"))
        self.assertEqual(headers["x-tollgate-cost-usd"], usd(expected))
        self.gw.wait_written(2)
        row = self.gw.outcome(headers["x-tollgate-outcome"])
        self.assertEqual(row["cached_tokens"], cached)


class TestStreaming(GatewayCase):
    def read_events(self, resp):
        return harness.SSEReader(resp).read_all()

    def open_stream(self, body, key="tg-key-alpha"):
        conn = self.gw.send_chat(body, key)
        return conn, conn.getresponse()

    def test_stream_asks_for_usage_and_hides_it_from_caller(self):
        body = dict(HELLO, stream=True)
        conn, resp = self.open_stream(body)
        self.assertEqual(resp.status, 200)
        self.assertEqual(resp.getheader("content-type"), "text/event-stream")
        self.assertIsNone(resp.getheader("x-tollgate-cost-usd"))
        oid = resp.getheader("x-tollgate-outcome")
        events = self.read_events(resp)
        conn.close()
        self.assertEqual(events[-1], "[DONE]")
        chunks = [json.loads(e) for e in events[:-1]]
        self.assertTrue(all(c["choices"] for c in chunks),
                        "the caller got the usage chunk it did not ask for")
        sent = json.loads(self.sim.requests()[-1]["body"])
        self.assertEqual(sent["stream_options"], {"include_usage": True})
        usage = self.last_usage()
        self.gw.wait_written(1)
        row = self.gw.outcome(oid)
        self.assertEqual(row["cost_pico"], cost_of(usage, PRICES["cheap"]))
        self.assertEqual(row["streamed"], 1)
        self.assertEqual(row["useful"], 1)

    def test_stream_with_include_usage_passes_usage_chunk(self):
        body = dict(HELLO, stream=True,
                    stream_options={"include_usage": True})
        conn, resp = self.open_stream(body)
        events = self.read_events(resp)
        conn.close()
        last = json.loads(events[-2])
        self.assertEqual(last["choices"], [])
        self.assertEqual(last["usage"], self.last_usage())

    def test_include_usage_false_is_turned_on_upstream(self):
        body = dict(HELLO, stream=True,
                    stream_options={"include_usage": False})
        conn, resp = self.open_stream(body)
        events = self.read_events(resp)
        conn.close()
        sent = json.loads(self.sim.requests()[-1]["body"])
        self.assertIs(sent["stream_options"]["include_usage"], True)
        self.assertTrue(all(json.loads(e)["choices"] for e in events[:-1]))

    def test_cut_stream_is_usage_missing_not_zero(self):
        body = {"model": "fast", "stream": True, "messages": [
            {"role": "user", "content": "tell me sim:fault=cut"}]}
        conn, resp = self.open_stream(body)
        oid = resp.getheader("x-tollgate-outcome")
        events = self.read_events(resp)
        conn.close()
        self.assertNotIn("[DONE]", events)
        err = json.loads(events[-1])
        self.assertEqual(err["error"]["code"], "upstream_cut")
        self.gw.wait_written(1)
        row = self.gw.outcome(oid)
        self.assert_estimated(row, "fast")
        self.assertIsNone(row["cost_pico"])
        self.assertEqual(row["error_type"], "upstream_cut")


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class TestSlowReader(GatewayCase):
    # Memory is measured on the release build: ASan's quarantine keeps
    # freed memory resident, so its RSS says nothing about buffering.
    gateway_kw = {"binary": os.path.join(harness.ROOT, "tollgate")}

    def test_slow_caller_pauses_the_provider_instead_of_buffering(self):
        # About 23 MB of stream; the caller reads nothing at first.
        body = {"model": "fast", "stream": True, "messages": [
            {"role": "user", "content": "long sim:words=100000"}]}
        before = rss_kib(self.gw.proc.pid)
        sock = self.gw.raw_chat(body, rcvbuf=65536, timeout=30)
        wait_for(lambda: json.loads(harness.http(
            "GET", self.sim.url + "/_sim/stats")[2])["answers"] == 1,
            timeout=60)
        peak = 0
        for _ in range(100):      # a bound over about a second of reading
            peak = max(peak, rss_kib(self.gw.proc.pid))
            time.sleep(0.01)
        # The provider's bytes wait in its own buffers and the kernel's,
        # not in the gateway: it grew far less than the stream's size.
        self.assertLess(peak - before, 12 * 1024,
                        f"gateway grew {peak - before} KiB")
        got = b""
        while not got.endswith(b"data: [DONE]\n\n\r\n0\r\n\r\n"):
            chunk = sock.recv(1 << 20)
            self.assertTrue(chunk, "stream closed before [DONE]")
            got += chunk
        sock.close()
        self.assertEqual(got.count(b'"content":" '), 100000 - 1)
        self.gw.wait_written(1)
        (row,) = self.gw.rows("outcomes")
        self.assertEqual(row["cost_status"], "priced")
        self.assertEqual(row["output_tokens"], 100000)


class TestStreamTiming(GatewayCase):
    sim_args = ("--clock", "virtual", "--key", "sim-secret",
                "--default-latency", "0,1000")

    def test_first_chunks_reach_caller_before_answer_ends(self):
        body = {"model": "fast", "stream": True, "messages": [
            {"role": "user", "content": "count sim:words=5"}]}
        sock = self.gw.raw_chat(body)
        got = b""
        while b'"role":"assistant"' not in got:
            chunk = sock.recv(65536)
            self.assertTrue(chunk, "stream closed early")
            got += chunk
        self.assertNotIn(b"[DONE]", got)
        self.assertNotIn(b"finish_reason\":\"stop", got)
        # The answer's remaining words are due only when time moves.
        self.sim.advance(10000)
        while b"[DONE]" not in got:
            chunk = sock.recv(65536)
            self.assertTrue(chunk, "stream closed before [DONE]")
            got += chunk
        sock.close()


class TestErrors(GatewayCase):
    gateway_kw = {"extra": "max_body_bytes: 2048\nmax_response_bytes: 4000"}

    def assert_openai_error(self, status, body, want_status, code=None,
                            param=None):
        self.assertEqual(status, want_status, body)
        err = json.loads(body)["error"]
        self.assertEqual(set(err), {"message", "type", "param", "code"})
        self.assertTrue(err["message"])
        if code is not None:
            self.assertEqual(err["code"], code)
        self.assertEqual(err["param"], param)
        return err

    def test_malformed_json_is_400_and_never_sent_upstream(self):
        bad = [b'{"model":"fast","messages":[{"role":"user","content":"hi"}],}',
               b'{model: "fast"}',
               b'{"model":"fast","messages":[{"role":"user","content":"hi"}]',
               b'', b'null', b'[]', b'{"model":"fast"} trailing',
               b'\xff\xfe{}',
               b"{'model':\"fast\",\"messages\":[]}",
               b'{"model":"fast","temperature":NaN,"messages":[]}',
               b'{"model":"fast\x01","messages":[]}',
               b'{"model":"\xc3(","messages":[]}',
               b'{"model":"fast","n":01,"messages":[]}']
        for raw in bad:
            status, headers, body = self.gw.chat(None, raw=raw)
            self.assert_openai_error(status, body, 400)
            self.assertIn("x-tollgate-outcome", headers)
            self.assertEqual(headers["x-tollgate-cost-usd"],
                             "0.000000000000")
        self.assertEqual(self.sim.requests(), [])
        self.gw.wait_written(len(bad))
        rows = self.gw.rows("outcomes")
        self.assertEqual(len(rows), len(bad))
        self.assertTrue(all(r["http_status"] == 400 and
                            r["cost_status"] == "none" and
                            r["n_attempts"] == 0 for r in rows))

    def test_missing_fields_are_400_naming_the_field(self):
        status, _, body = self.gw.chat({"messages": HELLO["messages"]})
        self.assert_openai_error(status, body, 400, "missing_field", "model")
        status, _, body = self.gw.chat({"model": "fast"})
        self.assert_openai_error(status, body, 400, "missing_field",
                                 "messages")

    def test_null_tool_calls_accepted_null_function_refused(self):
        ok = {"model": "fast", "messages": [
            {"role": "user", "content": "What is the weather?"},
            {"role": "assistant", "content": "Let me check.",
             "tool_calls": None},
            {"role": "user", "content": "Thanks"}]}
        status, _, body = self.gw.chat(ok)
        self.assertEqual(status, 200, body)
        bad = {"model": "fast", "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "call_2", "type": "function", "function": None}]}]}
        status, _, body = self.gw.chat(bad)
        self.assert_openai_error(status, body, 400, "invalid_value",
                                 "messages")

    def test_unknown_or_missing_key_is_401_and_never_echoed(self):
        secret = "sk-test-0000000000000000000000000000abcd"
        status, _, body = self.gw.chat(HELLO, key=secret)
        self.assert_openai_error(status, body, 401, "invalid_api_key")
        self.assertNotIn(secret.encode(), body)
        status, _, body = self.gw.chat(HELLO, key=None)
        self.assert_openai_error(status, body, 401, "invalid_api_key")
        self.assertEqual(self.sim.requests(), [])
        self.gw.stop()
        self.assertNotIn(secret, self.gw.log())
        with open(self.gw.ledger, "rb") as f:
            self.assertNotIn(secret.encode(), f.read())

    def test_unknown_model_is_404(self):
        status, _, body = self.gw.chat(dict(HELLO, model="gpt-9"))
        self.assert_openai_error(status, body, 404, "model_not_found",
                                 "model")

    def test_body_over_limit_is_413(self):
        big = dict(HELLO, messages=[{"role": "user", "content": "x" * 4096}])
        status, _, body = self.gw.chat(big)
        self.assert_openai_error(status, body, 413, "request_too_large")
        status, _, body = self.gw.chat(HELLO)
        self.assertEqual(status, 200, "the gateway kept serving")

    def test_unknown_path_and_wrong_method(self):
        status, _, body = harness.http("GET", self.gw.url + "/v1/nothing")
        self.assert_openai_error(status, body, 404, "unknown_url")
        status, _, body = harness.http(
            "GET", self.gw.url + "/v1/chat/completions", None,
            {"Authorization": "Bearer tg-key-alpha"})
        self.assert_openai_error(status, body, 405, "method_not_allowed")

    def test_provider_errors_pass_through_with_retry_after(self):
        for fault, want in (("429", 429), ("500", 500), ("503", 503)):
            body = {"model": "fast", "messages": [
                {"role": "user", "content": f"x sim:fault={fault}"}]}
            status, headers, resp = self.gw.chat(body)
            self.assertEqual(status, want, resp)
            self.assertIn("error", json.loads(resp))
            if fault == "429":
                self.assertEqual(headers["retry-after"], "7")
            self.gw.wait_written(1)
            row = self.gw.outcome(headers["x-tollgate-outcome"])
            self.assertEqual(row["http_status"], want)
            self.assertEqual(row["error_type"], f"upstream_{want}")

    def test_answer_over_max_response_bytes_is_502(self):
        body = {"model": "fast", "messages": [
            {"role": "user", "content": "long sim:words=2000"}]}
        status, headers, resp = self.gw.chat(body)
        self.assert_openai_error(status, resp, 502,
                                 "upstream_response_too_large")
        self.gw.wait_written(1)
        row = self.gw.outcome(headers["x-tollgate-outcome"])
        self.assert_estimated(row, "fast")

    def test_malformed_upstream_body_is_502(self):
        body = {"model": "fast", "messages": [
            {"role": "user", "content": "x sim:fault=malformed"}]}
        status, headers, resp = self.gw.chat(body)
        self.assert_openai_error(status, resp, 502,
                                 "upstream_malformed_response")
        self.assertEqual(headers["x-tollgate-cost-usd"], "unknown")
        self.gw.wait_written(1)
        row = self.gw.outcome(headers["x-tollgate-outcome"])
        self.assertEqual(row["cost_status"], "usage_missing")

    def test_upstream_timeout_is_504(self):
        body = {"model": "fast", "messages": [
            {"role": "user", "content": "x sim:fault=stall"}]}
        conn = self.gw.send_chat(body)
        wait_for(lambda: len(self.sim.requests()) == 1)
        self.gw.advance(30001)   # first_byte_timeout_ms is 30000
        resp = conn.getresponse()
        self.assert_openai_error(resp.status, resp.read(), 504,
                                 "upstream_timeout")
        # The provider had the request: what it billed is unknown, not $0.
        self.assertEqual(resp.getheader("x-tollgate-cost-usd"), "estimated")
        oid = resp.getheader("x-tollgate-outcome")
        conn.close()
        self.gw.wait_written(1)
        row = self.gw.outcome(oid)
        self.assert_estimated(row, "fast")
        self.assertIsNone(row["cost_pico"])
        (att,) = self.gw.attempts(oid)
        self.assertEqual(att["error_type"], "upstream_timeout")

    def test_members_read_twice_or_with_nul_are_refused(self):
        dup = (b'{"model":"nope","model":"fast","messages":'
               b'[{"role":"user","content":"hi"}]}')
        status, _, body = self.gw.chat(None, raw=dup)
        self.assert_openai_error(status, body, 400, "duplicate_key")
        dup = (b'{"model":"fast","stream":true,"stream":false,"messages":'
               b'[{"role":"user","content":"hi"}]}')
        status, _, body = self.gw.chat(None, raw=dup)
        self.assert_openai_error(status, body, 400, "duplicate_key")
        nul = (b'{"model":"gpt-4o\\u0000-else","messages":'
               b'[{"role":"user","content":"hi"}]}')
        status, _, body = self.gw.chat(None, raw=nul)
        self.assert_openai_error(status, body, 400, "invalid_value", "model")
        self.assertEqual(self.sim.requests(), [])

    def test_task_names_must_be_printable(self):
        body = dict(HELLO, metadata={"task": "x\nFAKE outcome key=admin"})
        status, headers, resp = self.gw.chat(body)
        self.assert_openai_error(status, resp, 400, "invalid_value", "task")
        self.gw.stop()
        self.assertNotIn("FAKE outcome", self.gw.log())

    def test_refusals_without_a_call_still_name_an_outcome(self):
        status, headers, _ = self.gw.chat(HELLO, key="sk-unknown")
        self.assertEqual(status, 401)
        self.assertRegex(headers["x-tollgate-outcome"], r"^out_[0-9a-f]{24}$")
        status, headers, _ = harness.http("GET", self.gw.url + "/nowhere")
        self.assertEqual(status, 404)
        self.assertIn("x-tollgate-outcome", headers)

    def test_head_health_has_no_body(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.gw.port,
                                          timeout=10)
        conn.request("HEAD", "/healthz")
        resp = conn.getresponse()
        self.assertEqual(resp.status, 200)
        self.assertEqual(resp.read(), b"")
        conn.request("GET", "/healthz")   # the connection is still usable
        self.assertEqual(conn.getresponse().status, 200)
        conn.close()


class TestUnreachable(unittest.TestCase):
    def test_unreachable_provider_is_502(self):
        port = harness.free_port()
        gw = Gateway(f"http://127.0.0.1:{port}/v1").start()
        try:
            status, headers, body = gw.chat(HELLO)
            self.assertEqual(status, 502, body)
            self.assertEqual(json.loads(body)["error"]["code"],
                             "upstream_unreachable")
            gw.wait_written(1)
            row = gw.outcome(headers["x-tollgate-outcome"])
            self.assertEqual(row["http_status"], 502)
            self.assertEqual(row["cost_status"], "none")
        finally:
            self.assertEqual(gw.stop(), 0)


class TestDrainAndLimits(GatewayCase):
    sim_args = ("--clock", "virtual", "--key", "sim-secret",
                "--default-latency", "5000,0")

    def test_sigterm_drains_in_flight_calls_then_exits(self):
        conn = self.gw.send_chat(HELLO)
        wait_for(lambda: len(self.sim.requests()) == 1)
        self.gw.begin_drain()
        status, _, body = self.gw.chat(HELLO)
        self.assertEqual(status, 503)
        self.assertEqual(json.loads(body)["error"]["code"], "shutting_down")
        self.sim.advance(5000)
        resp = conn.getresponse()
        self.assertEqual(resp.status, 200)
        oid = resp.getheader("x-tollgate-outcome")
        resp.read()
        conn.close()
        self.assertEqual(self.gw.proc.wait(timeout=20), 0)
        self.assertEqual(self.gw.outcome(oid)["http_status"], 200)

    def test_caller_hanging_up_stops_a_plain_call(self):
        sock = self.gw.raw_chat(HELLO)
        wait_for(lambda: len(self.sim.requests()) == 1)
        sock.close()
        # The gateway notices without any answer to write, stops the
        # provider call and records it; the provider sees the hang-up.
        self.gw.wait_written(1)
        (row,) = self.gw.rows("outcomes")
        self.assertEqual(row["http_status"], 499)
        self.assertEqual(row["error_type"], "client_disconnected")
        self.assert_estimated(row, "fast")
        wait_for(lambda: json.loads(harness.http(
            "GET", self.sim.url + "/_sim/stats")[2])["in_flight"] == 0)
        status, _, _ = harness.http("GET", self.gw.url + "/healthz")
        self.assertEqual(status, 200)

    def test_drain_deadline_cuts_and_records(self):
        conn = self.gw.send_chat(HELLO)
        wait_for(lambda: len(self.sim.requests()) == 1)
        self.gw.begin_drain()
        self.gw.advance(5001)    # drain_timeout_ms is 5000
        resp = conn.getresponse()
        self.assertEqual(resp.status, 503)
        oid = resp.getheader("x-tollgate-outcome")
        conn.close()
        self.assertEqual(self.gw.proc.wait(timeout=20), 0)
        row = self.gw.outcome(oid)
        self.assertEqual(row["error_type"], "shutting_down")
        self.assert_estimated(row, "fast")


class TestLedgerFull(GatewayCase):
    sim_args = ("--clock", "virtual", "--key", "sim-secret",
                "--default-latency", "5000,0")
    gateway_kw = {"extra": "ledger_queue: 1"}

    def test_full_queue_refuses_with_503_until_it_drains(self):
        conn = self.gw.send_chat(HELLO)
        wait_for(lambda: len(self.sim.requests()) == 1)
        status, headers, body = self.gw.chat(HELLO)
        self.assertEqual(status, 503, body)
        self.assertEqual(json.loads(body)["error"]["code"], "ledger_full")
        self.assertEqual(headers["retry-after"], "1")
        status, _, body = harness.http("GET", self.gw.url + "/healthz")
        self.assertEqual(status, 503)
        self.assertEqual(json.loads(body)["status"], "ledger_full")
        self.sim.advance(5000)
        self.assertEqual(conn.getresponse().status, 200)
        conn.close()
        self.gw.wait_written(1)
        conn = self.gw.send_chat(dict(
            HELLO, messages=[{"role": "user", "content": "again"}]))
        wait_for(lambda: len(self.sim.requests()) == 2)
        self.sim.advance(5000)
        self.assertEqual(conn.getresponse().status, 200)
        conn.close()


class TestCheckCommand(unittest.TestCase):
    def run_check(self, text):
        gw = Gateway("http://127.0.0.1:9/v1")
        with open(gw.config, "w") as f:
            f.write(text)
        return subprocess.run([BIN, "check", "--config", gw.config],
                              capture_output=True, text=True,
                              env=dict(os.environ, TG_E2E_SIM_KEY="x"))

    def test_check_names_the_line_of_each_error(self):
        out = self.run_check(
            "listen: 127.0.0.1:8080\n"
            "providers:\n"
            "  - name: p\n"
            "    kind: openai\n"
            "    base_url: ftp://x\n"
            "models:\n"
            "  - name: m\n"
            "    provider: nope\n"
            "    colour: blue\n")
        self.assertEqual(out.returncode, 1)
        self.assertIn(":3: base_url must start with http:// or https://",
                      out.stderr)
        self.assertIn(":7: model 'm' names provider 'nope'", out.stderr)
        self.assertIn(":9: unknown model key 'colour'", out.stderr)
        self.assertIn("has 3 errors", out.stderr)

    def test_check_refuses_names_given_twice(self):
        out = self.run_check(
            "providers:\n"
            "  - name: p\n"
            "    kind: openai\n"
            "    base_url: http://127.0.0.1:9\n"
            "  - name: p\n"
            "    kind: openai\n"
            "    base_url: http://127.0.0.1:1\n"
            "models:\n"
            "  - name: m\n"
            "    provider: p\n")
        self.assertEqual(out.returncode, 1)
        self.assertIn(":5: provider 'p' is configured twice (first at line 2)",
                      out.stderr)

    def test_check_lists_how_each_model_is_priced(self):
        gw = Gateway("http://127.0.0.1:9/v1")
        out = subprocess.run([BIN, "check", "--config", gw.config],
                             capture_output=True, text=True,
                             env=dict(os.environ, TG_E2E_SIM_KEY="x"))
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("model fast", out.stdout)
        self.assertRegex(out.stdout, r"model mystery +UNPRICED")
        self.assertIn("config ok", out.stdout)


if __name__ == "__main__":
    unittest.main()
