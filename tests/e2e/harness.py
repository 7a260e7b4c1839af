"""Helpers for Tollgate's end-to-end tests (Python 3 stdlib only).

Starts the provider simulator on a free port, talks HTTP to it and to the
gateway, reads SSE streams incrementally, and locates the shared data sets.
The simulator's token rule is re-implemented here (count_pieces,
prompt_tokens) so tests can recompute what a call should have cost.
"""

import atexit
import ctypes
import http.client as httpclient
import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import threading
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# The gateway binary under test; the gateway tests start it themselves.
TOLLGATE_BIN = os.environ.get("TOLLGATE_BIN",
                              str(ROOT / "build" / "asan" / "tollgate"))

# The simulator binary; point it at an ASan build to check it under tests.
SIM_BIN = os.environ.get("TOLLGATE_SIM_BIN",
                         str(ROOT / "tools" / "provider-sim" / "provider-sim"))

START_TIMEOUT_S = 10
STOP_TIMEOUT_S = 10


def repo_root():
    """The repository root (the directory holding Makefile and src/)."""
    return ROOT


def shared_dir():
    """$TOLLGATE_SHARED, else <repo>/../shared."""
    env = os.environ.get("TOLLGATE_SHARED")
    return Path(env) if env else (ROOT.parent / "shared").resolve()


def need_shared(testcase, relpath):
    """Path of a shared file, or skip the test with "SKIP <test>: <path>
    missing" when it is absent."""
    path = shared_dir() / relpath
    if not path.exists():
        message = "SKIP %s: %s missing" % (testcase.id(), path)
        print(message, file=sys.stderr)
        testcase.skipTest(message)
    return path


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ---------------------------------------------------------------- HTTP


def _encode(body):
    if body is None or isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode("utf-8")
    return json.dumps(body).encode("utf-8")


def _split(url):
    parts = urllib.parse.urlsplit(url)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return parts.hostname, parts.port or 80, path


def open_request(method, url, body=None, headers=None, timeout=10):
    """Sends a request and returns the open HTTPConnection without reading
    the response, for tests that act before the answer arrives. A dict or
    list body is sent as JSON."""
    host, port, path = _split(url)
    conn = httpclient.HTTPConnection(host, port, timeout=timeout)
    hdrs = dict(headers or {})
    data = _encode(body)
    if data is not None and not any(k.lower() == "content-type"
                                    for k in hdrs):
        hdrs["Content-Type"] = "application/json"
    conn.request(method, path, body=data, headers=hdrs)
    return conn


def http(method, url, body=None, headers=None, timeout=10):
    """One request; returns (status, headers with lowercased names, body
    bytes). A dict or list body is sent as JSON."""
    conn = open_request(method, url, body, headers, timeout)
    try:
        resp = conn.getresponse()
        data = resp.read()
        hdrs = {k.lower(): v for k, v in resp.getheaders()}
        return resp.status, hdrs, data
    finally:
        conn.close()


def http_json(method, url, body=None, headers=None, timeout=10):
    """Like http() but decodes the body as JSON."""
    status, hdrs, data = http(method, url, body, headers, timeout)
    return status, hdrs, json.loads(data)


# ----------------------------------------------------------------- SSE


class SSEReader:
    """Yields the data of each server-sent event as it arrives.

    Follows the SSE framing rules: CRLF or LF line ends, "data:" with or
    without a space, several data lines joined by newlines, ":" comment
    lines ignored. Iteration stops at the end of the stream; when the
    stream broke off (connection cut, chunked body without its last
    chunk, short Content-Length) `error` holds the exception. `events`
    keeps every event yielded so far.
    """

    def __init__(self, resp):
        self.resp = resp
        self.events = []
        self.error = None
        self.finished = False
        self._buf = b""
        self._eof = False

    def __iter__(self):
        return self

    def __next__(self):
        data = self._next_event()
        if data is None:
            self.finished = True
            raise StopIteration
        self.events.append(data)
        return data

    def _fill(self):
        # read1, not readline: readline hides a broken chunked body.
        try:
            data = self.resp.read1(65536)
        except (httpclient.HTTPException, OSError) as exc:
            self.error = exc
            data = b""
        if not data:
            if self.error is None and self.resp.length:
                self.error = httpclient.IncompleteRead(b"", self.resp.length)
            self._eof = True
        self._buf += data

    def _readline(self):
        while b"\n" not in self._buf and not self._eof:
            self._fill()
        if b"\n" in self._buf:
            line, self._buf = self._buf.split(b"\n", 1)
            return line + b"\n"
        line, self._buf = self._buf, b""
        return line

    def _next_event(self):
        lines = []
        while True:
            raw = self._readline()
            if not raw:
                return "\n".join(lines) if lines else None
            line = raw.decode("utf-8").rstrip("\r\n")
            if line == "":
                if lines:
                    return "\n".join(lines)
                continue
            if line.startswith(":"):
                continue
            if line.startswith("data:"):
                value = line[5:]
                lines.append(value[1:] if value.startswith(" ") else value)

    def read_all(self):
        """Reads to the end; returns every event's data."""
        for _ in self:
            pass
        return self.events


def sse_events(resp):
    """Generator over the data of each SSE event of an http.client
    response, yielded as it arrives (see SSEReader)."""
    return iter(SSEReader(resp))


def open_stream(url, body, headers=None, timeout=10):
    """POSTs body and returns (conn, response, SSEReader) once the status
    line and headers have arrived."""
    conn = open_request("POST", url, body, headers, timeout)
    resp = conn.getresponse()
    return conn, resp, SSEReader(resp)


# ---------------------------------------------------------- token rule

_PIECE = re.compile(r"[A-Za-z0-9]+|[^ \t\n\r\f\v]")
TOKENS_PER_PROMPT = 3
TOKENS_PER_MESSAGE = 4
TOKENS_PER_NONTEXT_PART = 85


def count_pieces(text):
    """The simulator's token count: runs of ASCII letters/digits, and every
    other non-whitespace character, count one each."""
    return len(_PIECE.findall(text))


def message_tokens(msg):
    """What one chat message adds to the simulator's prompt_tokens."""
    if not isinstance(msg, dict):
        return TOKENS_PER_MESSAGE
    content = msg.get("content")
    text, nontext = "", 0
    if isinstance(content, str):
        text = content
    elif isinstance(content, list):
        for part in content:
            if isinstance(part, dict) and part.get("type") == "text":
                value = part.get("text")
                text += value if isinstance(value, str) else ""
            else:
                nontext += 1
    tokens = (TOKENS_PER_MESSAGE + count_pieces(text)
              + TOKENS_PER_NONTEXT_PART * nontext)
    calls = msg.get("tool_calls")
    for call in calls if isinstance(calls, list) else []:
        fn = call.get("function") if isinstance(call, dict) else None
        if not isinstance(fn, dict):
            continue
        for key in ("name", "arguments"):
            if isinstance(fn.get(key), str):
                tokens += count_pieces(fn[key])
    return tokens


def prompt_tokens(messages):
    """The simulator's prompt_tokens for a messages array."""
    return TOKENS_PER_PROMPT + sum(message_tokens(m) for m in messages)


# ----------------------------------------------------------- simulator

_PR_SET_PDEATHSIG = 1
_live_sims = set()


def _die_with_parent():
    # Runs in the child before exec: a killed test runner takes its
    # simulators with it instead of leaving them orphaned.
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


@atexit.register
def _stop_live_sims():
    # A test that failed before its teardown must not leave a simulator.
    for sim in list(_live_sims):
        sim.stop()


class Sim:
    """A provider-sim process on a free port of 127.0.0.1.

    Sim(args) starts it and waits for its "listening" line; stop() (or
    leaving a `with` block) sends SIGTERM, waits, and keeps stderr in
    `self.stderr` and the exit status in `self.returncode`. Simulators
    still running when the interpreter exits are stopped then, and the
    kernel stops them if the thread that started them dies.
    """

    def __init__(self, args=(), binary=None):
        self.binary = binary or SIM_BIN
        if not os.path.exists(self.binary):
            raise RuntimeError("provider-sim not built: %s (run make "
                               "tools/provider-sim/provider-sim)"
                               % self.binary)
        self.args = list(args)
        self.stderr = ""
        self.returncode = None
        self._err_chunks = []
        self.proc = subprocess.Popen(
            [self.binary, "--listen", "127.0.0.1:0"] + self.args,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            preexec_fn=_die_with_parent)
        _live_sims.add(self)
        self._err_thread = threading.Thread(target=self._drain_stderr,
                                            daemon=True)
        self._err_thread.start()
        try:
            self.port = self._read_port()
        except Exception:
            self.stop()
            raise
        self.url = "http://127.0.0.1:%d" % self.port

    def _drain_stderr(self):
        for chunk in iter(lambda: self.proc.stderr.read1(65536), b""):
            self._err_chunks.append(chunk)

    def _read_port(self):
        ready, _, _ = select.select([self.proc.stdout], [], [],
                                    START_TIMEOUT_S)
        line = self.proc.stdout.readline().decode() if ready else ""
        match = re.fullmatch(r"provider-sim listening on [^:]+:(\d+)\n",
                             line)
        if not match:
            self.proc.wait(timeout=STOP_TIMEOUT_S)
            raise RuntimeError("provider-sim did not start: %r %s"
                               % (line, b"".join(self._err_chunks)
                                  .decode(errors="replace")))
        return int(match.group(1))

    def stop(self):
        """Stops the simulator (SIGTERM, then SIGKILL); returns its exit
        status. Safe to call twice."""
        if self.returncode is not None:
            return self.returncode
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._err_thread.join(timeout=STOP_TIMEOUT_S)
        self.proc.stdout.close()
        self.proc.stderr.close()
        self.stderr = b"".join(self._err_chunks).decode(errors="replace")
        self.returncode = self.proc.returncode
        _live_sims.discard(self)
        return self.returncode

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def _get(self, path):
        status, _, body = http("GET", self.url + path)
        if status != 200:
            raise RuntimeError("GET %s: %d %r" % (path, status, body))
        return json.loads(body)

    def _post(self, path, body=None):
        status, _, data = http("POST", self.url + path, body)
        if status != 200:
            raise RuntimeError("POST %s: %d %r" % (path, status, data))
        return json.loads(data)

    def chat_url(self):
        return self.url + "/v1/chat/completions"

    def requests(self):
        """Every request the simulator received since start or reset."""
        return self._get("/_sim/requests")

    def usage(self):
        """One record per answer sent: id, model, stream, usage, fault."""
        return self._get("/_sim/usage")

    def stats(self):
        """{"in_flight", "requests", "answers"} counts."""
        return self._get("/_sim/stats")

    def reset(self):
        """Clears both journals and the prompt cache."""
        return self._post("/_sim/reset")

    def advance(self, ms):
        """Moves the virtual clock ms forward; returns the new now_ms."""
        return self._post("/_sim/clock/advance", {"ms": ms})["now_ms"]

    def now_ms(self):
        return self._get("/_sim/clock")["now_ms"]
