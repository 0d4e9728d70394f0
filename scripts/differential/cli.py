"""placement-differential: seeded random traffic to upstream and to ours."""

import argparse
import json
import os
import sys
import tempfile
import time

from conformance.server import ManagedServer, ServerError, upstream_command
from differential import compare, deliberate
from differential.generator import Generator


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        prog='placement-differential',
        description='Send the same seeded random Placement requests to '
                    'upstream Placement (openstack-placement in the harness '
                    'venv) and to ours, each on a fresh SQLite database, and '
                    'compare status, selected headers and normalised bodies.')
    p.add_argument('--seeds', default='1,2,3',
                   help='comma separated seeds (default 1,2,3)')
    p.add_argument('--requests', type=int, default=300,
                   help='requests per seed (default 300)')
    p.add_argument('--binary', default=None,
                   help='placement binary (default $PLACEMENT_BIN or '
                        'target/debug/placement)')
    p.add_argument('--min-agreement', type=float, default=0.0,
                   help='exit 1 if any seed agrees on fewer than this '
                        'fraction of requests (deliberate differences count '
                        'as agreeing)')
    p.add_argument('--show', type=int, default=20,
                   help='disagreements printed per seed (default 20)')
    p.add_argument('--json', default=None, metavar='PATH',
                   help='write every disagreement as JSON here')
    p.add_argument('--keep-logs', default=None, metavar='DIR',
                   help='copy both servers\' logs here')
    p.add_argument('--startup-timeout', type=float, default=60.0)
    p.add_argument('--trace-generations', action='store_true',
                   help='after each request compare every provider\'s '
                        'generation on both sides and print the first '
                        'request after which one differs (debugging aid)')
    return p.parse_args(argv)


def generation_drift(gen, up_port, our_port):
    drift = []
    for rp in sorted(gen.providers):
        path = '/resource_providers/%s' % rp
        left = compare.admin_get(up_port, path, '1.14')
        right = compare.admin_get(our_port, path, '1.14')
        if left[0] != right[0] or (left[1] or {}).get('generation') != \
                (right[1] or {}).get('generation'):
            drift.append('%s upstream %s ours %s' % (
                rp, (left[1] or {}).get('generation', left[0]),
                (right[1] or {}).get('generation', right[0])))
    return drift


def run_seed(seed, count, binary, args):
    gen = Generator(seed)
    with tempfile.TemporaryDirectory(prefix='ferrite-diff-') as tmp:
        up_dir = os.path.join(tmp, 'upstream')
        our_dir = os.path.join(tmp, 'ours')
        os.mkdir(up_dir)
        os.mkdir(our_dir)
        upstream = ManagedServer(upstream_command(), up_dir, {},
                                 startup_timeout=args.startup_timeout)
        ours = ManagedServer([binary], our_dir, {},
                             startup_timeout=args.startup_timeout)
        try:
            upstream.start()
            ours.start()
            results = []
            traced = False
            for index in range(count):
                step = gen.next_step()
                up = compare.send(step, upstream.port)
                our = compare.send(step, ours.port)
                gen.learn(step, up.status, up.json())
                if args.trace_generations and not traced:
                    drift = generation_drift(gen, upstream.port, ours.port)
                    if drift:
                        traced = True
                        print('  generations first differ after #%d %s: %s'
                              % (index, step.describe(), drift))
                left = compare.normalise(up)
                right = compare.normalise(our)
                if left == right:
                    results.append((index, step, 'same', None))
                    continue
                rule = deliberate.match(step, left, right)
                diff = compare.differences(left, right)
                results.append((index, step, rule or 'differ', diff))
            return results
        finally:
            for server in (upstream, ours):
                server.stop()
            if args.keep_logs:
                os.makedirs(args.keep_logs, exist_ok=True)
                for name, server in (('upstream', upstream), ('ours', ours)):
                    dest = os.path.join(args.keep_logs,
                                        'seed%d-%s.log' % (seed, name))
                    try:
                        with open(server.log_path, 'rb') as src, \
                                open(dest, 'wb') as out:
                            out.write(src.read())
                    except OSError:
                        pass


def main(argv=None):
    args = parse_args(argv)
    repo_root = os.environ.get('FERRITE_REPO_ROOT') or os.getcwd()
    binary = args.binary or os.environ.get('PLACEMENT_BIN') or os.path.join(
        repo_root, 'target/debug/placement')
    if not os.access(binary, os.X_OK):
        print('placement-differential: no placement binary at %s (build it '
              'or set PLACEMENT_BIN)' % binary, file=sys.stderr)
        return 2
    undocumented = {rid for rid, _ in deliberate.RULES} - \
        deliberate.documented_ids()
    if undocumented:
        print('placement-differential: rules without a DIFFERENCES.md '
              'section: %s' % ', '.join(sorted(undocumented)),
              file=sys.stderr)
        return 2
    seeds = [int(s) for s in args.seeds.split(',') if s.strip()]
    failed = False
    dump = []
    for seed in seeds:
        started = time.monotonic()
        try:
            results = run_seed(seed, args.requests, binary, args)
        except (ServerError, OSError) as exc:
            print('placement-differential: seed %d: %s' % (seed, exc),
                  file=sys.stderr)
            return 2
        same = sum(1 for r in results if r[2] == 'same')
        differ = [r for r in results if r[2] == 'differ']
        rules = {}
        for r in results:
            if r[2] not in ('same', 'differ'):
                rules[r[2]] = rules.get(r[2], 0) + 1
        total = len(results)
        agreed = total - len(differ)
        ratio = agreed / total if total else 1.0
        print('seed %d: %d requests, %d identical, %d deliberate %s, '
              '%d differ: agreement %.2f%% (%.2f%% identical) in %.1fs'
              % (seed, total, same, sum(rules.values()),
                 json.dumps(rules, sort_keys=True), len(differ),
                 100.0 * ratio, 100.0 * same / total if total else 100.0,
                 time.monotonic() - started), flush=True)
        for index, step, _kind, diff in differ[:args.show]:
            print('  #%d %s [%s]' % (index, step.describe(), step.kind))
            for line in diff[:6]:
                print('      %s' % line)
        for index, step, kind, diff in results:
            if kind != 'same':
                dump.append({'seed': seed, 'index': index,
                             'kind': step.kind, 'request': step.describe(),
                             'verdict': kind, 'differences': diff})
        if ratio < args.min_agreement:
            failed = True
    if args.json:
        with open(args.json, 'w') as fh:
            json.dump(dump, fh, indent=1)
    print('differential: %s (floor %.2f%%)' % (
        'FAIL' if failed else 'ok', 100.0 * args.min_agreement))
    return 1 if failed else 0
