"""Faults found by breaking the gateway on purpose, each kept as a test:
a fallback from an OpenAI-kind model to an Anthropic one (the caller's
bytes are not NUL-terminated), output caps too large to bound, a NUL in
a task name, and a caller who leaves during a retry's backoff."""

import json
import os
import socket
import unittest

import harness
from gateway import Gateway, PRICES, wait_for

ADMIN_KEY = "tg-e2e-regression-admin"
os.environ["TG_E2E_REGRESSION_ADMIN"] = ADMIN_KEY


class Case(unittest.TestCase):
    def start(self, extra, models, providers):
        self.gw = Gateway(self.sim.url + "/v1", extra=extra, models=models,
                          providers=providers).start()
        return self.gw

    def setUp(self):
        self.sim = harness.Sim(["--clock", "virtual", "--key", "sim-secret"])
        self.gw = None

    def tearDown(self):
        log = ""
        if self.gw is not None:
            rc = self.gw.stop()
            log = self.gw.log()
            self.assertEqual(rc, 0, log)
        self.sim.stop()
        self.assertNotIn("ERROR: AddressSanitizer", log)
        self.assertNotIn("runtime error:", log)


SIM = {"name": "sim", "api_key_env": "TG_E2E_SIM_KEY"}


class TestFallbackToAnthropic(Case):
    def test_an_unreachable_model_falls_back_to_a_translated_one(self):
        providers = [
            {"name": "gone", "base_url": "http://127.0.0.1:9/v1"},
            dict(SIM, kind="anthropic", base_url=self.sim.url + "/v1"),
        ]
        models = [
            {"name": "cheap", "provider": "gone", "price": PRICES["cheap"]},
            {"name": "claude", "provider": "sim",
             "upstream": "claude-sonnet-4-5", "price": PRICES["premium"]},
        ]
        gw = self.start("tasks:\n  - name: t\n    route: [cheap]\n"
                        "    fallbacks: [claude]\n    retry: {max: 0}\n",
                        models, providers)
        body = {"model": "cheap", "messages": [
            {"role": "user", "content": "hello there"}]}
        status, headers, resp = gw.chat(body,
                                        headers={"X-Tollgate-Task": "t"})
        self.assertEqual(status, 200, resp)
        self.assertEqual(json.loads(resp)["object"], "chat.completion")
        gw.wait_written(1)
        oid = headers["x-tollgate-outcome"]
        attempts = gw.attempts(oid)
        self.assertEqual([(a["model"], a["reason"]) for a in attempts],
                         [("cheap", "first"), ("claude", "fallback")])
        self.assertEqual(attempts[0]["error_type"], "upstream_unreachable")
        self.assertEqual(gw.outcome(oid)["model"], "claude")
        self.assertEqual(headers["x-tollgate-model"], "claude")


class TestAnthropicMetadata(Case):
    def test_the_task_in_metadata_is_not_sent_to_anthropic(self):
        providers = [dict(SIM, kind="anthropic", base_url=self.sim.url + "/v1")]
        models = [{"name": "claude", "provider": "sim",
                   "upstream": "claude-sonnet-4-5", "price": PRICES["premium"]}]
        gw = self.start("", models, providers)
        body = {"model": "claude", "max_tokens": 50,
                "metadata": {"task": "notes", "user_id": "u-1"},
                "messages": [{"role": "user", "content": "hi"}]}
        status, headers, resp = gw.messages(body)
        self.assertEqual(status, 200, resp)
        sent = json.loads(self.sim.requests()[-1]["body"])
        self.assertEqual(sent["metadata"], {"user_id": "u-1"})
        gw.wait_written(1)
        self.assertEqual(gw.outcome(headers["x-tollgate-outcome"])["task"],
                         "notes")


class TestRequestLimits(Case):
    def test_output_caps_too_large_to_bound_are_refused(self):
        gw = self.start("", None, None)
        for n in (2**64, 2**63 - 1, 10**12):
            raw = ('{"model":"fast","max_tokens":%d,"messages":[{"role":'
                   '"user","content":"hi"}]}' % n).encode()
            status, _, resp = gw.chat(None, raw=raw)
            self.assertEqual(status, 400, resp)
            err = json.loads(resp)["error"]
            self.assertEqual(err["code"], "invalid_value")
            self.assertEqual(err["param"], "max_tokens")
        self.assertEqual(self.sim.requests(), [])

    def test_a_nul_in_the_task_name_is_refused(self):
        gw = self.start("", None, None)
        body = {"model": "fast", "metadata": {"task": "cheap\u0000x"},
                "messages": [{"role": "user", "content": "hi"}]}
        status, _, resp = gw.chat(body)
        self.assertEqual(status, 400, resp)
        self.assertEqual(json.loads(resp)["error"]["param"], "task")


class TestRestartKeepsUnknownCharges(Case):
    def spent(self, gw):
        status, _, data = harness.http(
            "GET", gw.url + "/admin/budgets", None,
            {"Authorization": "Bearer " + ADMIN_KEY})
        self.assertEqual(status, 200, data)
        (budget,) = json.loads(data)["data"]
        return budget["spent_pico"]

    def test_a_call_whose_cost_is_unknown_counts_the_same_after(self):
        gw = self.start(
            "admin_key_env: TG_E2E_REGRESSION_ADMIN\n"
            "budgets:\n  - {scope: key, name: alpha, period: day, "
            'limit_usd: "5"}\n', None, None)
        body = {"model": "fast", "max_tokens": 20, "messages": [
            {"role": "user", "content": "x sim:fault=malformed"}]}
        status, headers, _ = gw.chat(body)
        self.assertEqual(status, 502)
        gw.wait_written(1)
        (att,) = gw.attempts(headers["x-tollgate-outcome"])
        self.assertEqual(att["cost_status"], "usage_missing")
        self.assertGreater(att["budget_pico"], 0)
        self.assertEqual(self.spent(gw), att["budget_pico"])
        self.assertEqual(gw.stop(), 0)
        gw.start()
        self.assertEqual(self.spent(gw), att["budget_pico"])


class TestHangUpDuringBackoff(Case):
    def test_the_call_ends_at_once_and_releases_its_hold(self):
        gw = self.start(
            "admin_key_env: TG_E2E_REGRESSION_ADMIN\n"
            "budgets:\n  - {scope: key, name: alpha, period: day, "
            'limit_usd: "5"}\n'
            "tasks:\n  - name: t\n    route: [fast, gpt-4o]\n"
            "    retry: {max: 2, base_ms: 60000, max_ms: 60000}\n",
            None, None)
        body = json.dumps({"model": "fast", "messages": [
            {"role": "user", "content": "x sim:fault=500"}]}).encode()
        sock = socket.create_connection(("127.0.0.1", gw.port))
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\n"
                     b"Host: x\r\nAuthorization: Bearer tg-key-alpha\r\n"
                     b"X-Tollgate-Task: t\r\nContent-Type: application/json"
                     b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        wait_for(lambda: len(self.sim.requests()) == 1)
        sock.close()
        # Without moving the clock past the backoff, the call is recorded.
        gw.wait_written(1)
        (row,) = gw.rows("outcomes")
        self.assertEqual(row["http_status"], 499)
        self.assertEqual(row["n_attempts"], 1)
        self.assertEqual(len(self.sim.requests()), 1)
        status, _, data = harness.http(
            "GET", gw.url + "/admin/budgets", None,
            {"Authorization": "Bearer " + ADMIN_KEY})
        self.assertEqual(status, 200, data)
        self.assertIn('"held_pico":0', data.decode().replace(" ", ""))


if __name__ == "__main__":
    unittest.main()
