"""Starts the real gateway binary for end-to-end tests: writes a config,
runs `tollgate serve`, and reads the ledger it wrote."""
import hashlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import tempfile
import time

import harness

BIN = os.environ.get("TOLLGATE_BIN",
                     os.path.join(harness.ROOT, "build", "asan", "tollgate"))

KEYS = {
    # secret: (name, team, owner, default task)
    "tg-key-alpha": ("alpha", "support", "alice@example.com", "triage"),
    "tg-key-beta": ("beta", "legal", "bob@example.com", None),
}

# USD per million tokens, as the config writes them.
PRICES = {
    "cheap": {"input": "0.15", "cached_input": "0.075", "output": "0.60"},
    "premium": {"input": "2.50", "cached_input": "1.25", "output": "10.00"},
}


def pico(tokens, usd_per_million):
    """Exact picodollars for tokens at a price given as decimal text."""
    whole, _, frac = usd_per_million.partition(".")
    frac = (frac + "000000")[:6]
    per_token = int(whole) * 10**6 + int(frac)  # pico per token
    return tokens * per_token


def usd(pico_amount):
    return "%d.%012d" % divmod(pico_amount, 10**12)


def cost_of(usage, price):
    """Cost of one OpenAI usage object at a config price, in pico."""
    cached = ((usage.get("prompt_tokens_details") or {})
              .get("cached_tokens") or 0)
    return (pico(usage["prompt_tokens"] - cached, price["input"]) +
            pico(cached, price.get("cached_input", price["input"])) +
            pico(usage["completion_tokens"], price["output"]))


def wait_for(condition, timeout=10):
    """Polls a condition the system under test must reach (not a timer:
    the tests move clocks themselves)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.005)
    raise AssertionError("condition not reached in %d s" % timeout)


def default_models(sim_url):
    return [
        {"name": "fast", "upstream": "gpt-4o-mini", "price": PRICES["cheap"]},
        {"name": "gpt-4o", "price": PRICES["premium"]},
        {"name": "mystery", "upstream": "zeta-9"},
    ]


class Gateway:
    """The gateway binary with a config written from Python values.

    providers: dicts with name, base_url and optionally kind (default
    openai-compatible), api_key_env, api_version. models: dicts with name
    and optionally provider (default "sim"), upstream, tier, price_entry,
    max_tokens and price (a dict of price keys to USD-per-million text,
    written as given). aliases: {name: target} price aliases. prices:
    paths of price files (LiteLLM or genai-prices JSON).
    """

    def __init__(self, sim_url, models=None, extra="", test_clock=True,
                 providers=None, keys=KEYS, binary=None, aliases=None,
                 prices=None):
        self.binary = binary or BIN
        self.dir = tempfile.mkdtemp(prefix="tg-e2e-")
        self.ledger = os.path.join(self.dir, "ledger.db")
        self.config = os.path.join(self.dir, "tollgate.yaml")
        self.test_clock = test_clock
        models = models if models is not None else default_models(sim_url)
        providers = providers or [{"name": "sim", "base_url": sim_url,
                                   "api_key_env": "TG_E2E_SIM_KEY"}]
        with open(self.config, "w") as f:
            f.write(self._yaml(providers, models, keys, extra, aliases,
                               prices))
        self.proc = None
        self.port = None
        self.stderr_path = os.path.join(self.dir, "stderr.log")

    @staticmethod
    def _provider_yaml(p):
        out = [f"  - name: {p['name']}",
               f"    kind: {p.get('kind', 'openai-compatible')}",
               f"    base_url: {p['base_url']}"]
        if p.get("api_key_env"):
            out.append(f"    api_key_env: {p['api_key_env']}")
        if p.get("api_version"):
            out.append(f'    api_version: "{p["api_version"]}"')
        return out

    @staticmethod
    def _model_yaml(m):
        out = [f"  - name: {m['name']}",
               f"    provider: {m.get('provider', 'sim')}",
               f"    upstream: {m.get('upstream', m['name'])}",
               f"    tier: {m.get('tier', 1)}"]
        if "price_entry" in m:
            out.append(f"    price_entry: {m['price_entry']}")
        if "max_tokens" in m:
            out.append(f"    max_tokens: {m['max_tokens']}")
        if "price" in m:
            out.append("    price:")
            out += [f'      {k}: "{v}"' for k, v in m["price"].items()]
        return out

    @staticmethod
    def _keys_yaml(keys):
        out = ["keys:"]
        for secret, (name, team, owner, task) in keys.items():
            digest = hashlib.sha256(secret.encode()).hexdigest()
            out += [f"  - name: {name}", f"    sha256: {digest}",
                    f"    team: {team}", f"    owner: {owner}"]
            if task:
                out.append(f"    default_task: {task}")
        return out

    @staticmethod
    def _yaml(providers, models, keys, extra, aliases=None, prices=None):
        out = ["listen: 127.0.0.1:0", "ledger: ledger.db", "log_level: info",
               "first_byte_timeout_ms: 30000", "total_timeout_ms: 60000",
               "drain_timeout_ms: 5000"]
        out += [line for line in extra.splitlines() if line.strip()]
        if prices:
            out.append("prices:")
            out += [f"  - {path}" for path in prices]
        if aliases:
            out.append("aliases:")
            out += [f'  "{k}": "{v}"' for k, v in aliases.items()]
        out.append("providers:")
        for p in providers:
            out += Gateway._provider_yaml(p)
        out.append("models:")
        for m in models:
            out += Gateway._model_yaml(m)
        out += Gateway._keys_yaml(keys)
        return "\n".join(out) + "\n"

    def start(self):
        env = dict(os.environ, TG_E2E_SIM_KEY="sim-secret",
                   ASAN_OPTIONS="detect_leaks=1:abort_on_error=0")
        cmd = [self.binary, "serve", "--config", self.config]
        if self.test_clock:
            cmd.append("--test-clock")
        self.stderr = open(self.stderr_path, "w")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE,
                                     stderr=self.stderr, text=True, env=env)
        line = self.proc.stdout.readline()
        if not line.startswith("tollgate listening on"):
            self.proc.wait(timeout=10)
            raise RuntimeError("gateway did not start: " + self.log())
        self.port = int(line.strip().rsplit(":", 1)[1])
        return self

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def log(self):
        if not self.stderr.closed:
            self.stderr.flush()
        with open(self.stderr_path) as f:
            return f.read()

    @staticmethod
    def auth_headers(key, auth="bearer"):
        """The caller's key as a header: "bearer" (Authorization: Bearer)
        or "x-api-key" (Anthropic's SDK); none when key is None."""
        if key is None:
            return {}
        if auth == "x-api-key":
            return {"x-api-key": key}
        return {"Authorization": f"Bearer {key}"}

    def post(self, path, body, key="tg-key-alpha", headers=None, raw=None,
             auth="bearer"):
        """POSTs body (or the raw bytes) to path; returns (status, headers
        with lowercased names, body bytes)."""
        h = {"Content-Type": "application/json"}
        h.update(self.auth_headers(key, auth))
        h.update(headers or {})
        data = raw if raw is not None else json.dumps(body).encode()
        return harness.http("POST", self.url + path, data, h)

    def chat(self, body, key="tg-key-alpha", headers=None, raw=None):
        return self.post("/v1/chat/completions", body, key, headers, raw)

    def messages(self, body, key="tg-key-alpha", headers=None, raw=None,
                 auth="x-api-key"):
        """POST /v1/messages, authenticated as Anthropic's SDK does."""
        h = {"anthropic-version": "2023-06-01"}
        h.update(headers or {})
        return self.post("/v1/messages", body, key, h, raw, auth)

    def responses(self, body, key="tg-key-alpha", headers=None, raw=None):
        return self.post("/v1/responses", body, key, headers, raw)

    def embeddings(self, body, key="tg-key-alpha", headers=None, raw=None):
        return self.post("/v1/embeddings", body, key, headers, raw)

    def send(self, path, body, key="tg-key-alpha", headers=None,
             auth="bearer"):
        """POSTs without reading the answer (for streams and for tests
        that act while a call is in flight); returns the HTTPConnection."""
        h = self.auth_headers(key, auth)
        h.update(headers or {})
        return harness.open_request("POST", self.url + path, body, h)

    def send_chat(self, body, key="tg-key-alpha"):
        """Sends a chat request without reading the answer, for tests that
        act while it is in flight; returns the HTTPConnection."""
        return self.send("/v1/chat/completions", body, key)

    def raw_post(self, path, body, key="tg-key-alpha", rcvbuf=None,
                 timeout=10, auth="bearer"):
        """POSTs on a plain socket (to read the reply byte by byte, or to
        hang up); returns the socket."""
        sock = socket.create_connection(("127.0.0.1", self.port),
                                        timeout=timeout)
        if rcvbuf is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        payload = json.dumps(body).encode()
        hdrs = "".join(f"{k}: {v}\r\n"
                       for k, v in self.auth_headers(key, auth).items())
        sock.sendall(b"POST %s HTTP/1.1\r\nHost: x\r\n" % path.encode()
                     + hdrs.encode()
                     + b"Content-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n" % len(payload)
                     + payload)
        return sock

    def raw_chat(self, body, key="tg-key-alpha", rcvbuf=None, timeout=10):
        """Sends a chat request on a plain socket (to read the reply byte by
        byte, or to hang up); returns the socket."""
        return self.raw_post("/v1/chat/completions", body, key, rcvbuf,
                             timeout)

    def health(self):
        return json.loads(harness.http("GET", self.url + "/healthz")[2])

    def begin_drain(self):
        """SIGTERM, then waits until the gateway says it is draining."""
        self.proc.send_signal(signal.SIGTERM)
        wait_for(lambda: self.health()["status"] == "draining")

    def advance(self, ms):
        return harness.http("POST", f"{self.url}/_test/clock/advance?ms={ms}")

    def stop(self, sig=signal.SIGTERM, timeout=20):
        """Drains and exits; returns the exit code."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        rc = self.proc.wait(timeout=timeout)
        self.stderr.close()
        return rc

    def wait_written(self, n, timeout=10):
        """Waits until the ledger has committed n records (outcomes)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status, _, body = harness.http("GET", self.url + "/healthz")
            st = json.loads(body)
            if st["ledger"]["written"] >= n and st["ledger"]["queued"] == 0:
                return
            time.sleep(0.01)
        raise AssertionError(f"ledger did not reach {n} records")

    def rows(self, table, where="1=1", args=()):
        db = sqlite3.connect(self.ledger)
        db.row_factory = sqlite3.Row
        try:
            return [dict(r) for r in db.execute(
                f"SELECT * FROM {table} WHERE {where}", args)]
        finally:
            db.close()

    def outcome(self, outcome_id):
        rows = self.rows("outcomes", "id = ?", (outcome_id,))
        assert len(rows) == 1, f"no ledger row for {outcome_id}"
        return rows[0]

    def attempts(self, outcome_id):
        return self.rows("attempts", "outcome_id = ? ORDER BY attempt_no",
                         (outcome_id,))
