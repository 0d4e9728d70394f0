"""Runs osc-placement commands against a fresh Ferrite placement and checks
their output field by field. Prints 'osc-placement: N passed, M failed'."""

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid

binary, openstack = sys.argv[1], sys.argv[2]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


port = free_port()
workdir = tempfile.mkdtemp(prefix="ferrite-osc-")
server = subprocess.Popen(
    [binary, "--bind", f"127.0.0.1:{port}",
     "--database-url", f"sqlite://{workdir}/placement.db?mode=rwc"],
    stdout=subprocess.DEVNULL, stderr=open(os.path.join(workdir, "server.log"), "w"))
endpoint = f"http://127.0.0.1:{port}"
for _ in range(100):
    try:
        urllib.request.urlopen(endpoint + "/", timeout=1)
        break
    except OSError:
        time.sleep(0.1)

passed, failed = 0, []


def osc(*args, version="1.39", formatted=True):
    cmd = [openstack, "--os-auth-type", "admin_token", "--os-token", "admin",
           "--os-endpoint", endpoint, "--os-placement-api-version", version,
           *args, *(["-f", "json"] if formatted else [])]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed: {out.stderr.strip()}")
    return json.loads(out.stdout) if out.stdout.strip() else None


def check(name, fn):
    global passed
    try:
        fn()
        passed += 1
        print(f"ok    {name}")
    except Exception as exc:  # noqa: BLE001 - report every failure
        failed.append(name)
        print(f"FAIL  {name}: {exc}")


def expect(actual, expected, what):
    if actual != expected:
        raise AssertionError(f"{what}: expected {expected!r}, got {actual!r}")


rp = str(uuid.uuid4())
consumer = str(uuid.uuid4())
try:
    def create():
        out = osc("resource", "provider", "create", "--uuid", rp, "node-1")
        expect(out["uuid"], rp, "uuid")
        expect(out["name"], "node-1", "name")
        expect(out["generation"], 0, "generation")
        expect(out["root_provider_uuid"], rp, "root_provider_uuid")
    check("resource provider create", create)

    def listing():
        out = osc("resource", "provider", "list")
        expect([p["uuid"] for p in out], [rp], "listed uuids")
        expect(out[0]["name"], "node-1", "listed name")
    check("resource provider list", listing)

    def show():
        out = osc("resource", "provider", "show", rp)
        expect(out["name"], "node-1", "name")
        expect(out["parent_provider_uuid"], None, "parent")
    check("resource provider show", show)

    def inventory():
        osc("resource", "class", "create", "CUSTOM_BAREMETAL_GOLD", formatted=False)
        out = osc("resource", "provider", "inventory", "set", rp,
                  "--resource", "CUSTOM_BAREMETAL_GOLD=1",
                  "--resource", "VCPU:allocation_ratio=2.0",
                  "--resource", "VCPU=8")
        rows = {row["resource_class"]: row for row in out}
        expect(rows["CUSTOM_BAREMETAL_GOLD"]["total"], 1, "gold total")
        expect(rows["VCPU"]["total"], 8, "vcpu total")
        expect(rows["VCPU"]["allocation_ratio"], 2.0, "vcpu ratio")
        shown = osc("resource", "provider", "inventory", "show", rp, "VCPU")
        expect(shown["max_unit"], 2147483647, "max_unit default")
    check("resource provider inventory set/show", inventory)

    def traits():
        osc("trait", "create", "CUSTOM_GOLD", formatted=False)
        out = osc("resource", "provider", "trait", "set", rp,
                  "--trait", "CUSTOM_GOLD", "--trait", "HW_CPU_X86_AVX2")
        expect(sorted(t["name"] for t in out), ["CUSTOM_GOLD", "HW_CPU_X86_AVX2"], "traits")
    check("resource provider trait set", traits)

    def allocation():
        out = osc("resource", "provider", "allocation", "set", consumer,
                  "--allocation", f"rp={rp},CUSTOM_BAREMETAL_GOLD=1,VCPU=2",
                  "--project-id", "tenant", "--user-id", "someone", "--consumer-type", "INSTANCE")
        row = out[0]
        expect(row["resource_provider"], rp, "provider")
        expect(row["resources"], {"CUSTOM_BAREMETAL_GOLD": 1, "VCPU": 2}, "resources")
        shown = osc("resource", "provider", "allocation", "show", consumer)
        expect(shown[0]["resources"], {"CUSTOM_BAREMETAL_GOLD": 1, "VCPU": 2}, "shown resources")
        expect(shown[0]["project_id"], "tenant", "project")
        usage = osc("resource", "provider", "usage", "show", rp)
        expect({u["resource_class"]: u["usage"] for u in usage},
               {"CUSTOM_BAREMETAL_GOLD": 1, "VCPU": 2}, "usage")
    check("resource provider allocation set/show", allocation)

    def refused():
        try:
            osc("resource", "provider", "allocation", "set", str(uuid.uuid4()),
                "--allocation", f"rp={rp},CUSTOM_BAREMETAL_GOLD=1",
                "--project-id", "tenant", "--user-id", "someone", "--consumer-type", "INSTANCE")
        except RuntimeError as exc:
            if "exceed the capacity" not in str(exc):
                raise
            return
        raise AssertionError("a second claim on a one-unit class must be refused")
    check("double booking refused", refused)
finally:
    server.terminate()
    server.wait(timeout=10)

total = passed + len(failed)
print(f"osc-placement: {passed} passed, {len(failed)} failed")
sys.exit(1 if failed or total == 0 else 0)
