"""Context trimming through the gateway: the provider receives the
trimmed request, the ledger the exact tokens before and after and the
dollars saved, and a trim whose last turn refers to removed text is
flagged. Exact counts come from `tollgate tokens`, run on what the caller
sent and on what the provider received."""

import json
import subprocess
import unittest

import harness
from gateway import BIN, Gateway, pico

PRICE = {"input": "2.50", "output": "10.00"}

TASKS = """tasks:
  - name: chatty
    context: {keep_last_turns: 1}
  - name: budgeted
    context: {budget_tokens: 60}
"""


def count(body, model="gpt-4o"):
    """Exact chat tokens of a request, from the tokens command."""
    out = subprocess.run([BIN.replace("build/asan/", ""), "tokens", "--json",
                          "--model", model, "-"],
                         input=json.dumps(body), capture_output=True,
                         text=True, check=True).stdout
    return json.loads(out)


def turn(role, text):
    return {"role": role, "content": text}


HISTORY = [
    turn("system", "You answer questions about the Ventrakis project."),
    turn("user", "The Ventrakis launch moved to Lisbon in March."),
    turn("assistant", "Noted: the launch is now in Lisbon."),
    turn("user", "Also remember the budget owner is Marguerite."),
    turn("assistant", "Noted: Marguerite owns the budget."),
]


class TestContextTrimming(unittest.TestCase):
    def setUp(self):
        self.sim = harness.Sim(["--clock", "virtual", "--key", "sim-secret"])
        self.gw = Gateway(self.sim.url + "/v1", extra=TASKS, models=[
            {"name": "gpt-4o", "price": PRICE}]).start()
        probe = count({"model": "gpt-4o", "messages": [turn("user", "x")]})
        if not probe.get("exact"):
            self.skipTest("SKIP test_context: token rank files missing "
                          "(scripts/fetch-tokenizer-data.sh)")

    def tearDown(self):
        rc = self.gw.stop()
        log = self.gw.log()
        self.sim.stop()
        self.assertEqual(rc, 0, log)
        self.assertNotIn("ERROR: AddressSanitizer", log)
        self.assertNotIn("runtime error:", log)

    def send(self, task, last):
        body = {"model": "gpt-4o", "messages": HISTORY + [turn("user", last)]}
        status, headers, resp = self.gw.chat(
            body, headers={"X-Tollgate-Task": task})
        self.assertEqual(status, 200, resp)
        self.sent = getattr(self, "sent", 0) + 1
        self.gw.wait_written(self.sent)
        sent = json.loads(self.sim.requests()[-1]["body"])
        return body, sent, self.gw.outcome(headers["x-tollgate-outcome"])

    def test_keep_last_turn_sends_system_and_last_turn_only(self):
        body, sent, row = self.send("chatty", "What is two plus two?")
        self.assertEqual(sent["messages"],
                         [HISTORY[0], turn("user", "What is two plus two?")])
        before = count(body)["tokens"]
        after = count({"model": "gpt-4o",
                       "messages": sent["messages"]})["tokens"]
        self.assertLess(after, before)
        self.assertEqual(row["input_tokens_before_trim"], before)
        self.assertEqual(row["input_tokens_after_trim"], after)
        self.assertEqual(row["trim_saved_pico"],
                         pico(before - after, PRICE["input"]))
        self.assertEqual(row["trim_flagged"], 0)

    def test_a_last_turn_naming_removed_text_is_flagged(self):
        _, sent, row = self.send("chatty",
                                 "Does Marguerite approve of Lisbon?")
        self.assertEqual(len(sent["messages"]), 2)
        self.assertEqual(row["trim_flagged"], 1)

    def test_report_trims_gives_savings_and_flagged_share_per_task(self):
        _, _, flagged = self.send("chatty", "Does Marguerite approve?")
        _, _, plain = self.send("chatty", "What is two plus two?")
        out = subprocess.run(
            [BIN.replace("build/asan/", ""), "report", "--ledger",
             self.gw.ledger, "--trims", "--format", "json"],
            capture_output=True, text=True, check=True).stdout
        (task,) = json.loads(out)["trims"]
        self.assertEqual(task["task"], "chatty")
        self.assertEqual(task["trims"], 2)
        self.assertEqual(task["flagged"], 1)
        self.assertEqual(task["flagged_share"], "50.00")
        self.assertEqual(task["saved_pico"],
                         flagged["trim_saved_pico"] + plain["trim_saved_pico"])
        self.assertEqual(task["tokens_before"],
                         flagged["input_tokens_before_trim"] +
                         plain["input_tokens_before_trim"])

    def test_a_request_within_budget_is_sent_unchanged(self):
        body = {"model": "gpt-4o", "messages": [turn("user", "hi")]}
        status, headers, _ = self.gw.chat(
            body, headers={"X-Tollgate-Task": "budgeted"})
        self.assertEqual(status, 200)
        self.gw.wait_written(1)
        row = self.gw.outcome(headers["x-tollgate-outcome"])
        sent = json.loads(self.sim.requests()[-1]["body"])
        self.assertEqual(sent["messages"], body["messages"])
        tokens = count(body)["tokens"]
        self.assertEqual(row["input_tokens_before_trim"], tokens)
        self.assertEqual(row["input_tokens_after_trim"], tokens)
        self.assertEqual(row["trim_saved_pico"], 0)

    def test_budget_drops_oldest_turns_until_it_fits(self):
        body, sent, row = self.send("budgeted", "Summarise in one line.")
        after = count({"model": "gpt-4o",
                       "messages": sent["messages"]})["tokens"]
        self.assertLessEqual(after, 60)
        self.assertEqual(sent["messages"][0], HISTORY[0])
        self.assertEqual(sent["messages"][-1],
                         turn("user", "Summarise in one line."))
        self.assertEqual(row["input_tokens_after_trim"], after)
        self.assertEqual(row["input_tokens_before_trim"],
                         count(body)["tokens"])

    def test_a_task_without_a_policy_is_not_trimmed(self):
        body = {"model": "gpt-4o", "messages": HISTORY + [turn("user", "?")]}
        status, headers, _ = self.gw.chat(body)
        self.assertEqual(status, 200)
        self.gw.wait_written(1)
        row = self.gw.outcome(headers["x-tollgate-outcome"])
        sent = json.loads(self.sim.requests()[-1]["body"])
        self.assertEqual(sent["messages"], body["messages"])
        self.assertEqual(row["input_tokens_before_trim"], 0)
        self.assertEqual(row["trim_saved_pico"], 0)


if __name__ == "__main__":
    unittest.main()
