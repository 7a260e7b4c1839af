"""End-to-end tests of outcome quality: feedback on an outcome (the API and
the x-tollgate-feedback header), rework links, /metrics, and `tollgate
report` reading what the gateway wrote, with exact money.

Tests that need a hook inside the proxy (metrics_observe, the feedback
header, rework_observe) print a SKIP line when the running gateway does
not call it yet, instead of failing."""
import json
import os
import sqlite3
import subprocess
import sys
import unittest

import harness
from gateway import BIN, Gateway, PRICES, cost_of, usd, wait_for

ADMIN_ENV = "TG_E2E_OUTCOMES_ADMIN"
ADMIN_KEY = "tg-admin-outcomes-secret"
HELLO = {"model": "fast", "messages": [{"role": "user", "content": "hi"}]}


def half_even(num, den):
    q, r = divmod(num, den)
    if 2 * r > den or (2 * r == den and q % 2 == 1):
        q += 1
    return q


def skip_unwired(case, hook):
    message = "SKIP %s: %s is not called by the proxy yet" % (case.id(),
                                                              hook)
    print(message, file=sys.stderr)
    case.skipTest(message)


class OutcomesCase(unittest.TestCase):
    def setUp(self):
        os.environ[ADMIN_ENV] = ADMIN_KEY
        self.sim = harness.Sim(["--clock", "virtual", "--key",
                                "sim-secret"])
        self.gw = Gateway(self.sim.url + "/v1",
                          extra=f"admin_key_env: {ADMIN_ENV}\n").start()

    def tearDown(self):
        rc = self.gw.stop()
        log = self.gw.log()
        self.sim.stop()
        self.assertEqual(rc, 0, "gateway exit code; log:\n" + log)
        self.assertNotIn("ERROR: AddressSanitizer", log)
        self.assertNotIn("runtime error:", log)
        self.assertNotIn(ADMIN_KEY, log)

    def call(self, body=HELLO, key="tg-key-alpha", headers=None):
        status, hdrs, data = self.gw.chat(body, key=key, headers=headers)
        self.assertEqual(status, 200, data)
        usage = json.loads(data)["usage"]
        return hdrs["x-tollgate-outcome"], cost_of(usage, PRICES["cheap"])

    def feedback(self, oid, body, key="tg-key-alpha"):
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        status, _, data = harness.http(
            "POST", f"{self.gw.url}/v1/outcomes/{oid}/feedback", body,
            headers)
        return status, json.loads(data) if data else None

    def report(self, *args):
        out = subprocess.run([BIN, "report", "--ledger", self.gw.ledger,
                              "--format", "json", "--no-rollup"] +
                             list(args), capture_output=True, text=True,
                             timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)
        return json.loads(out.stdout)

    def links(self, table):
        """Rows of a table the gateway makes on first use; [] before."""
        try:
            return self.gw.rows(table)
        except sqlite3.OperationalError:
            return []

    def metrics(self, key=ADMIN_KEY):
        return harness.http("GET", self.gw.url + "/metrics", None,
                            {"Authorization": f"Bearer {key}"})


class TestFeedback(OutcomesCase):
    def test_negative_feedback_makes_an_outcome_not_useful(self):
        first, cost1 = self.call()
        second, cost2 = self.call()
        third, cost3 = self.call()
        status, body = self.feedback(second, {"useful": False, "score": 0.2,
                                              "note": "wrong field"})
        self.assertEqual(status, 200, body)
        self.assertEqual(body, {"object": "outcome.feedback",
                                "outcome_id": second, "useful": False,
                                "score": 0.2, "note": "wrong field"})
        status, _ = self.feedback(third, {"useful": True})
        self.assertEqual(status, 200)

        rows = self.gw.rows("feedback", "1=1 ORDER BY rowid")
        self.assertEqual([(r["outcome_id"], r["useful"], r["score"],
                           r["note"], r["key_id"], r["source"])
                          for r in rows],
                         [(second, 0, 0.2, "wrong field", "alpha", "api"),
                          (third, 1, None, "", "alpha", "api")])

        total = self.report()["total"]
        spend = cost1 + cost2 + cost3
        self.assertEqual(total["outcomes"], 3)
        self.assertEqual(total["spend_pico"], spend)
        self.assertEqual(total["checks_passed"], 3)
        self.assertEqual(total["useful"], 2)
        self.assertEqual(total["feedback"], 2)
        self.assertEqual(total["feedback_negative"], 1)
        self.assertEqual(total["feedback_rate"], 0.6667)
        self.assertEqual(total["cost_per_useful_pico"],
                         half_even(spend, 2))
        self.assertEqual(total["cost_per_useful_usd"],
                         usd(half_even(spend, 2)))

    def test_only_the_owner_or_the_admin_may_judge_an_outcome(self):
        oid, _ = self.call()
        status, body = self.feedback(oid, {"useful": False},
                                     key="tg-key-beta")
        self.assertEqual(status, 403, body)
        self.assertEqual(body["error"]["code"], "not_outcome_owner")
        status, body = self.feedback(oid, {"useful": False}, key=None)
        self.assertEqual(status, 401, body)
        status, body = self.feedback(oid, {"useful": False}, key=ADMIN_KEY)
        self.assertEqual(status, 200, body)
        (row,) = self.gw.rows("feedback")
        self.assertEqual(row["key_id"], "admin")

    def test_bad_feedback_is_refused_with_a_reason(self):
        oid, _ = self.call()
        status, body = self.feedback(oid, {"score": 1})
        self.assertEqual(status, 400)
        self.assertIn("useful is required", body["error"]["message"])
        status, body = self.feedback(oid, {"useful": "no"})
        self.assertEqual(status, 400)
        status, body = self.feedback(oid, {"useful": True, "colour": 1})
        self.assertIn("unknown field 'colour'", body["error"]["message"])
        status, body = self.feedback("out_" + "0" * 24, {"useful": True})
        self.assertEqual(status, 404)
        self.assertEqual(body["error"]["code"], "outcome_not_found")
        status, body = self.feedback("nope", {"useful": True})
        self.assertEqual(status, 400)
        self.assertEqual(self.links("feedback"), [])

    def test_feedback_header_on_a_later_call(self):
        oid, _ = self.call()
        self.call(headers={"x-tollgate-feedback": f"{oid}; useful=false; "
                                                  "score=0.25"})
        try:
            wait_for(lambda: self.links("feedback"), timeout=3)
        except AssertionError:
            skip_unwired(self, "feedback_from_header/feedback_submit")
        (row,) = self.gw.rows("feedback")
        self.assertEqual((row["outcome_id"], row["useful"], row["score"],
                          row["source"]), (oid, 0, 0.25, "header"))


class TestRework(OutcomesCase):
    def test_the_same_ask_again_is_linked_to_the_first(self):
        ask = {"model": "fast", "messages": [
            {"role": "user", "content": "Summarise the ticket."}]}
        again = {"model": "fast", "messages": [
            {"role": "user", "content": "  summarise the   TICKET"}]}
        first, _ = self.call(ask)
        second, cost = self.call(again)
        self.call(again, key="tg-key-beta")  # another key: not rework
        try:
            wait_for(lambda: self.links("rework"), timeout=3)
        except AssertionError:
            skip_unwired(self, "rework_key/rework_observe")
        (row,) = self.gw.rows("rework")
        self.assertEqual((row["outcome_id"], row["earlier_id"]),
                         (second, first))
        total = self.report()["total"]
        self.assertEqual(total["repeats"], 1)
        self.assertEqual(total["rework_rate"], 0.3333)


class TestMetrics(OutcomesCase):
    def test_metrics_need_the_admin_key(self):
        status, _, _ = self.metrics(key="tg-key-alpha")
        self.assertEqual(status, 401)
        status, headers, body = self.metrics()
        self.assertEqual(status, 200)
        self.assertTrue(headers["content-type"].startswith("text/plain"))
        text = body.decode()
        self.assertIn("# TYPE tollgate_ledger_queue_depth gauge\n", text)
        self.assertIn("\ntollgate_ledger_lag_seconds 0.000\n", text)
        self.assertIn("\ntollgate_calls_in_flight 0\n", text)

    def test_calls_and_exact_spend_by_task_model_team(self):
        _, cost1 = self.call()
        _, cost2 = self.call()
        self.gw.wait_written(2)
        text = self.metrics()[2].decode()
        labels = '{task="triage",model="fast",team="support"}'
        if "tollgate_calls_total" + labels not in text:
            skip_unwired(self, "metrics_observe")
        self.assertIn(f"tollgate_calls_total{labels} 2\n", text)
        self.assertIn(f"tollgate_spend_usd_total{labels} "
                      f"{usd(cost1 + cost2)}\n", text)
        self.assertIn('tollgate_call_duration_seconds_count' + labels +
                      ' 2\n', text)
        self.assertIn('tollgate_upstream_attempts_total{provider="sim"} 2\n',
                      text)
        self.assertIn('tollgate_upstream_errors_total{provider="sim"} 0\n',
                      text)
        self.assertIn("\ntollgate_ledger_written_total 2\n", text)


class TestReportThroughGateway(OutcomesCase):
    def test_report_by_task_model_has_exact_cost_per_useful(self):
        asks = [{"model": "fast", "messages": [
            {"role": "user", "content": f"question {i}"}]} for i in range(3)]
        costs = [self.call(ask)[1] for ask in asks]
        beta = self.call(key="tg-key-beta")[1]
        self.gw.wait_written(4)
        report = self.report()
        rows = {(r["task"], r["model"]): r for r in report["rows"]}
        triage = rows[("triage", "fast")]
        self.assertEqual(triage["outcomes"], 3)
        self.assertEqual(triage["spend_pico"], sum(costs))
        self.assertEqual(triage["cost_per_useful_pico"],
                         half_even(sum(costs), 3))
        self.assertEqual(triage["check_pass_rate"], 1.0)
        self.assertEqual(triage["rework_rate"], 0.0)
        self.assertEqual(triage["retry_spend_usd"], "0.000000000000")
        self.assertEqual(rows[("default", "fast")]["spend_pico"], beta)
        self.assertEqual(report["total"]["spend_pico"], sum(costs) + beta)

        leaks = self.report("--leaks")["leaks"]
        self.assertEqual([l["kind"] for l in leaks],
                         ["routing", "context", "retries", "volume"])
        for leak in leaks:
            self.assertRegex(leak["amount_usd"], r"^\d+\.\d{12}$")
            self.assertTrue(leak["change"] and leak["method"])


if __name__ == "__main__":
    unittest.main()
