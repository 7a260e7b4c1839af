"""End-to-end tests of operating the gateway: the admin API (keys,
budgets, approvals) behind the admin key, the `tollgate keys` and
`tollgate approve` commands on the same ledger file while the gateway
runs, and run-time keys calling the gateway: made, revoked, rotated and
expired, with no secret ever written to the gateway's log."""
import json
import os
import sqlite3
import subprocess
import unittest

import harness
from gateway import BIN, Gateway, wait_for

ADMIN_ENV = "TG_E2E_ADMIN_KEY"
ADMIN_KEY = "tg-admin-e2e-0000000000000000abcd"
HELLO = {"model": "fast", "messages": [{"role": "user", "content": "hi"}]}
DAY_MS = 86_400_000

BUDGETS = """
budget_timezone: Europe/Berlin
budgets:
  - scope: key
    name: alpha
    period: month
    limit_usd: "1.00"
    soft_usd: "0.80"
  - scope: global
    period: total
    limit_usd: "250.5"
"""


class AdminCase(unittest.TestCase):
    extra = f"admin_key_env: {ADMIN_ENV}\n"

    def setUp(self):
        os.environ[ADMIN_ENV] = ADMIN_KEY
        self.sim = harness.Sim(["--clock", "virtual", "--key",
                                "sim-secret"])
        self.gw = Gateway(self.sim.url + "/v1", extra=self.extra).start()
        self.secrets = []

    def tearDown(self):
        rc = self.gw.stop()
        log = self.gw.log()
        self.sim.stop()
        self.assertEqual(rc, 0, "gateway exit code; log:\n" + log)
        self.assertNotIn("ERROR: AddressSanitizer", log)
        self.assertNotIn("runtime error:", log)
        for secret in self.secrets + [ADMIN_KEY]:
            self.assertNotIn(secret, log, "a secret reached the log")

    # -------------------------------------------------------- helpers

    def admin(self, method, path, body=None, key=ADMIN_KEY):
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        status, _, data = harness.http(method, self.gw.url + path, body,
                                       headers)
        return status, json.loads(data) if data else None

    def create_key(self, **fields):
        status, key = self.admin("POST", "/admin/keys", fields)
        self.assertEqual(status, 201, key)
        self.secrets.append(key["secret"])
        return key

    def cli(self, *args):
        env = dict(os.environ, TG_E2E_SIM_KEY="sim-secret",
                   ASAN_OPTIONS="detect_leaks=1:abort_on_error=0")
        return subprocess.run([BIN, *args, "--config", self.gw.config],
                              capture_output=True, text=True, env=env,
                              timeout=30)

    def call(self, secret):
        status, headers, body = self.gw.chat(HELLO, key=secret)
        return status, headers, json.loads(body)

    def assert_refused(self, secret, words):
        status, _, body = self.call(secret)
        self.assertEqual(status, 401, body)
        self.assertEqual(body["error"]["code"], "invalid_api_key")
        self.assertIn(words, body["error"]["message"])
        self.assertNotIn(secret, json.dumps(body))

    def ledger_key(self, headers):
        self.gw.wait_written(1)
        return self.gw.outcome(headers["x-tollgate-outcome"])

    def add_pending(self, key="alpha", task="triage", tier="premium"):
        """A held call, written as the proxy's approval rule writes one
        (the admin API made the table)."""
        self.assertEqual(self.admin("GET", "/admin/approvals")[0], 200)
        self.n_pending = getattr(self, "n_pending", 0) + 1
        approval_id = "apr_%024x" % self.n_pending
        db = sqlite3.connect(self.gw.ledger)
        with db:
            db.execute("INSERT INTO approvals (id, key_id, task, tier,"
                       " model, estimate_pico, reason, created_ms)"
                       " VALUES (?, ?, ?, ?, 'gpt-4o', 620000000000,"
                       " 'estimated cost over $0.50', 1767225600000)",
                       (approval_id, key, task, tier))
        db.close()
        return approval_id


class TestAdminAuth(AdminCase):
    def test_admin_api_refuses_without_the_admin_key(self):
        for key in (None, "wrong-admin-key", "tg-key-alpha"):
            for method, path in (("GET", "/admin/keys"),
                                 ("POST", "/admin/keys"),
                                 ("GET", "/admin/budgets"),
                                 ("GET", "/admin/approvals")):
                status, body = self.admin(method, path, {"name": "x"}, key)
                self.assertEqual(status, 401, (key, path))
                self.assertEqual(set(body["error"]),
                                 {"message", "type", "param", "code"})
                self.assertEqual(body["error"]["code"], "invalid_api_key")
                if key:
                    self.assertNotIn(key, json.dumps(body))
        self.assertEqual(self.admin("GET", "/admin/keys")[0], 200)

    def test_unknown_admin_paths_and_methods(self):
        self.assertEqual(self.admin("GET", "/admin/nothing")[0], 404)
        self.assertEqual(self.admin("GET", "/admin/keys/x/y/z")[0], 404)
        self.assertEqual(self.admin("POST", "/admin/keys/x/delete")[0], 404)
        self.assertEqual(self.admin("DELETE", "/admin/keys")[0], 405)
        self.assertEqual(self.admin("POST", "/admin/budgets")[0], 405)
        status, body = self.admin("POST", "/admin/keys", {})
        self.assertEqual(status, 400, body)  # no name


class TestAdminOff(AdminCase):
    extra = ""

    def test_admin_api_is_off_without_an_admin_key(self):
        status, body = self.admin("GET", "/admin/keys")
        self.assertEqual(status, 401)
        self.assertIn("no admin key", body["error"]["message"])


class TestRunTimeKeys(AdminCase):
    def test_key_made_by_the_api_calls_and_is_named_in_the_ledger(self):
        key = self.create_key(name="carol", team="research",
                              owner="carol@example.com", task="summaries")
        self.assertRegex(key["secret"], r"^sk-tg-[0-9a-f]{64}$")
        self.assertRegex(key["id"], r"^key_[0-9a-f]{16}$")
        self.assertEqual(key["status"], "active")

        status, headers, body = self.call(key["secret"])
        self.assertEqual(status, 200, body)
        row = self.ledger_key(headers)
        self.assertEqual((row["key_id"], row["team"], row["owner"],
                          row["task"]),
                         ("carol", "research", "carol@example.com",
                          "summaries"))

        status, listed = self.admin("GET", "/admin/keys")
        self.assertEqual(status, 200)
        self.assertEqual([k["name"] for k in listed["data"]], ["carol"])
        text = json.dumps(listed)
        self.assertNotIn(key["secret"], text)
        self.assertNotIn("secret", text)
        self.assertNotIn("sha256", text)

    def test_key_names_must_be_new_and_valid(self):
        self.create_key(name="dup")
        for fields, status in (({"name": "dup"}, 409),
                               ({"name": "alpha"}, 409),  # config key
                               ({"name": "bad name"}, 400),
                               ({"name": 7}, 400),
                               ({"name": "x", "expires": "soon"}, 400),
                               ({"name": "x", "expires": "2025-12-31"},
                                400)):
            got, body = self.admin("POST", "/admin/keys", fields)
            self.assertEqual(got, status, (fields, body))

    def test_revoked_key_is_refused(self):
        key = self.create_key(name="erin")
        self.assertEqual(self.call(key["secret"])[0], 200)
        status, body = self.admin("POST", f"/admin/keys/{key['id']}/revoke")
        self.assertEqual(status, 200, body)
        self.assertEqual(body["status"], "revoked")
        self.assertNotIn("secret", body)
        self.assert_refused(key["secret"], "revoked")
        status, _ = self.admin("POST", "/admin/keys/erin/revoke")
        self.assertEqual(status, 409)
        status, _ = self.admin("POST", "/admin/keys/nobody/revoke")
        self.assertEqual(status, 404)

    def test_rotated_key_old_secret_refused_new_one_works(self):
        key = self.create_key(name="frank", team="ops")
        status, rotated = self.admin("POST", "/admin/keys/frank/rotate")
        self.assertEqual(status, 200, rotated)
        self.secrets.append(rotated["secret"])
        self.assertEqual(rotated["id"], key["id"])
        self.assertNotEqual(rotated["secret"], key["secret"])

        self.assert_refused(key["secret"], "not known")
        status, headers, body = self.call(rotated["secret"])
        self.assertEqual(status, 200, body)
        self.assertEqual(self.ledger_key(headers)["key_id"], "frank")

    def test_expired_key_is_refused_on_the_gateway_clock(self):
        # The test clock starts at 2026-01-01T00:00Z.
        key = self.create_key(name="gina", expires="2026-01-02")
        self.assertEqual(key["expires"], "2026-01-02T00:00:00+00:00")
        self.assertEqual(self.call(key["secret"])[0], 200)
        self.gw.advance(DAY_MS - 1)
        self.assertEqual(self.call(key["secret"])[0], 200)
        self.gw.advance(1)
        self.assert_refused(key["secret"], "expired")
        listed = self.admin("GET", "/admin/keys")[1]["data"]
        self.assertEqual(listed[0]["status"], "expired")
        status, _ = self.admin("POST", "/admin/keys/gina/rotate")
        self.assertEqual(status, 409)

    def test_key_made_by_the_cli_works_on_its_next_call(self):
        # An unknown key first: the reload it causes must not hide the
        # new key for long.
        self.assert_refused("sk-tg-" + "0" * 64, "not known")
        self.gw.advance(1000)

        made = self.cli("keys", "create", "--name", "dave", "--team", "ops",
                        "--task", "nightly", "--json")
        self.assertEqual(made.returncode, 0, made.stderr)
        key = json.loads(made.stdout)
        self.secrets.append(key["secret"])
        self.assertIn("shown only now", made.stderr)

        status, headers, body = self.call(key["secret"])
        self.assertEqual(status, 200, body)
        row = self.ledger_key(headers)
        self.assertEqual((row["key_id"], row["team"], row["task"]),
                         ("dave", "ops", "nightly"))

        listed = self.cli("keys", "list")
        self.assertEqual(listed.returncode, 0, listed.stderr)
        self.assertIn("dave", listed.stdout)
        self.assertNotIn(key["secret"], listed.stdout)

        # A revocation by the CLI reaches the gateway's next refresh.
        revoked = self.cli("keys", "revoke", "dave")
        self.assertEqual(revoked.returncode, 0, revoked.stderr)
        self.gw.advance(10_000)
        wait_for(lambda: self.call(key["secret"])[0] == 401)
        self.assert_refused(key["secret"], "revoked")

    def test_cli_rotate_prints_a_new_secret_once(self):
        made = self.cli("keys", "create", "--name", "hank")
        self.assertEqual(made.returncode, 0, made.stderr)
        old = made.stdout.split("secret: ")[1].split()[0]
        rotated = self.cli("keys", "rotate", "hank")
        self.assertEqual(rotated.returncode, 0, rotated.stderr)
        new = rotated.stdout.split("secret: ")[1].split()[0]
        self.secrets += [old, new]
        self.assertNotEqual(old, new)
        self.assertEqual(self.call(new)[0], 200)
        self.assertEqual(self.call(old)[0], 401)

        self.assertEqual(self.cli("keys", "create", "--name",
                                  "alpha").returncode, 1)
        self.assertEqual(self.cli("keys", "revoke", "nobody").returncode, 1)
        self.assertEqual(self.cli("keys", "create").returncode, 2)

    def test_config_keys_keep_working(self):
        self.create_key(name="ivan")
        status, headers, _ = self.call("tg-key-alpha")
        self.assertEqual(status, 200)
        self.assertEqual(self.ledger_key(headers)["key_id"], "alpha")


class TestBudgets(AdminCase):
    extra = AdminCase.extra + BUDGETS

    def test_budgets_list_every_budget_exactly(self):
        status, body = self.admin("GET", "/admin/budgets")
        self.assertEqual(status, 200, body)
        self.assertEqual(body["timezone"], "Europe/Berlin")
        by_scope = {b["scope"]: b for b in body["data"]}
        key = by_scope["key"]
        self.assertEqual(key["name"], "alpha")
        self.assertEqual(key["period"], "month")
        self.assertEqual(key["spent_usd"], "0.000000000000")
        self.assertEqual(key["spent_pico"], 0)
        self.assertEqual(key["held_pico"], 0)
        self.assertEqual(key["limit_usd"], "1.000000000000")
        self.assertEqual(key["limit_pico"], 10**12)
        self.assertEqual(key["soft_usd"], "0.800000000000")
        self.assertEqual(key["soft_pico"], 8 * 10**11)
        self.assertEqual(key["period_start"], "2026-01-01T00:00:00+01:00")
        self.assertEqual(key["resets_at"], "2026-02-01T00:00:00+01:00")
        glob = by_scope["global"]
        self.assertIsNone(glob["name"])
        self.assertEqual(glob["limit_usd"], "250.500000000000")
        self.assertIsNone(glob["soft_usd"])
        self.assertIsNone(glob["resets_at"])


class TestApprovals(AdminCase):
    def test_approvals_listed_and_decided_through_the_api(self):
        once, deny, standing = (self.add_pending(),
                                self.add_pending(key="beta"),
                                self.add_pending(task="contracts"))
        status, body = self.admin("GET", "/admin/approvals?status=pending")
        self.assertEqual(status, 200, body)
        self.assertEqual({a["id"] for a in body["data"]},
                         {once, deny, standing})
        first = [a for a in body["data"] if a["id"] == once][0]
        self.assertEqual(first["estimate_usd"], "0.620000000000")
        self.assertEqual(first["reason"], "estimated cost over $0.50")

        path = f"/admin/approvals/{once}/approve"
        self.assertEqual(self.admin("POST", path, {})[0], 400)  # no by
        status, body = self.admin("POST", path, {"by": "ops-lead"})
        self.assertEqual(status, 200, body)
        self.assertEqual((body["status"], body["decided_by"]),
                         ("once", "ops-lead"))
        status, body = self.admin("POST", path, {"by": "someone"})
        self.assertEqual(status, 409)
        self.assertIn("once by ops-lead", body["error"]["message"])

        status, body = self.admin("POST", f"/admin/approvals/{deny}/deny",
                                  {"by": "cfo", "note": "too dear"})
        self.assertEqual((status, body["status"], body["decided_by"]),
                         (200, "denied", "cfo"))

        path = f"/admin/approvals/{standing}/approve"
        self.assertEqual(self.admin("POST", path, {
            "by": "cfo", "standing": True})[0], 400)  # no until
        status, body = self.admin("POST", path, {
            "by": "cfo", "standing": True, "until": "2026-02-01"})
        self.assertEqual(status, 200, body)
        self.assertEqual((body["status"], body["until"]),
                         ("standing", "2026-02-01T00:00:00+00:00"))

        self.assertEqual(self.admin("GET", "/admin/approvals?status=pending")
                         [1]["data"], [])
        status, body = self.admin("GET", "/admin/approvals")
        self.assertEqual(len(body["data"]), 3)
        self.assertEqual(self.admin("GET", "/admin/approvals?status=x")[0],
                         400)
        self.assertEqual(self.admin("POST", "/admin/approvals/apr_0/deny",
                                    {"by": "x"})[0], 404)
        rows = {r["id"]: r for r in self.gw.rows("approvals")}
        self.assertEqual(rows[once]["decided_by"], "ops-lead")
        self.assertEqual(rows[deny]["decision"], "denied")

    def test_approvals_listed_and_decided_by_the_cli(self):
        once, deny, standing = (self.add_pending(),
                                self.add_pending(key="beta"),
                                self.add_pending(task="contracts"))
        listed = self.cli("approve", "--list", "--pending")
        self.assertEqual(listed.returncode, 0, listed.stderr)
        for approval_id in (once, deny, standing):
            self.assertIn(approval_id, listed.stdout)
        self.assertIn("0.620000000000", listed.stdout)

        no_by = self.cli("approve", once)
        self.assertEqual(no_by.returncode, 2)
        self.assertIn("--by", no_by.stderr)

        done = self.cli("approve", once, "--by", "ops-lead")
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertIn("once by ops-lead", done.stdout)
        again = self.cli("approve", once, "--by", "ops-lead")
        self.assertEqual(again.returncode, 1)
        self.assertIn("decided before", again.stderr)

        denied = self.cli("approve", deny, "--by", "cfo", "--deny",
                          "--note", "too dear")
        self.assertEqual(denied.returncode, 0, denied.stderr)
        granted = self.cli("approve", standing, "--by", "cfo", "--standing",
                           "--until", "2099-01-01")
        self.assertEqual(granted.returncode, 0, granted.stderr)
        self.assertIn("until 2099-01-01", granted.stdout)

        final = self.cli("approvals", "list", "--json")
        self.assertEqual(final.returncode, 0, final.stderr)
        state = {a["id"]: (a["status"], a["decided_by"])
                 for a in json.loads(final.stdout)}
        self.assertEqual(state, {once: ("once", "ops-lead"),
                                 deny: ("denied", "cfo"),
                                 standing: ("standing", "cfo")})
        # The running gateway sees the CLI's decisions.
        status, body = self.admin("GET", "/admin/approvals?status=standing")
        self.assertEqual([a["id"] for a in body["data"]], [standing])


if __name__ == "__main__":
    unittest.main()
