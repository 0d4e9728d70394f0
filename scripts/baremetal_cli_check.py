"""Replay the upstream Ironic 39 `baremetal` CLI lifecycle against a server and
compare every step with the captured transcript, field by field.

Run through scripts/baremetal-cli-check (it provides the venv). The transcripts
(shared/reference/ironic-39-transcripts/NN-*.txt) are the specification: each
holds a command, its output and its exit code (CLI steps, `$ baremetal ...`) or
the raw HTTP exchange (`$ curl -si ...`). Steps run in the transcripts' order;
CLI steps run the real python-ironicclient shell with OS_AUTH_TYPE=none and
OS_ENDPOINT=<server>, curl steps are sent with http.client exactly as curl
would send them.

Before comparing, both sides are normalised:
  * UUIDs become <uuid-N> by order of first appearance (separately for each
    side), except UUIDs that the commands themselves introduce (instance and
    VIF ids such as 11111111-1111-4111-8111-111111111111), which stay literal;
  * ISO timestamps (2026-11-25T13:49:27.463175+00:00, microseconds optional as
    in Python's isoformat), client log timestamps and HTTP dates become
    <timestamp>/<http-date> (only when they have exactly upstream's format);
  * request ids req-<uuid> become <request-id>;
  * the server's host:port becomes <host:port> and the conductor hostname
    (upstream ref-ironic-16385, ours detected from GET /v1/drivers or
    --conductor-host) becomes <conductor>;
  * the `--- server log` sections of --wait steps are not client output and
    are ignored;
  * the comma-separated enabled_*_interfaces values of `driver show` are
    compared as sets: upstream builds them from Python sets, so their order
    changes from one ironic process to the next (PYTHONHASHSEED).
  * the transcripts were captured with `--debug`, whose log format puts
    "<time> ERROR: ironicclient.common.http " before the client's own log
    lines (the 409 retry message of step 17); that prefix is dropped from
    upstream's side, the message itself is compared.
Content-Length is checked against the body actually received rather than
against upstream's number (it depends on the port and hostname lengths).
Headers are compared by name (case-insensitive, any order), values after
normalisation; headers we send that upstream does not are reported too
(except Connection/Keep-Alive). JSON is compared field by field, including
key order; curl bodies also byte for byte after normalisation (separators).

Speed: by default each CLI step forks a process that already imported
ironicclient (same code as the console script, ~0.7 s saved per step), and
the client's --wait poll (10 s) and 409 retry (2 s) intervals are shortened;
neither changes what the client prints. `--exec --real-timing` runs the
installed `baremetal` binary with stock timing instead.

Mismatches can be accepted only through the allowlist file
(scripts/baremetal-cli-allowlist.txt): `STEP FIELD-GLOB justification`.
"""

from __future__ import annotations

import argparse
import fnmatch
import http.client
import io
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.parse
from dataclasses import dataclass, field

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
DEFAULT_SERVER_CMD = (
    "cargo run -q -p ferrite-conductor --bin conductor -- "
    "--bind 127.0.0.1:{port} --database-url sqlite://{tmp}/c.db")
UPSTREAM_CONDUCTOR = "ref-ironic-16385"
NODE_NAME = "ref-node-1"
API_LATEST = "1.115"

UUID_RE = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
REQ_ID_RE = re.compile(r"req-" + UUID_RE.pattern)
ISO_TS_RE = re.compile(
    r"\b\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{6})?\+00:00")
LOG_TS_RE = re.compile(r"\b\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2},\d{3}\b")
HTTP_DATE_RE = re.compile(
    r"\b(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} "
    r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} "
    r"\d{2}:\d{2}:\d{2} GMT")
ENABLED_IFACES_RE = re.compile(r"^enabled_[a-z]+_interfaces$")
HOP_BY_HOP = {"connection", "keep-alive"}
DEBUG_LOG_PREFIX_RE = re.compile(
    r"(?m)^<timestamp> (?:INFO|WARNING|ERROR|CRITICAL): [\w.]+ ")


# --------------------------------------------------------------------------
# transcripts

@dataclass
class Step:
    num: int
    name: str          # file stem, e.g. 06-node-create
    kind: str          # 'cli' or 'curl'
    cmd: str           # the command after '$ '
    output: str = ""   # cli: combined stdout+stderr
    exit_code: int | None = None
    status: str = ""   # curl: 'HTTP/1.1 200 OK'
    headers: list = field(default_factory=list)  # curl: [(name, value)]
    body: str = ""


def load_transcripts(directory):
    steps = []
    for fn in sorted(os.listdir(directory)):
        m = re.match(r"^(\d+)-.*\.txt$", fn)
        if not m:
            continue
        with open(os.path.join(directory, fn), encoding="utf-8") as f:
            text = f.read()
        lines = text.split("\n")
        if not lines[0].startswith("$ "):
            raise SystemExit(f"{fn}: first line is not a command")
        cmd = lines[0][2:]
        step = Step(int(m.group(1)), fn[:-4], "", cmd)
        if cmd.startswith("curl "):
            step.kind = "curl"
            step.status = lines[1]
            i = 2
            while i < len(lines) and lines[i] != "":
                name, _, value = lines[i].partition(": ")
                step.headers.append((name, value))
                i += 1
            step.body = "\n".join(lines[i + 1:]).strip("\n")
        elif cmd.startswith("baremetal "):
            step.kind = "cli"
            for i in range(1, len(lines)):
                m2 = re.match(r"^\[exit code: (\d+)\]$", lines[i])
                if m2:
                    step.exit_code = int(m2.group(1))
                    step.output = "\n".join(lines[1:i]).strip("\n")
                    break
            else:
                raise SystemExit(f"{fn}: no [exit code: N] line")
        else:
            raise SystemExit(f"{fn}: unknown command kind: {cmd[:40]}")
        steps.append(step)
    if not steps:
        raise SystemExit(f"no NN-*.txt transcripts in {directory}")
    return steps


def literal_uuids(steps):
    """UUIDs first introduced by a command (instance/VIF ids): not renamed."""
    seen, literal = set(), set()
    for st in steps:
        for u in UUID_RE.findall(st.cmd):
            if u not in seen:
                literal.add(u)
                seen.add(u)
        for u in UUID_RE.findall(st.output + st.body +
                                 " ".join(v for _, v in st.headers)):
            seen.add(u)
    return literal


# --------------------------------------------------------------------------
# normalisation

class Normaliser:
    def __init__(self, netloc, conductor, literal):
        self.netloc = netloc
        self.conductor = conductor
        self.literal = literal
        self.to_ph = {}     # real uuid -> placeholder
        self.from_ph = {}   # placeholder -> real uuid

    def uuid(self, u):
        if u in self.literal:
            return u
        if u not in self.to_ph:
            ph = f"<uuid-{len(self.to_ph) + 1}>"
            self.to_ph[u] = ph
            self.from_ph[ph] = u
        return self.to_ph[u]

    def text(self, s):
        if self.netloc:
            s = s.replace(self.netloc, "<host:port>")
        if self.conductor:
            s = re.sub(r"(?<![\w.-])" + re.escape(self.conductor) +
                       r"(?![\w.-])", "<conductor>", s)
        s = REQ_ID_RE.sub("<request-id>", s)
        s = ISO_TS_RE.sub("<timestamp>", s)
        s = LOG_TS_RE.sub("<timestamp>", s)
        s = HTTP_DATE_RE.sub("<http-date>", s)
        return UUID_RE.sub(lambda m: self.uuid(m.group(0)), s)


def translate_cmd(cmd, up, ours, up_netloc, our_netloc):
    """Upstream command -> our command (endpoint and generated uuids)."""
    cmd = cmd.replace(up_netloc, our_netloc)

    def repl(m):
        u = m.group(0)
        ph = up.to_ph.get(u)
        if ph is None:
            return u  # literal (or never seen: leave as is)
        real = ours.from_ph.get(ph)
        if real is None:
            raise StepError(f"command needs {ph} ({u} upstream) but our "
                            f"server never returned a {ph}")
        return real
    return UUID_RE.sub(repl, cmd)


class StepError(Exception):
    pass


# --------------------------------------------------------------------------
# comparison

@dataclass
class Diff:
    field: str
    ours: object
    upstream: object
    allowed_by: str | None = None


def _short(v, limit=300):
    s = v if isinstance(v, str) else json.dumps(v)
    return s if len(s) <= limit else s[:limit] + f"...(+{len(s) - limit})"


def compare_json(ours, up, path, diffs):
    if isinstance(up, dict) and isinstance(ours, dict):
        for k in up:
            if k not in ours:
                diffs.append(Diff(f"{path}.{k}", "<missing>", up[k]))
        for k in ours:
            if k not in up:
                diffs.append(Diff(f"{path}.{k}", ours[k], "<absent>"))
        for k in up:
            if k in ours:
                compare_value(ours[k], up[k], f"{path}.{k}", k, diffs)
        if set(ours) == set(up) and list(ours) != list(up):
            ok, uk = list(ours), list(up)
            i = next(j for j in range(len(uk)) if ok[j] != uk[j])
            diffs.append(Diff(f"{path} (key order from key #{i + 1})",
                              ", ".join(ok[i:i + 6]) + " ...",
                              ", ".join(uk[i:i + 6]) + " ..."))
    elif isinstance(up, list) and isinstance(ours, list):
        if len(ours) != len(up):
            diffs.append(Diff(f"{path} (length)", len(ours), len(up)))
        for i, (o, u) in enumerate(zip(ours, up)):
            compare_value(o, u, f"{path}[{i}]", None, diffs)
    else:
        compare_value(ours, up, path, None, diffs)


def compare_value(ours, up, path, key, diffs):
    if isinstance(up, (dict, list)) and type(ours) is type(up):
        compare_json(ours, up, path, diffs)
        return
    if isinstance(up, str) and isinstance(ours, str):
        if key == "error_message":
            try:
                uj, oj = json.loads(up), json.loads(ours)
            except ValueError:
                pass
            else:
                compare_json(oj, uj, path + "<json>", diffs)
                return
        if key and ENABLED_IFACES_RE.match(key):
            if sorted(ours.split(", ")) != sorted(up.split(", ")):
                diffs.append(Diff(path + " (as a set)", ours, up))
            return
    if type(ours) is not type(up) or ours != up:
        diffs.append(Diff(path, ours, up))


def compare_text(ours, up, what, diffs):
    ol, ul = ours.split("\n"), up.split("\n")
    for i in range(max(len(ol), len(ul))):
        o = ol[i] if i < len(ol) else "<no line>"
        u = ul[i] if i < len(ul) else "<no line>"
        if o != u:
            diffs.append(Diff(f"{what} line {i + 1}", o, u))


def compare_output(ours, up, what, diffs, check_bytes):
    """JSON field by field when upstream's output is JSON, else by line.
    check_bytes: also compare the JSON text (server-formatted bodies; the
    CLI formats its own output, so equal data there means equal text)."""
    if up[:1] in ("{", "["):
        try:
            uj = json.loads(up)
        except ValueError:
            uj = None
        if uj is not None:
            try:
                oj = json.loads(ours)
            except ValueError:
                diffs.append(Diff(f"{what} (not JSON)", ours, up))
                return
            n = len(diffs)
            compare_json(oj, uj, "$", diffs)
            for d in diffs[n:]:
                d.field = f"{what} {d.field}" if what != "output" else d.field
            if check_bytes and len(diffs) == n and ours != up:
                compare_text(ours, up, f"{what} bytes", diffs)
            return
    compare_text(ours, up, what, diffs)


# --------------------------------------------------------------------------
# running commands

class CliRunner:
    """Runs the `baremetal` shell. Default: fork from a process that already
    imported ironicclient (same code path as the console script, a fresh
    process per command, ~0.7 s faster each); --exec runs the binary."""

    def __init__(self, exec_bin=None, fast=True):
        self.exec_bin = exec_bin
        self.fast = fast
        if not exec_bin:
            import ironicclient.shell  # noqa: F401  (preload)
            import ironicclient.osc.v1.baremetal_node  # noqa: F401
            import ironicclient.osc.v1.baremetal_port  # noqa: F401
            import ironicclient.osc.v1.baremetal_driver  # noqa: F401
            import ironicclient.v1.client  # noqa: F401
            import cliff.formatters.json_format  # noqa: F401
            import cliff.formatters.table  # noqa: F401
            import keystoneauth1.loading  # noqa: F401

    def run(self, args, env, cwd, timeout):
        fd, path = tempfile.mkstemp(prefix="bm-out-")
        try:
            if self.exec_bin:
                p = subprocess.run([self.exec_bin] + args, stdout=fd,
                                   stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, env=env, cwd=cwd,
                                   timeout=timeout)
                rc = p.returncode
            else:
                rc = self._fork(args, env, cwd, fd, timeout, self.fast)
            os.close(fd)
            fd = -1
            with open(path, encoding="utf-8", errors="replace") as f:
                return rc, f.read()
        finally:
            if fd >= 0:
                os.close(fd)
            os.unlink(path)

    @staticmethod
    def _fork(args, env, cwd, fd, timeout, fast):
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # child: become `baremetal ARGS`
            rc = 1
            try:
                os.setsid()
                os.chdir(cwd)
                os.environ.clear()
                os.environ.update(env)
                null = os.open(os.devnull, os.O_RDONLY)
                os.dup2(null, 0)
                os.dup2(fd, 1)
                os.dup2(fd, 2)
                # what the interpreter would set up for a non-tty 2>&1
                sys.stdin = sys.__stdin__ = open(0, closefd=False)
                sys.stdout = sys.__stdout__ = open(
                    1, "w", encoding="utf-8", closefd=False)
                sys.stderr = sys.__stderr__ = io.TextIOWrapper(
                    open(2, "wb", buffering=0, closefd=False),
                    encoding="utf-8", errors="backslashreplace",
                    line_buffering=True)
                sys.argv = ["baremetal"] + list(args)
                if fast:
                    _shorten_client_waits()
                from ironicclient.shell import main
                try:
                    rc = main(list(args))
                except SystemExit as e:
                    if e.code is None:
                        rc = 0
                    elif isinstance(e.code, int):
                        rc = e.code
                    else:
                        print(e.code, file=sys.stderr)
                        rc = 1
            except BaseException:
                traceback.print_exc()
                rc = 1
            finally:
                try:
                    sys.stdout.flush()
                    sys.stderr.flush()
                finally:
                    os._exit(rc if isinstance(rc, int) else 1)
        deadline = time.monotonic() + timeout
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return os.waitstatus_to_exitcode(status)
            if time.monotonic() > deadline:
                os.killpg(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                raise StepError(f"command timed out after {timeout}s")
            time.sleep(0.02)


def _shorten_client_waits():
    """Poll --wait every 0.25 s instead of 10 s and retry 409s every 0.1 s
    instead of 2 s. Only the timing of the client's requests changes, not
    what it prints; upstream's --wait steps then take ~0.3 s instead of 10 s.
    --real-timing turns this off."""
    from ironicclient.common import http as ic_http
    from ironicclient.v1 import utils as v1_utils
    ic_http.DEFAULT_RETRY_INTERVAL = 0.1
    for wait_args in v1_utils.PROVISION_ACTIONS.values():
        if wait_args and "poll_interval" in wait_args:
            wait_args["poll_interval"] = 0.25


def run_curl(cmd, timeout=60):
    """Send what `curl -si -X M URL [-H h]... [-d body]` would send."""
    argv = shlex.split(cmd)
    assert argv[0] == "curl"
    method, url, headers, body = "GET", None, [], None
    i = 1
    while i < len(argv):
        a = argv[i]
        if a == "-si":
            pass
        elif a == "-X":
            i += 1
            method = argv[i]
        elif a == "-H":
            i += 1
            name, _, value = argv[i].partition(":")
            headers.append((name.strip(), value.strip()))
        elif a == "-d":
            i += 1
            body = argv[i].encode()
        elif not a.startswith("-"):
            url = a
        else:
            raise StepError(f"unsupported curl option {a}")
        i += 1
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port or 80,
                                      timeout=timeout)
    path = u.path + ("?" + u.query if u.query else "")
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        conn.putheader("User-Agent", "curl/7.88.1")
        conn.putheader("Accept", "*/*")
        for n, v in headers:
            conn.putheader(n, v)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        r = conn.getresponse()
        raw = r.read()
        status = f"HTTP/{r.version // 10}.{r.version % 10} {r.status} {r.reason}"
        return status, r.getheaders(), raw
    finally:
        conn.close()


def http_json(endpoint, method, path, body=None, version=API_LATEST):
    u = urllib.parse.urlsplit(endpoint)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    try:
        hdrs = {"X-OpenStack-Ironic-API-Version": version}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            hdrs["Content-Type"] = "application/json"
        conn.request(method, path, data, hdrs)
        r = conn.getresponse()
        raw = r.read()
        try:
            return r.status, json.loads(raw) if raw else None
        except ValueError:
            return r.status, None
    finally:
        conn.close()


# --------------------------------------------------------------------------
# server

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """Starts `cmd` (a shell command; {port} and {tmp} are substituted) in its
    own process group and stops that group on close()."""

    def __init__(self, cmd, startup_timeout, cwd=REPO):
        self.tmp = tempfile.mkdtemp(prefix="ferrite-bm-")
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.cmd = cmd.replace("{port}", str(self.port)).replace(
            "{tmp}", self.tmp)
        self.log_path = os.path.join(self.tmp, "server.log")
        self.log = open(self.log_path, "wb")
        print(f"starting server: {self.cmd}", flush=True)
        self.proc = subprocess.Popen(
            ["bash", "-c", self.cmd], cwd=cwd, stdout=self.log,
            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)
        t0 = time.monotonic()
        while True:
            if self.proc.poll() is not None:
                self.dump_log()
                rc = self.proc.returncode
                self.close()
                raise SystemExit(f"server exited with {rc} before answering")
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port,
                                               timeout=2)
                c.request("GET", "/")
                r = c.getresponse()
                r.read()
                c.close()
                if r.status < 500:
                    break
            except OSError:
                pass
            if time.monotonic() - t0 > startup_timeout:
                self.dump_log()
                self.close()
                raise SystemExit(f"server did not answer GET / within "
                                 f"{startup_timeout}s")
            time.sleep(0.2)
        print(f"server up at {self.endpoint} after "
              f"{time.monotonic() - t0:.1f}s", flush=True)

    def dump_log(self, lines=40):
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                tail = f.read().splitlines()[-lines:]
        except OSError:
            return
        print(f"--- last {len(tail)} lines of server output "
              f"({self.log_path}) ---")
        print("\n".join(tail))

    def close(self, dump=False):
        """Stop the server's process group; remove its temp dir."""
        if dump:
            try:
                self.dump_log(20)
            except OSError:
                pass
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        else:
            # the group may outlive its leader (bash -c)
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except (ProcessLookupError, PermissionError):
                pass
        self.log.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


def default_server_cmd():
    return os.environ.get("FERRITE_CONDUCTOR_CMD", DEFAULT_SERVER_CMD)


def find_transcripts(explicit):
    cands = [explicit] if explicit else [
        os.environ.get("FERRITE_IRONIC_TRANSCRIPTS"),
        os.path.join(REPO, "..", "shared", "reference",
                     "ironic-39-transcripts"),
        os.path.join(REPO, "shared", "reference", "ironic-39-transcripts"),
        "/work/shared/reference/ironic-39-transcripts",
    ]
    for c in cands:
        if c and os.path.isdir(c):
            return os.path.abspath(c)
    raise SystemExit("cannot find ironic-39-transcripts; use --transcripts")


# --------------------------------------------------------------------------
# allowlist

@dataclass
class AllowEntry:
    step: str
    field: str
    why: str
    line: int
    used: bool = False


def load_allowlist(path):
    entries = []
    if not path or not os.path.exists(path):
        return entries
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            s = line.strip()
            if not s or s.startswith("#"):
                continue
            m = re.match(r'^(\S+)\s+(?:"([^"]+)"|(\S+))\s+(.*\S)$', s)
            if not m or len(m.group(4).split()) < 3:
                raise SystemExit(f"{path}:{n}: want `STEP FIELD-GLOB "
                                 "one-line justification` (quote a field "
                                 "glob that has spaces)")
            entries.append(AllowEntry(m.group(1), m.group(2) or m.group(3),
                                      m.group(4), n))
    return entries


def allowed(entries, step, d):
    for e in entries:
        if e.step not in ("*", str(step.num), f"{step.num:02d}", step.name):
            continue
        if fnmatch.fnmatchcase(d.field, e.field):
            e.used = True
            return e
    return None


# --------------------------------------------------------------------------
# main

def parse_only(spec):
    nums = set()
    for part in spec.split(","):
        part = part.strip()
        if "-" in part:
            a, b = part.split("-", 1)
            nums.update(range(int(a), int(b) + 1))
        elif part:
            nums.add(int(part))
    return nums


def make_configdrive_files(workdir, node_uuid):
    """./cd (a config drive tree) and ./cd.iso.gz.b64 (its gzipped, base64
    ISO) as used by steps 46 and 48; the same layout upstream used."""
    d = os.path.join(workdir, "cd", "openstack", "latest")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "meta_data.json"), "w") as f:
        json.dump({"uuid": node_uuid, "hostname": NODE_NAME,
                   "name": NODE_NAME}, f)
        f.write("\n")
    with open(os.path.join(d, "user_data"), "w") as f:
        f.write(f"#cloud-config\nhostname: {NODE_NAME}\n")
    try:
        from ironicclient.common import utils as icu
        blob = icu.make_configdrive(os.path.join(workdir, "cd"))
    except Exception as e:  # noqa: BLE001
        print(f"warning: cannot build cd.iso.gz.b64: {e}")
        return
    with open(os.path.join(workdir, "cd.iso.gz.b64"), "wb") as f:
        f.write(blob if isinstance(blob, bytes) else blob.encode())


def remove_leftovers(endpoint):
    st, node = http_json(endpoint, "GET", f"/v1/nodes/{NODE_NAME}")
    if st != 200 or not isinstance(node, dict):
        return
    print(f"note: deleting leftover node {NODE_NAME} ({node.get('uuid')})")
    http_json(endpoint, "PUT", f"/v1/nodes/{NODE_NAME}/maintenance",
              {"reason": "baremetal-cli-check cleanup"})
    http_json(endpoint, "DELETE", f"/v1/nodes/{NODE_NAME}")


def detect_conductor(endpoint):
    try:
        st, body = http_json(endpoint, "GET", "/v1/drivers")
        hosts = body["drivers"][0]["hosts"]
        if hosts:
            return hosts[0]
    except Exception:  # noqa: BLE001
        pass
    try:
        st, body = http_json(endpoint, "GET", "/v1/conductors")
        return body["conductors"][0]["hostname"]
    except Exception:  # noqa: BLE001
        return None


def cli_env(endpoint):
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    env.update(OS_AUTH_TYPE="none", OS_ENDPOINT=endpoint)
    return env


def execute_step(step, args, ctx):
    """Run one step on our server; returns (diffs, our_transcript_text)."""
    cmd = translate_cmd(step.cmd, ctx["up"], ctx["ours"], ctx["up_netloc"],
                        ctx["our_netloc"])
    diffs = []
    up, ours = ctx["up"], ctx["ours"]
    if step.kind == "cli":
        argv = shlex.split(cmd)[1:]
        rc, out = ctx["cli"].run(argv, ctx["env"], ctx["workdir"],
                                 args.step_timeout)
        out = out.strip("\n")
        saved = f"$ {cmd}\n{out + chr(10) if out else ''}[exit code: {rc}]\n"
        up_out, our_out = up.text(step.output), ours.text(out)
        if rc != step.exit_code:
            diffs.append(Diff("exit code", rc, step.exit_code))
        # The transcripts were captured with --debug, whose log format puts
        # "<time> LEVEL: logger " before the client's own log lines (the
        # ironicclient retry message of step 17); without --debug the CLI
        # prints the bare message, which is what we compare.
        up_out = DEBUG_LOG_PREFIX_RE.sub("", up_out)
        compare_output(our_out, up_out, "output", diffs, False)
        return diffs, saved
    status, headers, raw = run_curl(cmd, args.step_timeout)
    body = raw.decode("utf-8", errors="replace")
    saved = (f"$ {cmd}\n{status}\n" +
             "".join(f"{n}: {v}\n" for n, v in headers) + f"\n{body}\n")
    # normalise in document order: status, headers, body (as upstream)
    up_hdrs = [(n, up.text(v)) for n, v in step.headers]
    our_hdrs = [(n, ours.text(v)) for n, v in headers]
    up_body, our_body = up.text(step.body), ours.text(body.strip("\n"))
    if status != step.status:
        diffs.append(Diff("status", status, step.status))
    ud = {n.lower(): (n, v) for n, v in up_hdrs}
    od = {}
    for n, v in our_hdrs:
        if n.lower() in od:
            od[n.lower()] = (n, od[n.lower()][1] + ", " + v)
        else:
            od[n.lower()] = (n, v)
    for k, (n, v) in ud.items():
        if k not in od:
            diffs.append(Diff(f"header {n}", "<missing>", v))
        elif k != "content-length" and od[k][1] != v:
            diffs.append(Diff(f"header {n}", od[k][1], v))
    for k, (n, v) in od.items():
        if k not in ud and k not in HOP_BY_HOP:
            diffs.append(Diff(f"header {n}", v, "<absent>"))
    if "content-length" in od and od["content-length"][1] != str(len(raw)):
        diffs.append(Diff("header Content-Length (vs body received)",
                          od["content-length"][1], str(len(raw))))
    if not up_body:
        if our_body:
            diffs.append(Diff("body", our_body, "<empty>"))
    else:
        compare_output(our_body, up_body, "body", diffs, True)
    return diffs, saved


def exit_on_signals():
    """Turn SIGTERM/SIGHUP into SystemExit so `finally` stops the server."""
    def handler(signum, frame):
        raise SystemExit(128 + signum)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, handler)


def main():
    exit_on_signals()
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--endpoint", help="test an already running server "
                   "(must hold no nodes), e.g. http://127.0.0.1:6385")
    g.add_argument("--server-cmd", help="shell command starting the server; "
                   "{port} and {tmp} are substituted. Default (no --endpoint):"
                   f" $FERRITE_CONDUCTOR_CMD or '{DEFAULT_SERVER_CMD}'")
    ap.add_argument("--startup-timeout", type=float, default=600,
                    help="seconds to wait for the server to answer GET / "
                    "(includes cargo's build; default 600)")
    ap.add_argument("--only", help="steps to check, e.g. 17 or 6,28-31; "
                    "earlier steps still run (unreported) to set up state")
    ap.add_argument("--keep-going", action="store_true",
                    help="continue after a failing step")
    ap.add_argument("--transcripts", help="transcript directory")
    ap.add_argument("--allowlist",
                    default=os.path.join(HERE, "baremetal-cli-allowlist.txt"))
    ap.add_argument("--conductor-host", help="our conductor hostname "
                    "(default: detected from GET /v1/drivers)")
    ap.add_argument("--exec", dest="exec_bin", nargs="?", const="auto",
                    help="run the `baremetal` binary per step instead of "
                    "forking a preloaded client (slower, same behaviour)")
    ap.add_argument("--real-timing", action="store_true",
                    help="keep the client's own --wait poll (10 s) and 409 "
                    "retry (2 s) intervals (always so with --exec)")
    ap.add_argument("--save", metavar="DIR",
                    help="write our raw outputs as NN-name.txt into DIR")
    ap.add_argument("--step-timeout", type=float, default=300)
    ap.add_argument("-v", "--verbose", action="store_true",
                    help="print our raw output of failing steps")
    args = ap.parse_args()

    t_start = time.monotonic()
    tdir = find_transcripts(args.transcripts)
    steps = load_transcripts(tdir)
    allow = load_allowlist(args.allowlist)
    only = parse_only(args.only) if args.only else None
    last = max(only) if only else steps[-1].num

    up_netloc = urllib.parse.urlsplit(
        shlex.split(steps[0].cmd)[-1]).netloc if steps[0].kind == "curl" \
        else "127.0.0.1:16385"

    server = None
    if args.endpoint:
        endpoint = args.endpoint.rstrip("/")
    else:
        server = Server(args.server_cmd or default_server_cmd(),
                        args.startup_timeout)
        endpoint = server.endpoint
    workdir = tempfile.mkdtemp(prefix="ferrite-bm-cwd-")
    failed = passed = 0
    try:
        remove_leftovers(endpoint)
        our_netloc = urllib.parse.urlsplit(endpoint).netloc
        conductor = args.conductor_host or detect_conductor(endpoint)
        print(f"transcripts: {tdir}\nendpoint: {endpoint}  conductor host: "
              f"{conductor or '(unknown)'}", flush=True)
        literal = literal_uuids(steps)
        exec_bin = None
        if args.exec_bin:
            exec_bin = args.exec_bin if args.exec_bin != "auto" else \
                os.path.join(os.path.dirname(sys.executable), "baremetal")
        ctx = dict(
            up=Normaliser(up_netloc, UPSTREAM_CONDUCTOR, literal),
            ours=Normaliser(our_netloc, conductor, literal),
            up_netloc=up_netloc, our_netloc=our_netloc,
            cli=CliRunner(exec_bin, not args.real_timing), env=cli_env(endpoint), workdir=workdir)
        if args.save:
            os.makedirs(args.save, exist_ok=True)
        made_cd = False
        for step in steps:
            if step.num > last:
                break
            report = only is None or step.num in only
            if not made_cd and "<uuid-1>" in ctx["ours"].from_ph:
                make_configdrive_files(workdir, ctx["ours"].from_ph["<uuid-1>"])
                made_cd = True
            t0 = time.monotonic()
            saved = None
            try:
                diffs, saved = execute_step(step, args, ctx)
            except StepError as e:
                diffs = [Diff("step", f"error: {e}", "(runs)")]
            except (OSError, http.client.HTTPException) as e:
                diffs = [Diff("step", f"error: {e!r}", "(runs)")]
            dt = time.monotonic() - t0
            if args.save and saved is not None:
                with open(os.path.join(args.save, step.name + ".txt"),
                          "w") as f:
                    f.write(saved)
            for d in diffs:
                e = allowed(allow, step, d)
                if e:
                    d.allowed_by = f"allowlist line {e.line}: {e.why}"
            bad = [d for d in diffs if not d.allowed_by]
            if not report:
                if bad:
                    print(f"setup step {step.name} differs ({len(bad)} "
                          "fields); later steps may fail because of it")
                continue
            if bad:
                failed += 1
                print(f"FAIL {step.name} ({dt:.1f}s)")
                print(f"     $ {step.cmd[:200]}")
            else:
                passed += 1
                print(f"PASS {step.name} ({dt:.1f}s)")
            for d in diffs:
                tag = "allowed" if d.allowed_by else "DIFF"
                print(f"     {tag} {d.field}: ours={_short(d.ours)} "
                      f"upstream={_short(d.upstream)}")
                if d.allowed_by:
                    print(f"       ({d.allowed_by})")
            if bad and args.verbose and saved:
                print("     --- ours (raw) ---")
                print("\n".join("     | " + ln
                                for ln in saved.splitlines()[:80]))
            sys.stdout.flush()
            if bad and not args.keep_going:
                print("stopping at the first failing step "
                      "(--keep-going to continue)")
                break
    finally:
        if server:
            server.close(dump=bool(failed))
        shutil.rmtree(workdir, ignore_errors=True)
    for e in allow:
        if not e.used and only is None:
            print(f"note: allowlist line {e.line} ({e.step} {e.field}) "
                  "matched nothing")
    print(f"time: {time.monotonic() - t_start:.1f}s")
    print(f"baremetal-cli-check: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
