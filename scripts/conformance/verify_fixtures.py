"""Check that our HTTP fixture loaders build what upstream's fixtures build.

For each fixture class:

* upstream: the upstream fixture class (``placement.tests.functional.
  fixtures.gabbits``) is started in-process, exactly as upstream's own test
  run does, and the resulting app is queried in-process;
* ours: a fresh upstream server is started (``upstream_server``) and our
  loader (``conformance.fixtures``) fills it over HTTP.

Both states are dumped through the API (providers in listing order with
parent/root, generation, inventories, traits, aggregates, allocations,
usages; consumers with generation/project/user/type; custom traits and
resource classes; the environment variables the fixture sets), UUIDs are
replaced by stable labels (provider names, env variable names, consumer
content) and the two dumps are compared.

Needs ``oslotest`` in the venv (``cli.OSLOTEST_REQ``, installed on demand): upstream's
fixture module imports it.  Run via ``placement-conformance
--verify-fixtures [NAME ...]``.
"""

import json
import os
import re
import sys
import tempfile
import shutil

import httpx

UUID_RE = re.compile(
    r'[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}')

FIXTURES = (
    'APIFixture', 'AllocationFixture', 'SharedStorageFixture',
    'NUMAAggregateFixture', 'NUMANetworkFixture', 'DeepNUMANetworkFixture',
    'NonSharedStorageFixture', 'CORSFixture', 'GranularFixture',
    'OpenPolicyFixture', 'SecureRBACPolicyFixture',
    'LegacyRBACPolicyFixture', 'NeutronQoSMultiSegmentFixture',
)

HEADERS = {'x-auth-token': 'admin', 'accept': 'application/json',
           'openstack-api-version': 'placement 1.39'}


def dump_state(client, env_keys):
    def get(path):
        resp = client.get(path, headers=HEADERS)
        resp.raise_for_status()
        return resp.json()

    state = {'providers': [], 'consumers': {}}
    consumers = set()
    for rp in get('/resource_providers')['resource_providers']:
        u = rp['uuid']
        allocs = get('/resource_providers/%s/allocations' % u)['allocations']
        consumers.update(allocs)
        state['providers'].append({
            'uuid': u, 'name': rp['name'],
            'parent': rp['parent_provider_uuid'],
            'root': rp['root_provider_uuid'],
            'generation': rp['generation'],
            'inventories': get('/resource_providers/%s/inventories'
                               % u)['inventories'],
            'traits': sorted(get('/resource_providers/%s/traits'
                                 % u)['traits']),
            'aggregates': sorted(get('/resource_providers/%s/aggregates'
                                     % u)['aggregates']),
            'allocations': allocs,
            'usages': get('/resource_providers/%s/usages' % u)['usages'],
        })
    for c in sorted(consumers):
        state['consumers'][c] = get('/allocations/%s' % c)
    state['custom_traits'] = sorted(
        get('/traits?name=startswith:CUSTOM_')['traits'])
    state['custom_resource_classes'] = sorted(
        rc['name'] for rc in get('/resource_classes')['resource_classes']
        if rc['name'].startswith('CUSTOM_'))
    state['env'] = {k: os.environ[k] for k in sorted(env_keys)}
    return state


def normalize(state):
    labels = {}
    for key, value in sorted(state['env'].items()):
        if UUID_RE.fullmatch(value or '') and value not in labels:
            labels[value] = 'env:' + key

    def sub(text):
        return UUID_RE.sub(lambda m: labels.get(m.group(0), '<uuid>'), text)

    # Providers are known by name (a name may itself be an env value).
    for rp in state['providers']:
        labels[rp['uuid']] = 'rp:' + sub(rp['name'])
    # Consumers that no env variable names get a label from their content.
    for c, data in state['consumers'].items():
        if c not in labels:
            parts = []
            for rp_uuid, alloc in sorted(data['allocations'].items()):
                parts.append('%s %s' % (sub(rp_uuid), ' '.join(
                    '%s=%s' % kv for kv in sorted(
                        alloc['resources'].items()))))
            labels[c] = 'consumer(%s; %s/%s)' % (
                ', '.join(parts), data.get('project_id'),
                data.get('user_id'))
    out = json.loads(sub(json.dumps(state, sort_keys=True)))
    for rp in out['providers']:
        rp['aggregates'].sort()
    return out


def _diff(a, b, path=''):
    out = []
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if key not in a:
                out.append('%s/%s: only in ours' % (path, key))
            elif key not in b:
                out.append('%s/%s: only upstream' % (path, key))
            else:
                out += _diff(a[key], b[key], '%s/%s' % (path, key))
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            out += _diff(x, y, '%s[%d]' % (path, i))
    elif a != b:
        out.append('%s: upstream %s != ours %s' % (
            path, json.dumps(a)[:200], json.dumps(b)[:200]))
    return out


_SEEN_ENV = set()


def _fixture_env(before):
    keys = {k for k, v in os.environ.items() if before.get(k) != v}
    _SEEN_ENV.update(keys)
    return keys


def _clear_env():
    for key in _SEEN_ENV:
        os.environ.pop(key, None)


def upstream_state(name):
    from placement import deploy
    from placement.tests.functional.fixtures import gabbits as upstream

    _clear_env()
    before = dict(os.environ)
    fixture = getattr(upstream, name)()
    fixture.start_fixture()
    try:
        keys = _fixture_env(before)
        app = deploy.loadapp(upstream.CONF)
        with httpx.Client(transport=httpx.WSGITransport(app=app),
                          base_url='http://upstream') as client:
            return dump_state(client, keys)
    finally:
        fixture.stop_fixture()


def our_state(name):
    from conformance import fixtures as ours
    from conformance import server as server_mod

    cls = getattr(ours, name)
    workdir = tempfile.mkdtemp(prefix='verify-fixture-')
    srv = server_mod.ManagedServer(server_mod.upstream_command(), workdir,
                                   ours.server_options_for([cls]))
    srv.start()
    try:
        ours.BASE_URL = srv.url
        _clear_env()
        before = dict(os.environ)
        fixture = cls()
        fixture.start_fixture()
        keys = _fixture_env(before)
        with httpx.Client(base_url=srv.url) as client:
            return dump_state(client, keys)
    finally:
        srv.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def main(names=None):
    import warnings
    import logging
    warnings.simplefilter('ignore')
    logging.disable(logging.CRITICAL)
    names = names or list(FIXTURES)
    bad = 0
    for name in names:
        up = normalize(upstream_state(name))
        mine = normalize(our_state(name))
        diffs = _diff(up, mine)
        summary = '%d providers, %d consumers, %d env vars' % (
            len(up['providers']), len(up['consumers']), len(up['env']))
        if diffs:
            bad += 1
            print('DIFF  %-32s %s' % (name, summary))
            for line in diffs[:40]:
                print('    ' + line)
        else:
            print('SAME  %-32s %s' % (name, summary))
    print('fixtures: %d identical, %d different' % (len(names) - bad, bad))
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
