#!/usr/bin/env python3
"""Autobahn|Testsuite compliance run for a WebSocket *client* (stdlib only).

    python autobahn/run.py [--testee CMD] [--cases PATTERNS] [--jobs N]
                           [--case-timeout S] [--exclusions FILE] [--agent NAME]

1. makes sure the fuzzing server is installed (``autobahn/install.sh``;
   or uses the ``crossbario/autobahn-testsuite`` image where a Docker
   engine answers, see ``--server``),
2. starts ``--jobs`` fuzzing servers on free loopback ports,
3. asks a server for the case list (``/getCaseCount``, ``/getCaseInfo``),
4. runs ``<testee command> <url>`` as a subprocess for every selected case,
   the cases spread over the servers so that their total time balances,
5. lets every server write its reports (``/updateReports``), stops them,
6. merges the servers' ``index.json`` into ``autobahn/reports/summary.json``
   and prints a per-section table plus every case that is not OK,
7. exits 1 when a case is not OK (see README.md for the exact rules),
   2 on a harness error, 0 otherwise.

The testee contract is in README.md: argv is ``[..., URL]``, the testee
echoes every text/binary message back with the same type until the
connection is over and exits 0; a non-zero exit marks the case as failed.
"""

import argparse
import base64
import fnmatch
import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
DEFAULT_REPORTS = os.path.join(HERE, "reports")
DEFAULT_TESTEE = os.path.join(HERE, "testee_wsx.py")
DEFAULT_EXCLUSIONS = os.path.join(HERE, "exclusions.json")
SPEC_TEMPLATE = os.path.join(HERE, "fuzzingserver.json")
INSTALL_SH = os.path.join(HERE, "install.sh")
DOCKER_IMAGE = "crossbario/autobahn-testsuite"
HOST = "127.0.0.1"

# Behaviours the suite reports (autobahntestsuite/case/case.py).
OK, NON_STRICT, INFORMATIONAL, UNIMPLEMENTED = "OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED"
GOOD_CLOSE = (OK, INFORMATIONAL)

# Compression cases 12.X.Y / 13.X.Y: the suite echoes 1000 messages per case
# and gives itself a time limit per Y (MSG_SIZES in the suite's
# case/case12_x_x.py: 60, 60, 120, 240 s, then 480 s).  The harness waits that
# long plus a margin before it kills the testee.  Rough cost estimates per Y
# (seconds, measured with a compressing testee, 2 servers on 2 cores) are
# used to balance the servers when no earlier measurement is available.
COMPRESSION_SUITE_LIMIT = [60, 60, 120, 240] + [480] * 14
COMPRESSION_MARGIN = 30
COMPRESSION_ESTIMATE = [1, 1, 1.2, 1.3, 2.6, 5, 8, 12, 23, 46, 3, 7, 13, 27, 50, 57, 52, 41]
STATIC_ESTIMATES = [
    ("9.*", 1.6),
    ("6.4.*", 2.3),
    ("*", 0.3),
]


def is_compression_case(case_id):
    return case_id.split(".")[0] in ("12", "13") and case_id.count(".") == 2


def compression_index(case_id):
    try:
        y = int(case_id.split(".")[2])
    except (IndexError, ValueError):
        return None
    return y - 1 if 1 <= y <= len(COMPRESSION_SUITE_LIMIT) else None


def case_timeout(case_id, args):
    """Seconds the testee may run for this case before it is killed."""
    if is_compression_case(case_id):
        if args.compression_timeout:
            return args.compression_timeout
        i = compression_index(case_id)
        limit = COMPRESSION_SUITE_LIMIT[i] if i is not None else max(COMPRESSION_SUITE_LIMIT)
        return max(args.case_timeout, limit + COMPRESSION_MARGIN)
    return args.case_timeout


# Run the suite's own wstest entry point, but make the fuzzing server
# listen on the loopback interface only (upstream binds to all interfaces).
PY2_LAUNCHER = r"""
import sys
import autobahntestsuite.fuzzing as _fz
_listen = _fz.listenWS
def _listen_loopback(factory, contextFactory=None, backlog=50, interface=''):
    return _listen(factory, contextFactory, backlog, interface or %r)
_fz.listenWS = _listen_loopback
from autobahntestsuite.wstest import run
sys.argv[0] = 'wstest'
sys.exit(run())
""" % HOST

_print_lock = threading.Lock()


def log(msg=""):
    with _print_lock:
        print(msg, flush=True)


def warn(msg):
    log("WARNING: " + msg)


class HarnessError(Exception):
    pass


# --------------------------------------------------------------------------
# A tiny WebSocket client for the fuzzing server's control paths
# --------------------------------------------------------------------------

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def _client_frame(opcode, payload=b""):
    mask = os.urandom(4)
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + mask + masked


def ws_control(port, path, timeout=10.0):
    """Open ws://HOST:port<path>, return the list of text messages the
    server sends before it closes the connection."""
    deadline = time.monotonic() + timeout
    sock = socket.create_connection((HOST, port), timeout=timeout)
    try:
        key = base64.b64encode(os.urandom(16)).decode()
        request = ("GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
                   "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                   "Sec-WebSocket-Version: 13\r\n\r\n" % (path, HOST, port, key))
        sock.sendall(request.encode("ascii"))
        buf = bytearray()

        def fill(n):
            while len(buf) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("timed out talking to %s" % path)
                sock.settimeout(left)
                chunk = sock.recv(65536)
                if not chunk:
                    raise ConnectionError("connection closed during %s" % path)
                buf.extend(chunk)

        def take(n):
            fill(n)
            data = bytes(buf[:n])
            del buf[:n]
            return data

        while b"\r\n\r\n" not in buf:
            fill(len(buf) + 1)
        end = buf.index(b"\r\n\r\n") + 4
        head = bytes(buf[:end]).decode("latin-1")
        del buf[:end]
        status = head.split("\r\n", 1)[0]
        if " 101 " not in status + " ":
            raise HarnessError("%s: handshake refused: %s" % (path, status))
        accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        if accept not in head:
            raise HarnessError("%s: bad Sec-WebSocket-Accept" % path)

        messages, parts = [], []
        while True:
            b0, b1 = take(2)
            fin, opcode, n = b0 & 0x80, b0 & 0x0F, b1 & 0x7F
            if n == 126:
                n = struct.unpack("!H", take(2))[0]
            elif n == 127:
                n = struct.unpack("!Q", take(8))[0]
            mask = take(4) if b1 & 0x80 else None
            payload = take(n)
            if mask:
                payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
            if opcode in (0, 1, 2):
                parts.append(payload)
                if fin:
                    messages.append(b"".join(parts).decode("utf-8", "replace"))
                    parts = []
            elif opcode == 8:
                try:
                    sock.sendall(_client_frame(8, payload[:2]))
                except OSError:
                    pass
                return messages
            elif opcode == 9:
                sock.sendall(_client_frame(10, payload))
    finally:
        sock.close()


# --------------------------------------------------------------------------
# Fuzzing servers
# --------------------------------------------------------------------------

def cache_home():
    return os.environ.get("WSX_AUTOBAHN_HOME") or os.path.join(
        os.path.expanduser("~"), ".cache", "wsx-autobahn")


def docker_works():
    if not shutil.which("docker"):
        return False
    try:
        return subprocess.run(["docker", "info"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def ensure_native_install():
    log("== ensuring the fuzzing server is installed (autobahn/install.sh)")
    t0 = time.monotonic()
    rc = subprocess.run(["bash", INSTALL_SH]).returncode
    if rc != 0:
        raise HarnessError("autobahn/install.sh failed with exit code %d" % rc)
    log("   install check took %.1f s" % (time.monotonic() - t0))
    py = os.path.join(cache_home(), "venv", "bin", "python")
    if not os.access(py, os.X_OK):
        raise HarnessError("no python in the fuzzing server virtualenv: %s" % py)
    return py


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class FuzzingServer:
    def __init__(self, index, outdir, mode, python2=None, image=DOCKER_IMAGE):
        self.index = index
        self.outdir = outdir
        self.mode = mode
        self.python2 = python2
        self.image = image
        self.port = None
        self.proc = None
        self.container = None
        self.log_path = os.path.join(outdir, "server.log")
        self.busy_seconds = 0.0
        self.cases_run = 0
        self.accelerated = None

    def _spec(self, outdir_in_server):
        with open(SPEC_TEMPLATE) as f:
            spec = json.load(f)
        spec["url"] = "ws://%s:%d" % (HOST, self.port)
        spec["outdir"] = outdir_in_server
        spec["cases"] = ["*"]          # selection happens in run.py
        spec["exclude-cases"] = []     # exclusions only relax verdicts
        spec["exclude-agent-cases"] = {}
        return spec

    def start(self, ready_timeout=60.0):
        os.makedirs(self.outdir, exist_ok=True)
        for attempt in range(3):
            self.port = free_port()
            spec_path = os.path.join(self.outdir, "spec.json")
            if self.mode == "docker":
                self.container = "wsx-autobahn-%d-%d-%d" % (os.getpid(), self.index, self.port)
                spec = self._spec("/autobahn-out")
                cmd = ["docker", "run", "--rm", "--name", self.container,
                       "--user", "%d:%d" % (os.getuid(), os.getgid()),
                       "-e", "PYTHONUNBUFFERED=1",
                       "-p", "%s:%d:%d" % (HOST, self.port, self.port),
                       "-v", "%s:/autobahn-out" % os.path.abspath(self.outdir),
                       "-w", "/autobahn-out",
                       self.image,
                       "wstest", "-m", "fuzzingserver", "-s", "/autobahn-out/spec.json", "-u", "0"]
            else:
                spec = self._spec(os.path.abspath(self.outdir))
                cmd = [self.python2, "-u", "-c", PY2_LAUNCHER,
                       "-m", "fuzzingserver", "-s", spec_path, "-u", "0"]
            with open(spec_path, "w") as f:
                json.dump(spec, f, indent=3)
            logf = open(self.log_path, "w")
            self.proc = subprocess.Popen(cmd, cwd=self.outdir, stdout=logf,
                                         stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL,
                                         start_new_session=True)
            logf.close()
            deadline = time.monotonic() + ready_timeout
            while time.monotonic() < deadline and self.proc.poll() is None:
                try:
                    with socket.create_connection((HOST, self.port), timeout=1):
                        pass
                    if "Ok, will run" in self.server_log():
                        self.check_accelerators()
                        return
                except OSError:
                    pass
                time.sleep(0.2)
            self.stop()
            warn("server %d did not come up on port %d (attempt %d); log:\n%s"
                 % (self.index, self.port, attempt + 1, self.server_log()[-2000:]))
        raise HarnessError("fuzzing server %d failed to start, see %s"
                           % (self.index, os.path.relpath(self.log_path)))

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def server_log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def check_accelerators(self):
        text = self.server_log()
        utf8 = re.search(r"Using UTF8 Validator class (.*)", text)
        xor = re.search(r"Using XOR Masker classes (.*)", text)
        utf8 = utf8.group(1).strip() if utf8 else "?"
        xor = xor.group(1).strip() if xor else "?"
        self.accelerated = "wsaccel" in utf8 and "wsaccel" in xor
        if self.accelerated:
            if self.index == 0:
                log("   server uses wsaccel: %s, %s" % (utf8, xor))
            return
        banner = "!" * 78
        log(banner)
        warn("fuzzing server %d does NOT use wsaccel (UTF-8 validator: %s, masker: %s)."
             % (self.index, utf8, xor))
        log("WARNING: compression cases (12.x/13.x) will take 20-50 s EACH. Native server:")
        log("WARNING:   reinstall with WSX_AUTOBAHN_FORCE=1 bash autobahn/install.sh")
        log(banner)

    def case_count(self):
        return int(json.loads(ws_control(self.port, "/getCaseCount")[0]))

    def case_info(self, n):
        return json.loads(ws_control(self.port, "/getCaseInfo?case=%d" % n)[0])

    def case_status(self, n, agent, timeout):
        msgs = ws_control(self.port, "/getCaseStatus?case=%d&agent=%s"
                          % (n, urllib.parse.quote(agent)), timeout=timeout)
        return json.loads(msgs[0]).get("behavior") if msgs else None

    def update_reports(self, agent, timeout=600.0):
        ws_control(self.port, "/updateReports?agent=%s" % urllib.parse.quote(agent),
                   timeout=timeout)

    def stop(self):
        if self.container:
            subprocess.run(["docker", "stop", "-t", "5", self.container],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait()
        self.proc = None
        self.container = None


# --------------------------------------------------------------------------
# Cases, exclusions, scheduling
# --------------------------------------------------------------------------

def split_patterns(text):
    return [p.strip() for p in (text or "").split(",") if p.strip()]


def matches(case_id, patterns):
    return any(fnmatch.fnmatchcase(case_id, p) for p in patterns)


def case_key(case_id):
    return tuple(int(x) if x.isdigit() else x for x in case_id.split("."))


def load_exclusions(path):
    if not path:
        return {}
    try:
        with open(path) as f:
            data = json.load(f)
    except FileNotFoundError:
        raise HarnessError("exclusions file not found: %s" % path) from None
    except ValueError as exc:
        raise HarnessError("exclusions file %s is not valid JSON: %s" % (path, exc)) from exc
    if not isinstance(data, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and v.strip() for k, v in data.items()):
        raise HarnessError("exclusions file %s must map case-id patterns to a "
                           "non-empty reason string" % path)
    return data


def exclusion_for(case_id, exclusions):
    for pattern, reason in exclusions.items():
        if fnmatch.fnmatchcase(case_id, pattern):
            return pattern, reason
    return None


def load_timings(path):
    """Measured wall seconds per case id from earlier runs (reports/timings.json)."""
    try:
        with open(path) as f:
            data = json.load(f)
        return {k: float(v) for k, v in data.items() if isinstance(v, (int, float))}
    except (OSError, ValueError, AttributeError, TypeError):
        return {}


def save_timings(path, previous, results):
    timings = dict(previous)
    for cid, r in results.items():
        if not r["timed_out"]:
            timings[cid] = r["wall_seconds"]
    with open(path, "w") as f:
        json.dump(dict(sorted(timings.items(), key=lambda kv: case_key(kv[0]))), f, indent=0)


def estimate(case_id, previous):
    if case_id in previous:
        return previous[case_id]
    if is_compression_case(case_id):
        i = compression_index(case_id)
        return COMPRESSION_ESTIMATE[i] if i is not None else 30.0
    for pattern, secs in STATIC_ESTIMATES:
        if fnmatch.fnmatchcase(case_id, pattern):
            return secs
    return 0.2


# --------------------------------------------------------------------------
# Running the testee
# --------------------------------------------------------------------------

class Runner:
    def __init__(self, args, servers, cases, testee_cmd, reports):
        self.args = args
        self.servers = servers
        self.queue = list(cases)            # [(n, case_id, estimate)], longest first
        self.lock = threading.Lock()
        self.results = {}                   # case_id -> dict
        self.testee_cmd = testee_cmd
        self.reports = reports
        self.logdir = os.path.join(reports, "testee")
        self.total = len(cases)
        self.done = 0
        self.abort = threading.Event()
        self.procs = set()                  # running testees, killed on abort
        self.error = None
        os.makedirs(self.logdir, exist_ok=True)

    def next_case(self):
        with self.lock:
            if self.abort.is_set() or not self.queue:
                return None
            return self.queue.pop(0)

    def worker(self, server):
        try:
            while True:
                item = self.next_case()
                if item is None:
                    return
                self.run_case(server, *item)
        except Exception as exc:  # stop every worker, main() reports it
            self.error = exc if isinstance(exc, HarnessError) else HarnessError(
                "worker for server %d crashed: %r" % (server.index, exc))
            self.kill_testees()

    def run_case(self, server, n, case_id, _estimate):
        if not server.alive():
            raise HarnessError("fuzzing server %d died; see %s"
                               % (server.index, os.path.relpath(server.log_path)))
        url = "ws://%s:%d/runCase?case=%d&agent=%s" % (
            HOST, server.port, n, urllib.parse.quote(self.args.agent))
        log_path = os.path.join(self.logdir, "case_%s.log" % case_id.replace(".", "_"))
        env = dict(os.environ, WSX_AUTOBAHN_CASE=case_id)
        t0 = time.monotonic()
        timed_out = False
        timeout = case_timeout(case_id, self.args)
        with open(log_path, "w") as logf:
            try:
                proc = subprocess.Popen(self.testee_cmd + [url], stdout=logf,
                                        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                        env=env, start_new_session=True)
            except OSError as exc:
                raise HarnessError("cannot start testee %r: %s" % (self.testee_cmd, exc)) from exc
            self.procs.add(proc)
            try:
                rc = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                rc = proc.wait()
            finally:
                self.procs.discard(proc)
        wall = time.monotonic() - t0
        if self.abort.is_set():
            return
        try:
            live = server.case_status(n, self.args.agent, timeout=5.0)
        except (OSError, HarnessError, ValueError, IndexError):
            live = None
        server.busy_seconds += wall
        server.cases_run += 1
        if os.path.getsize(log_path) == 0:
            os.unlink(log_path)
            log_path = None
        res = {"n": n, "server": server.index, "wall_seconds": round(wall, 3), "timeout": timeout,
               "testee_exit": rc, "timed_out": timed_out, "live_behavior": live,
               "testee_log": os.path.relpath(log_path, REPO) if log_path else None}
        with self.lock:
            self.results[case_id] = res
            self.done += 1
            done = self.done
        flag = ""
        if timed_out:
            flag = "  TIMEOUT after %ds" % timeout
        elif rc != 0:
            flag = "  testee exit %d" % rc
        log("[%3d/%d] s%d %-9s %-13s %6.2fs%s" % (done, self.total, server.index, case_id,
                                                  live or "NO RESULT", wall, flag))

    def kill_testees(self):
        self.abort.set()
        for proc in list(self.procs):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def run(self):
        threads = [threading.Thread(target=self.worker, args=(s,), daemon=True)
                   for s in self.servers]
        for t in threads:
            t.start()
        for t in threads:
            while t.is_alive():
                t.join(0.5)


# --------------------------------------------------------------------------
# Summary
# --------------------------------------------------------------------------

COLUMNS = ["cases", OK, NON_STRICT, INFORMATIONAL, UNIMPLEMENTED, "FAILED",
           "close!OK", "timeout", "testee!0", "excluded"]


def build_summary(args, case_ids, results, servers, exclusions, reports, wall, testee_cmd):
    indexes = {}
    for s in servers:
        path = os.path.join(s.outdir, "index.json")
        try:
            with open(path) as f:
                indexes[s.index] = json.load(f).get(args.agent, {})
        except (OSError, ValueError) as exc:
            warn("no usable report index from server %d (%s): %s" % (s.index, path, exc))
            indexes[s.index] = {}

    cases = {}
    for cid in case_ids:
        r = results.get(cid)
        if r is None:
            cases[cid] = {"behavior": "NOT RUN", "behaviorClose": "NOT RUN", "ok": False,
                          "problems": ["not run"]}
            continue
        entry = indexes.get(r["server"], {}).get(cid)
        outdir = servers[r["server"]].outdir
        c = dict(r)
        if entry:
            c.update(behavior=entry.get("behavior"), behaviorClose=entry.get("behaviorClose"),
                     duration_ms=entry.get("duration"),
                     remoteCloseCode=entry.get("remoteCloseCode"))
            rep = os.path.join(outdir, entry.get("reportfile", ""))
            c["report_json"] = os.path.relpath(rep, REPO)
            html = rep[:-5] + ".html" if rep.endswith(".json") else rep
            c["report_html"] = os.path.relpath(html, REPO)
        else:
            c.update(behavior="MISSING", behaviorClose="MISSING")
        problems = []
        b, bc = c["behavior"], c["behaviorClose"]
        excl = exclusion_for(cid, exclusions)
        if b == UNIMPLEMENTED and not excl:
            problems.append("UNIMPLEMENTED (not in exclusions)")
        elif b not in (OK, INFORMATIONAL, UNIMPLEMENTED):
            problems.append("behavior %s" % b)
        if bc not in GOOD_CLOSE and not (b == UNIMPLEMENTED and excl):
            problems.append("close behavior %s" % bc)
        if r["timed_out"]:
            problems.append("timeout after %ds (testee killed)" % r["timeout"])
        elif r["testee_exit"] != 0:
            problems.append("testee exit code %d" % r["testee_exit"])
        c["problems"] = problems
        if excl:
            c["excluded"] = {"pattern": excl[0], "reason": excl[1]}
        c["ok"] = not problems
        cases[cid] = c

    sections = {}
    for cid in case_ids:
        c = cases[cid]
        row = sections.setdefault(cid.split(".")[0], dict.fromkeys(COLUMNS, 0))
        row["cases"] += 1
        b = c.get("behavior")
        row[b if b in (OK, NON_STRICT, INFORMATIONAL, UNIMPLEMENTED) else "FAILED"] += 1
        if c.get("behaviorClose") not in GOOD_CLOSE:
            row["close!OK"] += 1
        if c.get("timed_out"):
            row["timeout"] += 1
        elif c.get("testee_exit") not in (0, None):
            row["testee!0"] += 1
        if c.get("excluded"):
            row["excluded"] += 1
    total = dict.fromkeys(COLUMNS, 0)
    for row in sections.values():
        for k in COLUMNS:
            total[k] += row[k]

    failing = [cid for cid in case_ids if not cases[cid]["ok"] and not cases[cid].get("excluded")]
    excluded = [cid for cid in case_ids if cases[cid].get("excluded")]
    return {
        "agent": args.agent,
        "testee": show_cmd(testee_cmd),
        "server_mode": servers[0].mode if servers else None,
        "jobs": len(servers),
        "case_timeout": args.case_timeout,
        "compression_timeout": (args.compression_timeout
                                or "suite limit + %d s" % COMPRESSION_MARGIN),
        "selection": {"cases": args.cases, "skip": args.skip},
        "exclusions_file": os.path.relpath(args.exclusions, REPO) if args.exclusions else None,
        "exclusions": exclusions,
        "wall_seconds": round(wall, 1),
        "passed": not failing,
        "counts": total,
        "sections": dict(sorted(sections.items(),
                                key=lambda kv: int(kv[0]) if kv[0].isdigit() else 999)),
        "failing": failing,
        "excluded": excluded,
        "warnings": ["fuzzing server %d runs WITHOUT wsaccel (slow)" % s.index
                     for s in servers if s.accelerated is False],
        "html_reports": [os.path.relpath(os.path.join(s.outdir, "index.html"), REPO)
                         for s in servers],
        "servers": [{"index": s.index, "port": s.port, "cases": s.cases_run,
                     "busy_seconds": round(s.busy_seconds, 1),
                     "outdir": os.path.relpath(s.outdir, REPO)} for s in servers],
        "cases": cases,
    }


def print_summary(summary):
    short = {"cases": "cases", OK: "OK", NON_STRICT: "NON-STRICT", INFORMATIONAL: "INFO",
             UNIMPLEMENTED: "UNIMPL", "FAILED": "FAILED", "close!OK": "close!OK",
             "timeout": "timeout", "testee!0": "testee!0", "excluded": "excluded"}
    widths = [max(len(short[c]), 5) for c in COLUMNS]
    log()
    log("== Autobahn|Testsuite results for agent %r (%s)" % (summary["agent"], summary["testee"]))
    header = "section " + " ".join(short[c].rjust(w) for c, w in zip(COLUMNS, widths, strict=True))
    log(header)
    log("-" * len(header))
    for sec, row in summary["sections"].items():
        log("%-7s " % sec + " ".join(str(row[c]).rjust(w)
                                     for c, w in zip(COLUMNS, widths, strict=True)))
    log("-" * len(header))
    log("%-7s " % "total" + " ".join(str(summary["counts"][c]).rjust(w)
                                     for c, w in zip(COLUMNS, widths, strict=True)))
    log("(FAILED = any other behaviour: FAILED, WRONG CODE, UNCLEAN, MISSING, ...;"
        " close!OK = close behaviour not OK/INFORMATIONAL;")
    log(" testee!0 = testee exited non-zero; excluded = matched autobahn/exclusions.json)")

    cases = summary["cases"]
    if summary["excluded"]:
        log()
        log("== Excluded cases (run, but they do not fail the run):")
        by_pattern = {}
        for cid in summary["excluded"]:
            c = cases[cid]
            key = (c["excluded"]["pattern"], c["excluded"]["reason"])
            by_pattern.setdefault(key, {}).setdefault(c.get("behavior"), []).append(cid)
        for (pattern, reason), behaviours in by_pattern.items():
            counts = ", ".join("%s %d" % (b, len(ids)) for b, ids in sorted(behaviours.items()))
            log("   %-8s %s: %s" % (pattern, reason, counts))
            if OK in behaviours:
                log("            note: %d of them pass now; the exclusion may be stale"
                    % len(behaviours[OK]))

    if summary["failing"]:
        log()
        log("== %d case(s) NOT OK:" % len(summary["failing"]))
        for cid in summary["failing"]:
            c = cases[cid]
            log("   %-9s %-13s close=%-13s %s" % (cid, c.get("behavior"), c.get("behaviorClose"),
                                                  "; ".join(c["problems"])))
            for k in ("report_html", "report_json", "testee_log"):
                if c.get(k):
                    log("             %s: %s" % (k.replace("_", " "), c[k]))
    log()
    log("HTML report index(es): " + ", ".join(summary["html_reports"]))
    summary_json = os.path.join(summary["_reports"], "summary.json")
    log("Summary JSON: %s" % os.path.relpath(summary_json, REPO))
    for s in summary["servers"]:
        log("server %d: %d cases, %.1f s busy" % (s["index"], s["cases"], s["busy_seconds"]))
    for w in summary["warnings"]:
        log("WARNING: " + w)
    log("Wall time: %.1f s" % summary["wall_seconds"])
    c = summary["counts"]
    if summary["passed"]:
        log("RESULT: PASS - %d cases: %d OK, %d INFORMATIONAL, %d excluded"
            % (c["cases"], c[OK], c[INFORMATIONAL], c["excluded"]))
    else:
        log("RESULT: FAIL - %d of %d cases not OK" % (len(summary["failing"]), c["cases"]))


# --------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------

def parse_args(argv):
    p = argparse.ArgumentParser(description="Run the Autobahn|Testsuite fuzzing server against a "
                                            "WebSocket client testee.")
    p.add_argument("--testee", help="testee command (shell-quoted); the case URL is appended "
                                    "as the last argument (default: %(default)s)",
                   default=None)
    p.add_argument("--agent", default="wsx",
                   help="agent name in the reports (default: %(default)s)")
    p.add_argument("--cases", default="*",
                   help="comma-separated case-id patterns to run, e.g. '1.*,9.1.*' (default: all)")
    p.add_argument("--skip", default="",
                   help="comma-separated case-id patterns NOT to run (local quick runs only)")
    p.add_argument("--jobs", type=int, default=2, help="number of fuzzing servers / parallel "
                                                       "testees (default: %(default)s)")
    p.add_argument("--case-timeout", type=int, default=60,
                   help="seconds before a testee is killed and the case failed "
                        "(default: %(default)s)")
    p.add_argument("--compression-timeout", type=int, default=None,
                   help="timeout for the compression cases 12.*/13.* (default: the suite's own "
                        "limit for the case, 60-480 s, plus %d s)" % COMPRESSION_MARGIN)
    p.add_argument("--exclusions", default=DEFAULT_EXCLUSIONS,
                   help="JSON file mapping case-id patterns to a reason (default: "
                        "autobahn/exclusions.json); '' for none")
    p.add_argument("--server", choices=("auto", "native", "docker"), default="auto",
                   help="fuzzing server: native install (install.sh) or the %s image; "
                        "auto = docker when a Docker engine answers "
                        "(default: %%(default)s)" % DOCKER_IMAGE)
    p.add_argument("--docker-image", default=DOCKER_IMAGE, help=argparse.SUPPRESS)
    p.add_argument("--reports", default=DEFAULT_REPORTS,
                   help="output directory (default: autobahn/reports)")
    args = p.parse_args(argv)
    if args.jobs < 1:
        p.error("--jobs must be >= 1")
    if args.case_timeout < 1:
        p.error("--case-timeout must be >= 1")
    return args


def show_cmd(cmd):
    """Command for display: the interpreter by name, repository paths relative."""
    out = []
    for i, part in enumerate(cmd):
        if i == 0 and part == sys.executable:
            part = os.path.basename(part)
        elif os.path.isabs(part) and part.startswith(REPO + os.sep):
            part = os.path.relpath(part, REPO)
        out.append(shlex.quote(part))
    return " ".join(out)


def testee_command(args):
    if args.testee is None:
        if not os.path.isfile(DEFAULT_TESTEE):
            raise HarnessError("default testee %s does not exist (the wsx testee is not written "
                               "yet); pass --testee CMD, e.g. --testee 'python3 "
                               "autobahn/testee_websockets.py'" % os.path.relpath(DEFAULT_TESTEE))
        return [sys.executable, DEFAULT_TESTEE]
    cmd = shlex.split(args.testee)
    if not cmd:
        raise HarnessError("--testee is empty")
    if not shutil.which(cmd[0]) and not os.path.isfile(cmd[0]):
        raise HarnessError("testee program not found: %s" % cmd[0])
    return cmd


class Terminated(Exception):
    pass


def _on_signal(signum, _frame):
    raise Terminated("signal %d" % signum)


def main(argv=None):
    args = parse_args(argv)
    # Stop servers and testees on SIGTERM/SIGHUP too, not only on Ctrl-C.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _on_signal)
    t_start = time.monotonic()
    servers = []
    runner = None
    try:
        testee = testee_command(args)
        exclusions = load_exclusions(args.exclusions)
        reports = os.path.abspath(args.reports)
        timings_path = os.path.join(reports, "timings.json")
        previous = load_timings(timings_path)
        for sub in ("servers", "testee"):
            shutil.rmtree(os.path.join(reports, sub), ignore_errors=True)
        summary_path = os.path.join(reports, "summary.json")
        if os.path.exists(summary_path):
            os.unlink(summary_path)
        os.makedirs(reports, exist_ok=True)

        mode = args.server
        if mode == "auto":
            mode = "docker" if docker_works() else "native"
        python2 = None
        if mode == "native":
            python2 = ensure_native_install()
        else:
            log("== using the Docker image %s" % args.docker_image)

        log("== starting %d fuzzing server(s)" % args.jobs)
        for i in range(args.jobs):
            s = FuzzingServer(i, os.path.join(reports, "servers", str(i)), mode, python2,
                              args.docker_image)
            servers.append(s)
            s.start()
            log("   server %d: ws://%s:%d  (log %s)"
                % (i, HOST, s.port, os.path.relpath(s.log_path, REPO)))

        t0 = time.monotonic()
        count = servers[0].case_count()
        ids = {}
        for n in range(1, count + 1):
            ids[n] = servers[n % len(servers)].case_info(n)["id"]
        log("== server has %d cases (case list fetched in %.1f s)" % (count, time.monotonic() - t0))

        include, skip = split_patterns(args.cases), split_patterns(args.skip)
        selected = [(n, cid) for n, cid in sorted(ids.items())
                    if matches(cid, include or ["*"]) and not matches(cid, skip)]
        if not selected:
            raise HarnessError("no case matches --cases %r / --skip %r" % (args.cases, args.skip))
        unused = [p for p in exclusions if not any(fnmatch.fnmatchcase(c, p) for c in ids.values())]
        for p in unused:
            warn("exclusion pattern %r matches no case of the suite" % p)
        # Longest-processing-time-first from one shared queue: every server
        # pulls the next (longest remaining) case when it is free, so the
        # slow compression cases are spread evenly and the totals balance.
        queue = sorted(((n, cid, estimate(cid, previous)) for n, cid in selected),
                       key=lambda x: -x[2])
        log("== running %d case(s) with %s on %d server(s), case timeout %d s "
            "(12.*/13.*: %s)" % (len(queue), show_cmd(testee), len(servers), args.case_timeout,
                                 "%d s" % args.compression_timeout if args.compression_timeout
                                 else "suite limit + %d s" % COMPRESSION_MARGIN))
        runner = Runner(args, servers, queue, testee, reports)
        runner.run()
        if runner.error is not None:
            raise runner.error
        if runner.abort.is_set():
            raise HarnessError("aborted")

        log("== updating reports")
        for s in servers:
            s.update_reports(args.agent)
    except HarnessError as exc:
        log("ERROR: %s" % exc)
        return 2
    except (KeyboardInterrupt, Terminated) as exc:
        log("interrupted (%s); stopping testees and servers" % (exc or "Ctrl-C"))
        return 130
    finally:
        if runner is not None:
            runner.kill_testees()
        for s in servers:
            s.stop()

    save_timings(timings_path, previous, runner.results)
    wall = time.monotonic() - t_start
    summary = build_summary(args, [cid for _, cid in selected], runner.results, servers,
                            exclusions, reports, wall, testee)
    with open(summary_path, "w") as f:
        json.dump(summary, f, indent=2, sort_keys=False)
    summary["_reports"] = reports
    print_summary(summary)
    return 0 if summary["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
