"""End-to-end tests of the dashboard: the admin logs in once and keeps a
signed session cookie; /dashboard serves the page; `tollgate report
--format html` writes one self-contained file that headless Chromium
(Debian's `chromium`) opens, screenshots into build/, and whose figures
must equal the JSON report's.

Needs the bundle (scripts/build-dashboard.sh, run here when missing) and
chromium; each missing piece prints a SKIP line."""
import html.parser
import json
import os
import shutil
import subprocess
import sys
import unittest

import harness
from gateway import BIN, Gateway

ADMIN_ENV = "TG_E2E_DASHBOARD_ADMIN"
ADMIN_KEY = "tg-admin-dashboard-secret"
BUNDLE = harness.ROOT / "build" / "dashboard" / "dashboard.js"
WINDOW = ["--since", "2025-12-31", "--until", "2026-01-02"]


def skip(case, why):
    message = "SKIP %s: %s" % (case.id(), why)
    print(message, file=sys.stderr)
    case.skipTest(message)


# Binaries outside the tree (TOLLGATE_BIN) find the bundle here too; the
# gateways the tests start inherit it.
os.environ.setdefault("TOLLGATE_DASHBOARD_DIR", str(BUNDLE.parent))


def ensure_bundle(case):
    if BUNDLE.exists():
        return
    out = subprocess.run([str(harness.ROOT / "scripts" /
                              "build-dashboard.sh")],
                         capture_output=True, text=True, timeout=300)
    if out.returncode != 0 or not BUNDLE.exists():
        skip(case, "%s missing and could not be built: %s"
             % (BUNDLE, out.stderr.strip()))


def chromium():
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    return None


class Figures(html.parser.HTMLParser):
    """Collects (data-figure, data-value, shown text) from a dumped DOM."""

    def __init__(self):
        super().__init__()
        self.figures = {}
        self._open = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "data-figure" in a:
            self._open = a["data-figure"]
            self.figures[self._open] = [a.get("data-value"), ""]

    def handle_data(self, data):
        if self._open:
            self.figures[self._open][1] += data

    def handle_endtag(self, tag):
        self._open = None


def trimmed(text):
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


class DashboardCase(unittest.TestCase):
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
        self.assertNotIn(ADMIN_KEY, log)

    def traffic(self):
        """Calls on two models and two keys, one judged not useful."""
        ids = []
        for i, (model, key) in enumerate([("fast", "tg-key-alpha"),
                                          ("fast", "tg-key-alpha"),
                                          ("gpt-4o", "tg-key-alpha"),
                                          ("fast", "tg-key-beta")]):
            body = {"model": model, "messages": [
                {"role": "user", "content": f"ask number {i}"}]}
            status, headers, data = self.gw.chat(body, key=key)
            self.assertEqual(status, 200, data)
            ids.append(headers["x-tollgate-outcome"])
        status, _, data = harness.http(
            "POST", f"{self.gw.url}/v1/outcomes/{ids[1]}/feedback",
            {"useful": False}, {"Authorization": "Bearer tg-key-alpha"})
        self.assertEqual(status, 200, data)
        self.gw.wait_written(len(ids))
        return ids

    def get(self, path, headers=None):
        return harness.http("GET", self.gw.url + path, None, headers or {})


class TestLogin(DashboardCase):
    def login(self, key):
        return harness.http(
            "POST", self.gw.url + "/dashboard/login",
            f"key={key}".encode(),
            {"Content-Type": "application/x-www-form-urlencoded"})

    def test_admin_logs_in_once_and_keeps_a_signed_cookie(self):
        ensure_bundle(self)
        self.traffic()
        status, headers, body = self.get("/dashboard")
        self.assertEqual(status, 200)
        self.assertIn(b'name="key"', body)
        self.assertNotIn(b"tollgate-data", body)

        status, _, body = self.login("not-the-key")
        self.assertEqual(status, 401)
        self.assertIn(b"not this gateway's admin key", body)

        status, headers, _ = self.login(ADMIN_KEY)
        self.assertEqual(status, 303)
        self.assertEqual(headers["location"], "/dashboard")
        cookie = headers["set-cookie"]
        self.assertRegex(cookie, r"^tollgate_session=\d+\.[0-9a-f]{64}; ")
        self.assertIn("HttpOnly", cookie)
        self.assertIn("SameSite=Strict", cookie)
        session = cookie.split(";", 1)[0]

        status, headers, body = self.get("/dashboard?since=2025-12-31",
                                         {"Cookie": session})
        self.assertEqual(status, 200, body)
        self.assertIn(b'<script type="application/json" id="tollgate-data">',
                      body)
        self.assertIn("frame-ancestors 'none'",
                      headers["content-security-policy"])
        status, _, body = self.get("/dashboard/data.json?since=2025-12-31",
                                   {"Cookie": session})
        self.assertEqual(status, 200)
        data = json.loads(body)
        self.assertEqual(data["report"]["total"]["outcomes"], 4)
        self.assertEqual(data["report"]["total"]["useful"], 3)
        self.assertEqual(data["budgets"], [])

        forged = session[:-1] + ("0" if session[-1] != "0" else "1")
        status, _, body = self.get("/dashboard", {"Cookie": forged})
        self.assertIn(b'name="key"', body)
        status, _, _ = self.get("/dashboard/data.json", {"Cookie": forged})
        self.assertEqual(status, 401)


class TestHtmlInChromium(DashboardCase):
    def report(self, *args):
        out = subprocess.run([BIN, "report", "--ledger", self.gw.ledger,
                              "--no-rollup"] + WINDOW + list(args),
                             capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)
        return out.stdout

    def test_page_figures_equal_the_json_report(self):
        ensure_bundle(self)
        browser = chromium()
        if browser is None:
            skip(self, "chromium missing (apt-get install chromium)")
        self.traffic()
        page = harness.ROOT / "build" / "e2e-dashboard.html"
        shot = harness.ROOT / "build" / "e2e-dashboard.png"
        self.report("--format", "html", "--out", str(page))
        report = json.loads(self.report("--format", "json", "--compare"))
        leaks = json.loads(self.report("--format", "json", "--leaks"))

        flags = ["--headless", "--no-sandbox", "--disable-gpu",
                 "--hide-scrollbars", "--window-size=1280,1900"]
        dom = subprocess.run([browser] + flags +
                             ["--dump-dom", page.as_uri()],
                             capture_output=True, text=True, timeout=120)
        self.assertEqual(dom.returncode, 0, dom.stderr[-2000:])
        subprocess.run([browser] + flags +
                       ["--screenshot=" + str(shot), page.as_uri()],
                       capture_output=True, timeout=120)
        self.assertTrue(shot.exists() and shot.stat().st_size > 10000)
        self.assertIn('data-ready="1"', dom.stdout)
        self.assertEqual(dom.stdout.count("<canvas"), 4, "four charts")

        parser = Figures()
        parser.feed(dom.stdout)
        figures = parser.figures
        self.assertEqual(figures["total.spend_usd"][0],
                         report["total"]["spend_usd"])
        self.assertEqual(figures["total.spend_usd"][1],
                         "$" + trimmed(report["total"]["spend_usd"]))
        self.assertEqual(figures["total.cost_per_useful_usd"][0],
                         report["total"]["cost_per_useful_usd"])
        self.assertEqual(figures["total.useful"][0],
                         str(report["total"]["useful"]))
        self.assertEqual(float(figures["total.rework_rate"][0]),
                         report["total"]["rework_rate"])
        for i, row in enumerate(report["rows"]):
            for field in ("spend_usd", "cost_per_useful_usd"):
                value, shown = figures[f"rows.{i}.{field}"]
                expect = row[field]
                self.assertEqual(value, "null" if expect is None else expect)
                self.assertEqual(shown, "n/a" if expect is None
                                 else "$" + trimmed(expect))
            self.assertEqual(figures[f"rows.{i}.outcomes"][0],
                             str(row["outcomes"]))
        for leak in leaks["leaks"]:
            self.assertEqual(figures["leaks." + leak["kind"]][0],
                             leak["amount_usd"])


if __name__ == "__main__":
    unittest.main()
