"""Run the gabbi tests of ONE YAML file and write the results as JSON.

Run in its own process per file (gabbi reads ``$ENVIRON`` from the process
environment, which the fixtures fill in), by the orchestrator in
``conformance.cli``::

    python -m conformance.worker SPEC.json OUT.json
"""

import json
import os
import re
import shutil
import sys
import tempfile
import time
import traceback
import unittest
import warnings

from gabbi import handlers as gabbi_handlers
from gabbi import suitemaker
from gabbi import utils as gabbi_utils

from conformance import fixtures as fixture_module
from conformance import gabbi_http
from conformance import server as server_mod

_STATUS_RE = re.compile(r"^'(?P<got>\d{3})' not found in \[(?P<want>[^\]]*)\]")


def _compact(text, limit):
    text = ' '.join(str(text).split())
    return text if len(text) <= limit else text[:limit - 3] + '...'


def _error_detail(response_text):
    """The ``detail`` of a placement JSON error body, if that is what it is."""
    try:
        data = json.loads(response_text)
        err = data['errors'][0]
        return '%s' % err.get('detail', err.get('title', ''))
    except (ValueError, KeyError, IndexError, TypeError):
        return response_text


def summarize(exc_type, exc_value, limit=220, test=None):
    """A one-line reason for a failed test."""
    msg = str(exc_value)
    if exc_type is TypeError and 'bytes-like object' in msg:
        # gabbi compares response_strings against raw bytes when the
        # response content-type is not textual.
        ctype = getattr(test, 'content_type', None) or '(none)'
        return _compact('response body is not text (content-type %s), '
                        'cannot check response_strings' % ctype, limit)
    match = _STATUS_RE.match(msg)
    if match:
        want = match.group('want').replace("'", '')
        body = msg.split('response:\n', 1)[1] if 'response:\n' in msg else ''
        reason = 'status %s, expected %s' % (match.group('got'), want)
        detail = _error_detail(body.strip())
        if detail:
            reason += ': ' + detail
        return _compact(reason, limit)
    first = msg.strip().splitlines()[0] if msg.strip() else ''
    name = getattr(exc_type, '__name__', 'Error')
    if name not in ('AssertionError',):
        first = '%s: %s' % (name, first)
    return _compact(first, limit)


class RecordingResult(unittest.TestResult):
    """Keeps one outcome per gabbi test, in file order."""

    _RANK = {'pass': 0, 'skip': 1, 'fail': 2, 'error': 3}

    def __init__(self):
        super().__init__()
        self.records = {}
        self.order = []

    def _name(self, test):
        data = getattr(test, 'test_data', None)
        if data and data.get('name'):
            return data['name']
        return test.id()

    def _set(self, test, status, reason='', detail=''):
        # Keyed by test object: names are not unique within a file.
        key = id(test)
        if key not in self.records:
            self.order.append(key)
            self.records[key] = {'name': self._name(test), 'status': status,
                                 'reason': reason, 'detail': detail}
            return
        old = self.records[key]
        if self._RANK[status] > self._RANK[old['status']]:
            old.update(status=status, reason=reason, detail=detail)

    def addSuccess(self, test):
        super().addSuccess(test)
        self._set(test, 'pass')

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._set(test, 'fail', summarize(err[0], err[1], test=test),
                  _compact_tb(err))

    def addError(self, test, err):
        super().addError(test, err)
        self._set(test, 'error', summarize(err[0], err[1], test=test),
                  _compact_tb(err))

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self._set(test, 'skip', _compact(reason, 220))

    def addExpectedFailure(self, test, err):
        super().addExpectedFailure(test, err)
        self._set(test, 'pass')

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        self._set(test, 'fail', 'unexpected success')


def _compact_tb(err, limit=4000):
    text = ''.join(traceback.format_exception(*err))
    return text[-limit:]


def run_file(spec):
    """Run one YAML file as described by ``spec``; return the result dict."""
    path = spec['file']
    base = os.path.basename(path)
    started = time.monotonic()
    result = {'file': base, 'path': path, 'tests': [], 'error': None,
              'fixtures': [], 'server': None}

    suite_dict = gabbi_utils.load_yaml(yaml_file=path, safe=True)
    fixture_names = list(suite_dict.get('fixtures') or [])
    result['fixtures'] = fixture_names
    declared = [t.get('name') for t in suite_dict.get('tests') or []]
    try:
        fixture_classes = [getattr(fixture_module, n) for n in fixture_names]
    except AttributeError as exc:
        result['error'] = 'unknown fixture: %s' % exc
        result['tests'] = [{'name': n, 'status': 'error',
                            'reason': result['error'], 'detail': ''}
                           for n in declared]
        return result
    options = fixture_module.server_options_for(fixture_classes)
    result['server_options'] = dict(options)
    options['extra_args'] = spec.get('extra_args') or []

    workdir = tempfile.mkdtemp(prefix='placement-conf-')
    server = None
    try:
        if spec.get('url'):
            base_url = spec['url'].rstrip('/')
            if spec.get('reset', True):
                server_mod.reset_server(base_url)
        else:
            server = server_mod.ManagedServer(
                spec['command'], workdir, options,
                startup_timeout=spec.get('startup_timeout', 60.0))
            server.start()
            base_url = server.url
            result['server'] = {'argv': server.argv}

        host, port, prefix, _ssl = gabbi_utils.host_info_from_target(
            base_url)
        fixture_module.BASE_URL = base_url
        loader = unittest.TestLoader()
        handler_objects = [h() for h in gabbi_handlers.RESPONSE_HANDLERS]
        suite = suitemaker.test_suite_from_dict(
            loader, os.path.splitext(base)[0], suite_dict,
            os.path.dirname(path), host, port, fixture_module, None,
            prefix=prefix, handlers=handler_objects,
            test_loader_name='conformance')
        gabbi_http.install()
        recorder = RecordingResult()
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            suite.run(recorder)
        # A failing suite-level fixture marks the first test as errored and
        # skips them all: report that as the reason for every test.
        fixture_error = None
        if any(r['status'] == 'skip' and r['reason'] == 'fixture failure'
               for r in recorder.records.values()):
            fixture_error = recorder.records[recorder.order[0]]['reason']
        tests = []
        for key in recorder.order:
            rec = dict(recorder.records[key])
            if fixture_error:
                rec['status'] = 'error'
                rec['reason'] = 'fixture failed: ' + fixture_error
            tests.append(rec)
        if fixture_error:
            result['error'] = 'fixture failed: ' + fixture_error
        # Tests that never reported (should not happen) count as failed.
        for name in declared[len(tests):]:
            tests.append({'name': name, 'status': 'error',
                          'reason': 'test did not run', 'detail': ''})
        result['tests'] = tests
        if server is not None and not server.alive():
            result['error'] = (result['error'] or '') + \
                ' server died during the run'
    except Exception as exc:  # harness / server / fixture problem
        reason = _compact('%s: %s' % (type(exc).__name__, exc), 300)
        result['error'] = reason
        result['tests'] = [{'name': n, 'status': 'error', 'reason': reason,
                            'detail': traceback.format_exc()[-4000:]}
                           for n in declared]
    finally:
        if server is not None:
            server.stop()
            failed = result['error'] or any(
                t['status'] != 'pass' for t in result['tests'])
            if failed:
                result['server_log_tail'] = server.log_tail(30)
            if spec.get('keep_logs'):
                os.makedirs(spec['keep_logs'], exist_ok=True)
                shutil.copy(server.log_path, os.path.join(
                    spec['keep_logs'], os.path.splitext(base)[0] + '.log'))
        shutil.rmtree(workdir, ignore_errors=True)
    result['duration'] = round(time.monotonic() - started, 3)
    return result


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print('usage: python -m conformance.worker SPEC.json OUT.json',
              file=sys.stderr)
        return 2
    with open(argv[0]) as fh:
        spec = json.load(fh)
    result = run_file(spec)
    tmp = argv[1] + '.tmp'
    with open(tmp, 'w') as fh:
        json.dump(result, fh)
    os.replace(tmp, argv[1])
    return 0


if __name__ == '__main__':
    sys.exit(main())
