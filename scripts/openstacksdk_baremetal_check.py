"""Drive a Bare Metal API server through a whole node lifecycle with
openstacksdk's `conn.baremetal` proxy (noauth) and assert the states and
fields upstream Ironic 39 gives at each step (fake-hardware, noop network).

Run through scripts/openstacksdk-baremetal-check (it provides the venv).
Exits non-zero when any check fails.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from baremetal_cli_check import (  # noqa: E402
    Server, default_server_cmd, exit_on_signals)

import openstack.connection  # noqa: E402
from openstack import exceptions as os_exc  # noqa: E402
from openstack.baremetal import configdrive as os_configdrive  # noqa: E402

NODE = "sdk-node-1"
MAC = "52:54:00:5d:0c:01"
INSTANCE_1 = "11111111-1111-4111-8111-111111111111"
INSTANCE_2 = "22222222-2222-4222-8222-222222222222"
VIF = "33333333-3333-4333-8333-333333333333"
IMAGE = "http://127.0.0.1:18010/images/fake.qcow2"
CHECKSUM = "d41d8cd98f00b204e9800998ecf8427e"
ALL_IFACES = ["bios", "boot", "console", "deploy", "firmware", "inspect",
              "management", "network", "power", "raid", "rescue", "storage"]
WAIT = 120


class Failed(Exception):
    pass


class Checker:
    def __init__(self):
        self.passed = 0
        self.failed = 0
        self.step_failures = []

    def eq(self, what, ours, want):
        if ours == want:
            self.passed += 1
        else:
            self.failed += 1
            self.step_failures.append(f"{what}: got {ours!r}, want {want!r}")

    def true(self, what, cond, detail=""):
        if cond:
            self.passed += 1
        else:
            self.failed += 1
            self.step_failures.append(f"{what}: {detail or 'not true'}")


def wait_power_settled(bm, node_id, timeout=WAIT):
    deadline = time.monotonic() + timeout
    while True:
        n = bm.get_node(node_id)
        if n.target_power_state is None or time.monotonic() > deadline:
            return n
        time.sleep(0.25)


def provision_updated_at(bm, node_id):
    """Not a field of the sdk's Node: read it from the raw API."""
    r = bm.get(f"nodes/{node_id}",
               headers={"X-OpenStack-Ironic-API-Version": "1.1"})
    return r.json().get("provision_updated_at")


def node_history(bm, node_id):
    try:
        r = bm.get(f"nodes/{node_id}/history",
                   headers={"X-OpenStack-Ironic-API-Version": "1.78"})
        return r.json().get("history", [])
    except Exception:  # noqa: BLE001
        return []


def lifecycle(conn, ck, tmp):
    """Yields (step name, callable) pairs run in order."""
    bm = conn.baremetal
    st = {}

    def drivers():
        names = sorted(d.name for d in bm.drivers())
        ck.true("drivers include fake-hardware", "fake-hardware" in names,
                f"drivers={names}")

    def create_node():
        n = bm.create_node(driver="fake-hardware", name=NODE,
                           resource_class="baremetal-gold",
                           properties={"cpus": 8, "memory_mb": 16384,
                                       "local_gb": 100})
        st["id"] = n.id
        ck.true("node id is a uuid", isinstance(n.id, str) and len(n.id) == 36,
                f"id={n.id!r}")
        ck.eq("name", n.name, NODE)
        ck.eq("driver", n.driver, "fake-hardware")
        ck.eq("resource_class", n.resource_class, "baremetal-gold")
        ck.eq("provision_state", n.provision_state, "enroll")
        ck.eq("target_provision_state", n.target_provision_state, None)
        ck.eq("power_state", n.power_state, None)
        ck.eq("is_maintenance", n.is_maintenance, False)
        ck.eq("instance_id", n.instance_id, None)
        ck.eq("properties", n.properties,
              {"cpus": 8, "memory_mb": 16384, "local_gb": 100})
        for iface in ALL_IFACES:
            want = "noop" if iface in ("network", "storage") else "fake"
            ck.eq(f"{iface}_interface",
                  getattr(n, f"{iface}_interface"), want)
        g = bm.get_node(NODE)
        ck.eq("get_node by name -> id", g.id, n.id)

    def create_port():
        p = bm.create_port(node_id=st["id"], address=MAC)
        st["port"] = p.id
        ck.eq("port.node_id", p.node_id, st["id"])
        ck.eq("port.address", p.address, MAC)
        ck.eq("port.is_pxe_enabled", p.is_pxe_enabled, True)
        ports = list(bm.ports(node=st["id"], details=True))
        ck.eq("ports(node) ids", [x.id for x in ports], [p.id])

    def manage():
        n = bm.set_node_provision_state(st["id"], "manage", wait=True,
                                        timeout=WAIT)
        ck.eq("provision_state after manage", n.provision_state, "manageable")
        n = bm.get_node(st["id"])
        ck.eq("provision_state", n.provision_state, "manageable")
        ck.eq("target_provision_state", n.target_provision_state, None)
        ck.eq("last_error", n.last_error, None)

    def provide():
        n = bm.set_node_provision_state(st["id"], "provide", wait=True,
                                        timeout=WAIT)
        ck.eq("provision_state after provide", n.provision_state, "available")
        n = bm.get_node(st["id"])
        ck.eq("provision_state", n.provision_state, "available")
        ck.eq("target_provision_state", n.target_provision_state, None)
        ck.eq("clean_step", n.clean_step, {})

    def claim():
        n = bm.patch_node(st["id"], [
            {"op": "add", "path": "/instance_info/image_source",
             "value": IMAGE},
            {"op": "add", "path": "/instance_info/image_checksum",
             "value": CHECKSUM},
            {"op": "add", "path": "/instance_info/root_gb", "value": 10},
            {"op": "add", "path": "/instance_uuid", "value": INSTANCE_1},
        ], retry_on_conflict=False)
        ck.eq("instance_id", n.instance_id, INSTANCE_1)
        ck.eq("instance_info", n.instance_info,
              {"image_source": IMAGE, "image_checksum": CHECKSUM,
               "root_gb": 10})

    def claim_conflict():
        try:
            bm.patch_node(st["id"], [{"op": "replace", "path":
                                      "/instance_uuid", "value": INSTANCE_2}],
                          retry_on_conflict=False)
        except os_exc.ConflictException as e:
            ck.eq("409 status", e.status_code, 409)
            ck.true("409 message", f"is associated with instance {INSTANCE_1}"
                    in str(e), f"message={e}")
        else:
            ck.true("different instance_uuid -> ConflictException", False,
                    "the patch succeeded")
        n = bm.get_node(st["id"])
        ck.eq("instance_id after the 409", n.instance_id, INSTANCE_1)
        n = bm.patch_node(st["id"], [{"op": "replace", "path":
                                      "/instance_uuid", "value": INSTANCE_1}],
                          retry_on_conflict=False)
        ck.eq("same instance_uuid again -> 200", n.instance_id, INSTANCE_1)

    def vifs():
        r = bm.attach_vif_to_node(st["id"], VIF)
        ck.eq("attach_vif_to_node", r, None)
        # the noop network interface keeps no VIF records: upstream lists []
        ck.eq("list_node_vifs (noop network)", bm.list_node_vifs(st["id"]),
              [])
        ck.eq("detach_vif_from_node", bm.detach_vif_from_node(st["id"], VIF),
              True)
        bm.attach_vif_to_node(st["id"], VIF)

    def validate():
        res = bm.validate_node(st["id"], required=("boot", "deploy", "power"))
        ck.eq("validate interfaces", sorted(res), ALL_IFACES)
        for name in ALL_IFACES:
            if name in res:
                # (the sdk turns upstream's "" reason into None)
                ck.eq(f"validate {name}", (res[name].result, res[name].reason),
                      (True, None))

    def deploy():
        cd = {"meta_data": {"hostname": NODE,
                            "public_keys": {"0": "ssh-ed25519 AAAAC3Nz test"}},
              "user_data": f"#cloud-config\nhostname: {NODE}\n",
              "network_data": {"links": [], "networks": [], "services": []}}
        n = bm.set_node_provision_state(st["id"], "active", config_drive=cd,
                                        wait=True, timeout=WAIT)
        ck.eq("provision_state after deploy", n.provision_state, "active")
        n = bm.get_node(st["id"])
        ck.eq("provision_state", n.provision_state, "active")
        ck.eq("target_provision_state", n.target_provision_state, None)
        ck.eq("instance_info.configdrive (masked)",
              n.instance_info.get("configdrive"), "******")
        ck.eq("instance_info.image_type", n.instance_info.get("image_type"),
              "whole-disk")
        ck.eq("driver_internal_info.is_whole_disk_image",
              n.driver_internal_info.get("is_whole_disk_image"), True)
        ck.eq("deploy_step", n.deploy_step, {})
        ck.eq("instance_id", n.instance_id, INSTANCE_1)
        found = [x.id for x in bm.nodes(instance_id=INSTANCE_1)]
        ck.eq("nodes(instance_id=...)", found, [st["id"]])
        # delete_node() would retry the 409 for ~15 s (the sdk's status code
        # retries), so ask once through the proxy's session.
        r = bm.delete(f"nodes/{st['id']}", raise_exc=False,
                      status_code_retries=0)
        ck.eq("DELETE of an active node -> status", r.status_code, 409)
        ck.true("DELETE of an active node -> message",
                f"is associated with instance {INSTANCE_1}" in r.text,
                f"body={r.text[:300]}")

    def power():
        for target, want in (("power off", "power off"),
                             ("power on", "power on"),
                             ("rebooting", "power on")):
            bm.set_node_power_state(st["id"], target, wait=True, timeout=WAIT)
            # For a reboot the sdk's wait (for "power on") returns at once,
            # as the node is on already; wait for the reboot to finish.
            n = wait_power_settled(bm, st["id"])
            ck.eq(f"power_state after {target}", n.power_state, want)
            ck.eq(f"target_power_state after {target}",
                  n.target_power_state, None)

    def rebuild():
        d = os.path.join(tmp, "cd", "openstack", "latest")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "meta_data.json"), "w") as f:
            f.write('{"uuid": "%s", "hostname": "%s"}\n' % (st["id"], NODE))
        packed = os_configdrive.pack(os.path.join(tmp, "cd"))
        before = provision_updated_at(bm, st["id"])
        n = bm.set_node_provision_state(st["id"], "rebuild",
                                        config_drive=packed, wait=True,
                                        timeout=WAIT)
        ck.eq("provision_state after rebuild", n.provision_state, "active")
        after = provision_updated_at(bm, st["id"])
        n = bm.get_node(st["id"])
        # The wait for "active" starts from "active": it only means something
        # if the server has left "active" before answering 202, as upstream
        # does (the conductor moves the node to "deploying" within the call).
        ck.true("rebuild happened before the wait returned "
                "(provision_updated_at moved)", after != before,
                f"still {before!r}; history: "
                f"{[e.get('event') for e in node_history(bm, st['id'])][-2:]}")
        ck.eq("instance_info.configdrive (masked)",
              n.instance_info.get("configdrive"), "******")
        ck.eq("instance_id", n.instance_id, INSTANCE_1)

    def undeploy():
        n = bm.set_node_provision_state(st["id"], "deleted", wait=True,
                                        timeout=WAIT)
        ck.eq("provision_state after undeploy", n.provision_state,
              "available")
        n = bm.get_node(st["id"])
        ck.eq("provision_state", n.provision_state, "available")
        ck.eq("instance_id", n.instance_id, None)
        ck.eq("instance_info", n.instance_info, {})
        ck.eq("power_state", n.power_state, "power on")
        ck.eq("list_node_vifs", bm.list_node_vifs(st["id"]), [])

    def invalid_transition():
        try:
            bm.set_node_provision_state(st["id"], "provide")
        except os_exc.BadRequestException as e:
            ck.true("provide from available -> 400",
                    'can not be performed on node' in str(e), f"{e}")
        else:
            ck.true("provide from available -> 400", False, "accepted")

    def maintenance():
        bm.set_node_maintenance(st["id"], reason="sdk lifecycle test")
        n = bm.get_node(st["id"])
        ck.eq("is_maintenance", n.is_maintenance, True)
        ck.eq("maintenance_reason", n.maintenance_reason,
              "sdk lifecycle test")
        bm.unset_node_maintenance(st["id"])
        n = bm.get_node(st["id"])
        ck.eq("is_maintenance after unset", n.is_maintenance, False)
        ck.eq("maintenance_reason after unset", n.maintenance_reason, None)

    def delete():
        bm.delete_node(st["id"], ignore_missing=False)
        try:
            bm.get_node(st["id"])
        except os_exc.NotFoundException:
            ck.true("get_node after delete -> 404", True)
        else:
            ck.true("get_node after delete -> 404", False, "still there")
        ck.eq("ports after node delete",
              [p.id for p in bm.ports(address=MAC)], [])

    return [("drivers", drivers), ("create_node", create_node),
            ("create_port", create_port), ("manage", manage),
            ("provide", provide), ("claim (instance_info, instance_uuid)",
                                   claim),
            ("instance_uuid conflict", claim_conflict), ("vifs", vifs),
            ("validate_node", validate),
            ("deploy (config drive dict)", deploy),
            ("power off/on/reboot", power),
            ("rebuild (packed config drive)", rebuild),
            ("undeploy", undeploy),
            ("invalid transition", invalid_transition),
            ("maintenance set/unset", maintenance),
            ("delete_node", delete)]


def cleanup_leftovers(conn):
    try:
        n = conn.baremetal.get_node(NODE)
    except os_exc.NotFoundException:
        return
    print(f"note: deleting leftover node {NODE} ({n.id})")
    conn.baremetal.set_node_maintenance(n, reason="sdk check cleanup")
    conn.baremetal.delete_node(n)


def main():
    exit_on_signals()
    ap = argparse.ArgumentParser(description=__doc__)
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--endpoint", help="an already running server")
    g.add_argument("--server-cmd", help="shell command starting the server "
                   "({port}, {tmp} substituted); default: "
                   "$FERRITE_CONDUCTOR_CMD or cargo run ... conductor")
    ap.add_argument("--startup-timeout", type=float, default=600)
    ap.add_argument("--keep-going", action="store_true",
                    help="run the remaining steps after a failing one")
    args = ap.parse_args()

    t_start = time.monotonic()
    server = None
    if args.endpoint:
        endpoint = args.endpoint.rstrip("/")
    else:
        server = Server(args.server_cmd or default_server_cmd(),
                        args.startup_timeout)
        endpoint = server.endpoint
    tmp = tempfile.mkdtemp(prefix="ferrite-sdk-")
    ck = Checker()
    steps_failed = steps_passed = 0
    try:
        conn = openstack.connection.Connection(
            auth_type="none", baremetal_endpoint_override=endpoint)
        cleanup_leftovers(conn)
        for name, fn in lifecycle(conn, ck, tmp):
            ck.step_failures = []
            t0 = time.monotonic()
            err = None
            try:
                fn()
            except Exception as e:  # noqa: BLE001
                err = f"{type(e).__name__}: {e}"
                ck.failed += 1
                ck.step_failures.append("exception " + err)
                tb = traceback.format_exc().strip().splitlines()[-6:]
            dt = time.monotonic() - t0
            if ck.step_failures:
                steps_failed += 1
                print(f"FAIL {name} ({dt:.1f}s)")
                for f in ck.step_failures:
                    print(f"     {f}")
                if err:
                    print("\n".join("     | " + ln for ln in tb))
                if not args.keep_going:
                    print("stopping at the first failing step "
                          "(--keep-going to continue)")
                    break
            else:
                steps_passed += 1
                print(f"PASS {name} ({dt:.1f}s)")
            sys.stdout.flush()
    finally:
        if server:
            server.close(dump=bool(steps_failed))
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"assertions: {ck.passed} held, {ck.failed} failed; "
          f"time: {time.monotonic() - t_start:.1f}s")
    print(f"openstacksdk-baremetal-check: {steps_passed} passed, "
          f"{steps_failed} failed")
    return 1 if steps_failed else 0


if __name__ == "__main__":
    sys.exit(main())
