"""openstacksdk's compute calls against our compute API.

Starts `ferrite up --fleet 2` (simulated machines: every boot is a real
deploy of the demo image) on free ports (or uses --compute-url), then
drives flavors, images, create_server/wait_for_server/delete_server through
openstacksdk's compute and image proxies. Exits non-zero on any failure.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

import openstack
import openstack.image.v2.image


def start_stack(command):
    data = tempfile.mkdtemp(prefix="ferrite-sdk-")
    args = command + ["up", "--data-dir", data, "--fleet", "2",
                      "--placement-port", "0", "--conductor-port", "0", "--compute-port", "0"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    urls = {}
    deadline = time.time() + 600
    for line in proc.stdout:
        words = line.split()
        if len(words) >= 2 and words[0] in ("placement", "baremetal", "compute"):
            urls[words[0]] = words[1]
        if line.startswith("ready:"):
            break
        if time.time() > deadline:
            raise SystemExit("ferrite up did not get ready")
    if "compute" not in urls:
        raise SystemExit("ferrite up exited early")
    return proc, urls["compute"], data


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--compute-url")
    parser.add_argument("--ferrite", default=os.environ.get("FERRITE_BIN"))
    args = parser.parse_args()
    proc = None
    data = None
    if args.compute_url:
        compute = args.compute_url
    else:
        command = [args.ferrite] if args.ferrite else ["cargo", "run", "-q", "-p", "ferrite", "--"]
        proc, compute, data = start_stack(command)
    results = []

    def check(name, condition, detail=""):
        results.append((name, bool(condition)))
        print(("PASS " if condition else "FAIL ") + name + ("" if condition else f": {detail}"))

    try:
        conn = openstack.connection.Connection(
            auth_type="admin_token",
            auth={"endpoint": compute, "token": "admin:demo"},
            compute_endpoint_override=compute + "/v2.1",
            compute_api_version="2.61",
        )
        flavor = conn.compute.create_flavor(name="sdk-bm", ram=1024, vcpus=1, disk=10)
        conn.compute.create_flavor_extra_specs(flavor, {
            "resources:CUSTOM_BAREMETAL": "1", "resources:VCPU": "0",
            "resources:MEMORY_MB": "0", "resources:DISK_GB": "0",
        })
        names = [f.name for f in conn.compute.flavors()]
        check("flavors lists the new flavor", "sdk-bm" in names, names)
        fetched = conn.compute.get_flavor(flavor.id)
        check("get_flavor shows extra specs",
              fetched.extra_specs.get("resources:CUSTOM_BAREMETAL") == "1", fetched.extra_specs)
        # Ferrite's registry takes a record (a URL), not an upload, and is
        # not a Glance endpoint the image proxy could discover: register the
        # image with a plain POST through the SDK's authenticated session.
        # `ferrite up` with its simulated fleet serves a bootable demo image
        # (registered as ferrite-demo): point the record at the same bytes
        # so the server is a real deploy. Against a stack without it the
        # URL is a placeholder (fake-hardware nodes download nothing).
        record = {"name": "sdk-img", "disk_format": "raw", "container_format": "bare",
                  "url": "http://127.0.0.1:9/sdk.raw"}
        listed = conn.session.get(compute + "/v2/images").json().get("images", [])
        demo = next((i for i in listed if i.get("name") == "ferrite-demo"), None)
        if demo and demo.get("os_hash_value"):
            record.update(url=demo["direct_url"], os_hash_algo=demo["os_hash_algo"],
                          os_hash_value=demo["os_hash_value"])
        if proc:
            check("the stack registered its demo image", record["url"] != "http://127.0.0.1:9/sdk.raw", listed)
        created = conn.session.post(compute + "/v2/images", json=record).json()
        image = conn.session.get(compute + "/v2/images/" + created["id"]).json()
        check("image registered", image.get("name") == "sdk-img", image)
        image = openstack.image.v2.image.Image(id=created["id"])
        server = conn.compute.create_server(name="sdk-server", flavor_id=flavor.id,
                                            image_id=image.id, networks="none")
        server = conn.compute.wait_for_server(server, status="ACTIVE", wait=120, interval=1)
        check("create_server + wait_for_server reach ACTIVE", server.status == "ACTIVE", server.status)
        check("the server runs on a node", bool(server.hypervisor_hostname), server)
        listed = [s.id for s in conn.compute.servers()]
        check("servers lists it", server.id in listed, listed)
        conn.compute.reboot_server(server, "SOFT")
        server = conn.compute.wait_for_server(server, status="ACTIVE", wait=60, interval=1)
        check("reboot_server", server.status == "ACTIVE", server.status)
        conn.compute.delete_server(server)
        conn.compute.wait_for_delete(server, wait=120, interval=1)
        check("delete_server + wait_for_delete", conn.compute.find_server(server.id) is None)
        conn.compute.delete_flavor(flavor)
        check("delete_flavor", conn.compute.find_flavor("sdk-bm") is None)
    except Exception as err:  # report instead of a traceback-only exit
        check("no exception", False, repr(err))
    finally:
        if proc:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        if data:
            shutil.rmtree(data, ignore_errors=True)
    failed = sum(1 for _, ok in results if not ok)
    print(f"openstacksdk-compute-check: {len(results) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
