#!/usr/bin/env python3
"""Differential-testing oracle: run upstream Placement's query parsing.

Reads JSON lines {"q": [[key, value], ...], "v": [major, minor]} on stdin
and answers each with one JSON line: {"error": detail} or {"spec": ...},
where the spec is normalised to the shape of ferrite's RequestSpec.  Used
by tests/upstream_oracle.rs when FERRITE_PLACEMENT_PYTHON names a Python
with openstack-placement installed.
"""

import json
import sys

import microversion_parse
import webob
import webob.exc

from placement import lib
from placement import microversion
from placement import util
from placement.handlers import allocation_candidate


def version(major, minor):
    ver = microversion_parse.parse_version_string("%d.%d" % (major, minor))
    ver.max_version = microversion_parse.parse_version_string(
        microversion.max_version_string())
    ver.min_version = microversion_parse.parse_version_string(
        microversion.min_version_string())
    return ver


def make_request(pairs, ver):
    req = webob.Request.blank("/allocation_candidates")
    # Build GET directly so that keys and values reach placement verbatim.
    req.GET.clear()
    for key, value in pairs:
        req.GET.add(key, value)
    req.environ[microversion.MICROVERSION_ENVIRON] = ver
    return req


def parse(pairs, ver):
    req = make_request(pairs, ver)
    util.validate_query_params(req, allocation_candidate._get_schema(ver))
    wide = lib.RequestWideParams.from_request(req)
    groups = lib.RequestGroup.dict_from_request(req, wide)
    if not wide.group_policy:
        if len([g for g in groups.values() if g.use_same_provider]) > 1:
            raise webob.exc.HTTPBadRequest(
                'The "group_policy" parameter is required when specifying '
                'more than one "resources{N}" parameter.')
    return wide, groups


def normalise(wide, groups):
    policy = wide.group_policy
    if policy:
        policy = "isolate" if policy == "isolate" else "none"
    else:
        policy = None
    out_groups = {}
    for suffix, grp in groups.items():
        required = sorted(
            {next(iter(s)) for s in grp.required_traits if len(s) == 1})
        any_of = [sorted(s) for s in grp.required_traits if len(s) > 1]
        out_groups[suffix] = {
            "resources": grp.resources,
            "required": required,
            "forbidden": sorted(grp.forbidden_traits),
            "any_of": any_of,
            "member_of": [sorted(s) for s in grp.member_of],
            "forbidden_aggregates": sorted(grp.forbidden_aggs),
            "in_tree": grp.in_tree,
        }
    return {
        "limit": wide.limit or None,
        "group_policy": policy,
        "root_required": sorted(wide.anchor_required_traits or []),
        "root_forbidden": sorted(wide.anchor_forbidden_traits or []),
        "same_subtree": [sorted(s) for s in wide.same_subtrees],
        "groups": out_groups,
    }


def main():
    for line in sys.stdin:
        case = json.loads(line)
        try:
            wide, groups = parse(case["q"], version(*case["v"]))
            answer = {"spec": normalise(wide, groups)}
        except webob.exc.HTTPBadRequest as exc:
            answer = {"error": exc.detail}
        except Exception as exc:  # upstream would answer 500
            answer = {"crash": "%s: %s" % (type(exc).__name__, exc)}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
