"""placement-conformance: upstream Placement's gabbi tests vs. an endpoint.

For every selected YAML file a worker process starts a server on a fresh
SQLite database (Ferrite's binary, or upstream with ``--upstream``), loads the
data of the fixture the file names over HTTP, runs the file with gabbi and
stops the server.  With ``--url``/``PLACEMENT_URL`` an already running server
is used instead (no restart; data is wiped through the API between files).
"""

import argparse
import concurrent.futures
import fnmatch
import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time

# Files about allocation candidates and the machinery behind them (granular
# request groups, same_subtree, nested/sharing providers) and reshaping.
# Everything else is "core".
CANDIDATE_PATTERNS = (
    'allocation-candidates*.yaml',
    'granular*.yaml',
    'same-subtree*.yaml',
    'reshaper*.yaml',
    'shared-resources.yaml',
    'allocations-mappings.yaml',
)
GROUPS = ('core', 'candidates')
# Installed on demand for --verify-fixtures (pinned like the rest of the venv).
OSLOTEST_REQ = 'oslotest==6.1.1'


def group_of(filename):
    base = os.path.basename(filename)
    if any(fnmatch.fnmatch(base, pat) for pat in CANDIDATE_PATTERNS):
        return 'candidates'
    return 'core'


def default_gabbits_dir():
    import placement.tests.functional as functional
    return os.path.join(os.path.dirname(functional.__file__), 'gabbits')


def select_files(gabbits_dir, patterns, group, excludes):
    all_files = sorted(f for f in os.listdir(gabbits_dir)
                       if f.endswith('.yaml'))
    chosen = []
    for name in all_files:
        stem = name[:-len('.yaml')]
        if patterns and not any(fnmatch.fnmatch(name, p) or
                                fnmatch.fnmatch(stem, p)
                                for p in patterns):
            continue
        if any(fnmatch.fnmatch(name, p) or fnmatch.fnmatch(stem, p)
               for p in excludes):
            continue
        if group != 'all' and group_of(name) != group:
            continue
        chosen.append(os.path.join(gabbits_dir, name))
    return chosen


def _split_patterns(values):
    out = []
    for value in values:
        out.extend(p for p in value.replace(',', ' ').split() if p)
    return out


def parse_args(argv):
    env = os.environ
    repo_root = env.get('FERRITE_REPO_ROOT') or os.path.dirname(
        os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    p = argparse.ArgumentParser(
        prog='placement-conformance',
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('files', nargs='*',
                   help='YAML files to run: names or globs, with or without '
                        '.yaml (default: $PLACEMENT_CONFORMANCE_FILES, or '
                        'all)')
    p.add_argument('--group', choices=('core', 'candidates', 'all'),
                   default=env.get('PLACEMENT_CONFORMANCE_GROUP', 'all'))
    p.add_argument('--exclude', action='append', default=[],
                   help='skip files matching this glob (repeatable)')
    target = p.add_mutually_exclusive_group()
    target.add_argument('--upstream', action='store_true',
                        help='run against upstream placement (fresh '
                             'server per file), to validate the harness')
    target.add_argument('--url', default=None,
                        help='use this running server (default '
                             '$PLACEMENT_URL); no per-file restart')
    target.add_argument('--binary', default=None,
                        help='placement binary (default $PLACEMENT_BIN or '
                             'target/debug/placement)')
    p.add_argument('--server-arg', action='append', default=[],
                   help='extra argument for the server (repeatable); '
                        '$PLACEMENT_SERVER_ARGS is split and added too')
    p.add_argument('--no-reset', action='store_true',
                   help='with --url: do not wipe data between files')
    p.add_argument('-j', '--jobs', type=int, default=None,
                   help='files run in parallel (default: CPU count, '
                        '1 with --url)')
    p.add_argument('--json', metavar='PATH', help='write results here')
    p.add_argument('--min-total-pass', type=float, default=0.0,
                   help='fail unless this fraction of all tests passes')
    p.add_argument('--min-file-pass', type=float, default=0.0,
                   help='fail unless every file passes this fraction')
    p.add_argument('--min-group-pass', action='append', default=[],
                   metavar='GROUP=FRACTION[,...]',
                   help='fail unless each named group (core, candidates) '
                        'passes this fraction of its tests (repeatable)')
    p.add_argument('--known-failures', metavar='PATH', default=None,
                   help='file of tests allowed to fail, one '
                        '"FILE.yaml: test name" a line (# comments); any '
                        'other failing test fails the run')
    p.add_argument('--gabbits-dir', default=None,
                   help='directory of YAML files (default: the installed '
                        'upstream package)')
    p.add_argument('--startup-timeout', type=float, default=60.0)
    p.add_argument('--file-timeout', type=float, default=600.0)
    p.add_argument('--keep-logs', metavar='DIR',
                   help='keep each file\'s server log in DIR')
    p.add_argument('-q', '--quiet', action='store_true',
                   help='only the per-file lines and totals')
    p.add_argument('--list', action='store_true',
                   help='list the selected files with group and fixtures')
    p.add_argument('--verify-fixtures', action='store_true',
                   help='compare our HTTP fixture loaders with upstream\'s '
                        'in-process fixtures (positional args: fixture '
                        'class names) and exit')
    args = p.parse_args(argv)
    # Explicit flags win over the environment: --upstream, then --url /
    # $PLACEMENT_URL, then --binary / $PLACEMENT_BIN / the debug build.
    if not args.upstream and args.binary is None and args.url is None:
        args.url = env.get('PLACEMENT_URL') or None
    if args.binary is None:
        args.binary = env.get('PLACEMENT_BIN') or os.path.join(
            repo_root, 'target/debug/placement')
    args.patterns = _split_patterns(args.files or [
        env.get('PLACEMENT_CONFORMANCE_FILES', '')])
    args.excludes = _split_patterns(args.exclude)
    args.group_floors = _group_floors(p, args.min_group_pass)
    args.known = (load_known_failures(args.known_failures)
                  if args.known_failures else None)
    args.server_arg = list(args.server_arg) + shlex.split(
        env.get('PLACEMENT_SERVER_ARGS', ''))
    return args


def _group_floors(parser, values):
    floors = {}
    for item in _split_patterns(values):
        name, sep, fraction = item.partition('=')
        if not sep or name not in GROUPS:
            parser.error('--min-group-pass wants GROUP=FRACTION with GROUP '
                         'one of %s, not %r' % (', '.join(GROUPS), item))
        try:
            floors[name] = float(fraction)
        except ValueError:
            parser.error('--min-group-pass: %r is not a number' % fraction)
    return floors


def load_known_failures(path):
    """The set of (file, test name) pairs a known-failures file lists."""
    known = set()
    with open(path) as fh:
        for number, line in enumerate(fh, 1):
            line = line.strip()
            if not line or line.startswith('#'):
                continue
            filename, sep, name = line.partition(': ')
            if not sep or not filename.endswith('.yaml') or not name.strip():
                raise SystemExit('%s:%d: expected "FILE.yaml: test name", '
                                 'got %r' % (path, number, line))
            known.add((filename.strip(), name.strip()))
    return known


def _run_worker(spec, timeout):
    """Run one file in a worker process; return its result dict."""
    from conformance import server as server_mod
    fd, spec_path = tempfile.mkstemp(prefix='conf-spec-', suffix='.json')
    out_path = spec_path[:-len('.json')] + '.out.json'
    with os.fdopen(fd, 'w') as fh:
        json.dump(spec, fh)
    env = dict(os.environ)
    env['PYTHONPATH'] = server_mod.SCRIPTS_DIR + (
        os.pathsep + env['PYTHONPATH'] if env.get('PYTHONPATH') else '')
    base = os.path.basename(spec['file'])
    try:
        # Own process group: on timeout the worker and its server go
        # together.
        proc = subprocess.Popen(
            [sys.executable, '-m', 'conformance.worker', spec_path,
             out_path], env=env, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            start_new_session=True)
        try:
            output, _unused = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except OSError:
                proc.kill()
            proc.communicate()
            # A hung server is the server's failure, not the harness's.
            reason = ('file timed out after %ss (server hung?); its server '
                      'was killed' % timeout)
            return {'file': base, 'error': reason,
                    'tests': [{'name': name, 'status': 'error',
                               'reason': reason, 'detail': ''}
                              for name in _declared_names(spec['file'])]}
        output = output.decode('utf-8', 'replace')
        if os.path.exists(out_path):
            with open(out_path) as fh:
                return json.load(fh)
        return {'file': base, 'tests': [], 'harness_error':
                'worker exited %s without results: %s' % (
                    proc.returncode, output[-2000:])}
    finally:
        for path in (spec_path, out_path):
            try:
                os.unlink(path)
            except OSError:
                pass


def _declared_names(path):
    from gabbi import utils as gabbi_utils
    try:
        tests = gabbi_utils.load_yaml(yaml_file=path).get('tests') or []
        return [t.get('name', '#%d' % i) for i, t in enumerate(tests)]
    except Exception:
        return []


def _file_line(res):
    tests = res.get('tests') or []
    passed = sum(1 for t in tests if t['status'] == 'pass')
    total = len(tests)
    ok = total > 0 and passed == total and not res.get('harness_error')
    return '%s  %s  %d/%d' % ('PASS' if ok else 'FAIL', res['file'],
                              passed, total)


def _print_result(res, quiet, out):
    print(_file_line(res), file=out)
    if res.get('harness_error'):
        print('    ! harness: %s' % res['harness_error'], file=out)
        return
    if quiet:
        return
    opts = res.get('server_options') or {}
    special = sorted(k for k, v in opts.items()
                     if v and k != 'enforce_new_defaults')
    if opts.get('enforce_new_defaults'):
        special.append('enforce_new_defaults=true')
    if res.get('shared_server') and special and res.get('failed', 1):
        print('    ! this file expects server options: %s' % ', '.join(
            special), file=out)
    error = res.get('error')
    failing = [t for t in res.get('tests') or [] if t['status'] != 'pass']
    if error and failing and all(t['reason'] == error for t in failing):
        # One cause for the whole file (server start, fixture load...).
        print('    - (all %d tests): %s' % (len(failing), failing[0]['reason']),
              file=out)
    else:
        if error:
            print('    ! %s' % error, file=out)
        for t in failing:
            print('    - %s: %s' % (t['name'], t['reason']), file=out)
    out.flush()


def _verify_fixtures(names):
    try:
        import oslotest  # noqa: F401  (upstream's fixture module needs it)
    except ImportError:
        print('placement-conformance: installing oslotest into the venv',
              file=sys.stderr)
        command = [sys.executable, '-m', 'pip', 'install', '--quiet',
                   '--disable-pip-version-check', OSLOTEST_REQ]
        constraints = os.environ.get('FERRITE_CONFORMANCE_CONSTRAINTS')
        if constraints:
            command[4:4] = ['-c', constraints]
        subprocess.run(command, check=True, stdout=sys.stderr)
    from conformance import verify_fixtures
    return verify_fixtures.main(names)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.verify_fixtures:
        return _verify_fixtures(args.files)
    gabbits_dir = args.gabbits_dir or default_gabbits_dir()
    files = select_files(gabbits_dir, args.patterns, args.group,
                         args.excludes)
    if not files:
        print('placement-conformance: no YAML file selected', file=sys.stderr)
        return 2
    if args.list:
        from gabbi import utils as gabbi_utils
        for path in files:
            data = gabbi_utils.load_yaml(yaml_file=path)
            print('%-11s %-48s %3d  %s' % (
                group_of(path), os.path.basename(path),
                len(data.get('tests') or []),
                ','.join(data.get('fixtures') or [])))
        return 0

    spec_base = {'startup_timeout': args.startup_timeout,
                 'extra_args': args.server_arg,
                 'keep_logs': os.path.abspath(args.keep_logs)
                 if args.keep_logs else None}
    if args.url:
        import urllib.parse
        from conformance import server as server_mod
        parsed = urllib.parse.urlsplit(args.url)
        if not server_mod.answers(parsed.hostname or '127.0.0.1',
                                   parsed.port or 80, timeout=5.0,
                                   path=parsed.path.rstrip('/') + '/'):
            print('placement-conformance: nothing answers at %s'
                  % args.url, file=sys.stderr)
            return 2
        target = 'url %s' % args.url
        spec_base.update(url=args.url, reset=not args.no_reset)
        jobs = args.jobs or 1
        if jobs > 1:
            print('placement-conformance: --url runs one file at a time',
                  file=sys.stderr)
            jobs = 1
    elif args.upstream:
        from conformance import server as server_mod
        target = 'upstream placement'
        spec_base['command'] = server_mod.upstream_command()
        jobs = args.jobs or os.cpu_count() or 2
    else:
        binary = os.path.abspath(args.binary)
        if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
            print('placement-conformance: no executable placement binary at '
                  '%s (build it, or set PLACEMENT_BIN, --url or --upstream)'
                  % binary, file=sys.stderr)
            return 2
        target = binary
        spec_base['command'] = [binary]
        jobs = args.jobs or os.cpu_count() or 2

    print('placement-conformance: %d files against %s (%d in parallel)'
          % (len(files), target, jobs), flush=True)
    started = time.monotonic()
    results = [None] * len(files)
    printed = [0]
    lock = threading.Lock()

    def flush_ready():
        with lock:
            while printed[0] < len(files) and results[printed[0]] is not None:
                _print_result(results[printed[0]], args.quiet, sys.stdout)
                printed[0] += 1

    def job(index, path):
        res = _run_worker(dict(spec_base, file=path), args.file_timeout)
        if res.get('harness_error') and not res.get('tests'):
            # Count every declared test as failed so totals stay honest.
            res['tests'] = [{'name': name, 'status': 'error',
                             'reason': res['harness_error'], 'detail': ''}
                            for name in _declared_names(path)]
        res['group'] = group_of(path)
        res['shared_server'] = bool(args.url)
        res['failed'] = sum(1 for t in res['tests'] if t['status'] != 'pass')
        results[index] = res
        flush_ready()

    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(job, i, path) for i, path in enumerate(files)]
        for fut in futures:
            fut.result()
    flush_ready()
    elapsed = time.monotonic() - started

    summary = {'passed': 0, 'failed': 0}
    groups = {}
    file_ratios = []
    harness_broken = False
    for res in results:
        tests = res.get('tests') or []
        passed = sum(1 for t in tests if t['status'] == 'pass')
        failed = len(tests) - passed
        res['passed'], res['failed'] = passed, failed
        summary['passed'] += passed
        summary['failed'] += failed
        grp = groups.setdefault(res['group'], {
            'passed': 0, 'failed': 0, 'files': 0, 'files_passing': 0})
        grp['passed'] += passed
        grp['failed'] += failed
        grp['files'] += 1
        if tests and failed == 0 and not res.get('harness_error'):
            grp['files_passing'] += 1
        file_ratios.append((res['file'], passed / len(tests) if tests
                            else 0.0))
        if res.get('harness_error'):
            harness_broken = True

    total = summary['passed'] + summary['failed']
    total_ratio = summary['passed'] / total if total else 0.0
    print('')
    for name in GROUPS:
        if name in groups:
            g = groups[name]
            n = g['passed'] + g['failed']
            print('group %-10s %5d/%-5d tests passed (%5.1f%%), '
                  '%d/%d files fully passing' % (
                      name, g['passed'], n,
                      100.0 * g['passed'] / n if n else 0.0,
                      g['files_passing'], g['files']))
    print('total %d tests in %d files, %.1f%% passed, %.0fs' % (
        total, len(results), 100.0 * total_ratio, elapsed))

    reasons = []
    if total_ratio < args.min_total_pass:
        reasons.append('total pass rate %.3f < %.3f' % (
            total_ratio, args.min_total_pass))
    low = [(f, r) for f, r in file_ratios if r < args.min_file_pass]
    if low:
        reasons.append('%d files below the per-file pass rate %.2f: %s' % (
            len(low), args.min_file_pass,
            ', '.join('%s (%.2f)' % fr for fr in low[:10])))
    for name, floor in sorted(args.group_floors.items()):
        g = groups.get(name)
        n = g['passed'] + g['failed'] if g else 0
        ratio = g['passed'] / n if n else 0.0
        if ratio < floor:
            reasons.append('group %s pass rate %.3f < %.3f' % (
                name, ratio, floor))
    if args.known is not None:
        failing = {(res['file'], t['name']) for res in results
                   for t in res.get('tests') or [] if t['status'] != 'pass'}
        new = sorted(failing - args.known)
        if new:
            reasons.append('%d failing tests not in %s: %s' % (
                len(new), args.known_failures,
                '; '.join('%s: %s' % pair for pair in new[:20])))
        ran = {res['file'] for res in results}
        fixed = sorted(pair for pair in args.known - failing
                       if pair[0] in ran)
        for pair in fixed:
            print('note: listed known failure did not fail (fixed or renamed? '
                  'remove it from %s): '
                  '%s: %s' % (args.known_failures, pair[0], pair[1]))
    for reason in reasons:
        print('threshold not met: %s' % reason)
    if harness_broken:
        print('harness error in: %s' % ', '.join(
            r['file'] for r in results if r.get('harness_error')))

    if args.json:
        payload = {
            'target': target,
            'elapsed_seconds': round(elapsed, 1),
            'summary': dict(summary, total=total,
                            pass_rate=round(total_ratio, 4)),
            'groups': groups,
            'thresholds': {'min_total_pass': args.min_total_pass,
                           'min_file_pass': args.min_file_pass,
                           'min_group_pass': args.group_floors,
                           'met': not reasons},
            'files': results,
        }
        with open(args.json, 'w') as fh:
            json.dump(payload, fh, indent=1)
    # The closing line, alone on its line.
    print('conformance: %d passed, %d failed' % (
        summary['passed'], summary['failed']), flush=True)
    if harness_broken:
        return 2
    return 1 if reasons else 0
