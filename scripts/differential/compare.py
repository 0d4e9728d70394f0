"""Sending one step to one server, and normalising answers for comparison."""

import http.client
import json
import re

from differential.generator import ConsumerGenOf, GenOf

# Headers whose value is compared (after normalisation); all others (date,
# server, content-length, x-openstack-request-id...) are ignored.
COMPARED_HEADERS = ('content-type', 'openstack-api-version', 'vary',
                    'allow', 'location', 'cache-control')
# Headers whose presence only is compared (their value is a time).
PRESENCE_HEADERS = ('last-modified',)

REQUEST_ID = re.compile(r'req-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-'
                        r'[0-9a-f]{4}-[0-9a-f]{12}')
HOST_PORT = re.compile(r'https?://[^/\s"]+')


class Answer:
    def __init__(self, status, headers, text):
        self.status = status
        self.headers = headers
        self.text = text

    def json(self):
        try:
            return json.loads(self.text)
        except ValueError:
            return None


def raw_request(port, method, path, headers, body=None, timeout=30.0):
    conn = http.client.HTTPConnection('127.0.0.1', port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        hdrs = {}
        for name, value in resp.getheaders():
            name = name.lower()
            hdrs[name] = hdrs[name] + ', ' + value if name in hdrs else value
        return Answer(resp.status, hdrs, data.decode('utf-8', 'replace'))
    finally:
        conn.close()


def admin_get(port, path, version):
    answer = raw_request(port, 'GET', path, {
        'x-auth-token': 'admin', 'accept': 'application/json',
        'openstack-api-version': 'placement %s' % version})
    return answer.status, answer.json()


def resolve(value, port):
    """Replaces generation placeholders by this side's current values."""
    if isinstance(value, GenOf):
        status, body = admin_get(port, '/resource_providers/%s'
                                 % value.rp_uuid, '1.14')
        gen = body.get('generation', 0) if status == 200 and body else 0
        return gen + value.delta
    if isinstance(value, ConsumerGenOf):
        status, body = admin_get(port, '/allocations/%s' % value.consumer,
                                 '1.28')
        if status == 200 and body:
            return body.get('consumer_generation')
        return None
    if isinstance(value, dict):
        return {k: resolve(v, port) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, port) for v in value]
    return value


def send(step, port):
    headers = {}
    if step.accept is not None:
        headers['accept'] = step.accept
    if step.token is not None:
        headers['x-auth-token'] = step.token
    if step.version is not None:
        headers['openstack-api-version'] = 'placement %s' % step.version
    body = step.raw_body
    if body is None and step.body is not None:
        body = json.dumps(resolve(step.body, port)).encode()
        headers['content-type'] = 'application/json'
    headers.update(step.headers)
    return raw_request(port, step.method, step.path, headers, body)


def _canonical(value):
    """Sorts lists (orders the API does not promise) and normalises ids."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key == 'request_id':
                out[key] = '<request-id>'
            else:
                out[key] = _canonical(item)
        return out
    if isinstance(value, list):
        items = [_canonical(v) for v in value]
        return sorted(items, key=lambda v: json.dumps(v, sort_keys=True))
    if isinstance(value, str):
        return HOST_PORT.sub('<url>', REQUEST_ID.sub('<request-id>', value))
    return value


def normalise(answer):
    """The comparable view of an answer: status, some headers, the body."""
    headers = {}
    for name in COMPARED_HEADERS:
        if name in answer.headers:
            value = answer.headers[name]
            if name == 'content-type':
                value = value.replace(' ', '').lower()
            if name == 'location':
                value = HOST_PORT.sub('<url>', value)
            headers[name] = value
    for name in PRESENCE_HEADERS:
        headers[name] = name in answer.headers
    body = answer.json()
    if body is None:
        body = HOST_PORT.sub('<url>', REQUEST_ID.sub('<request-id>',
                                                      answer.text))
    else:
        body = _canonical(body)
    return {'status': answer.status, 'headers': headers, 'body': body}


def differences(left, right, path=''):
    """Human-readable list of where two normalised answers differ."""
    out = []
    if isinstance(left, dict) and isinstance(right, dict):
        for key in sorted(set(left) | set(right)):
            sub = '%s.%s' % (path, key) if path else key
            if key not in left:
                out.append('%s: only ours has %s' % (sub, _short(right[key])))
            elif key not in right:
                out.append('%s: only upstream has %s'
                           % (sub, _short(left[key])))
            else:
                out.extend(differences(left[key], right[key], sub))
        return out
    if left != right:
        out.append('%s: upstream %s, ours %s' % (path or '.', _short(left),
                                                 _short(right)))
    return out


def _short(value, limit=300):
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= limit else text[:limit] + '...'
