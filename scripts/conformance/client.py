"""A tiny JSON-over-HTTP client for loading fixture data (stdlib only)."""

import http.client
import json
import urllib.parse


class PlacementHTTPError(Exception):
    def __init__(self, method, path, status, body, expected):
        self.method = method
        self.path = path
        self.status = status
        self.body = body
        super().__init__('%s %s -> %s (expected %s): %s' % (
            method, path, status, expected, (body or '')[:400]))


class Client:
    """Speaks to one Placement endpoint as a given token/microversion."""

    def __init__(self, base_url, token='admin', microversion='1.20',
                 timeout=30.0):
        parsed = urllib.parse.urlsplit(base_url)
        self.scheme = parsed.scheme or 'http'
        self.host = parsed.hostname or '127.0.0.1'
        self.port = parsed.port or (443 if self.scheme == 'https' else 80)
        self.prefix = parsed.path.rstrip('/')
        self.token = token
        self.microversion = microversion
        self.timeout = timeout

    def _conn(self):
        if self.scheme == 'https':
            return http.client.HTTPSConnection(self.host, self.port,
                                               timeout=self.timeout)
        return http.client.HTTPConnection(self.host, self.port,
                                          timeout=self.timeout)

    def request(self, method, path, body=None, version=None, expect=None,
                headers=None):
        """Make a request; return (status, parsed-json-or-text, headers).

        ``expect`` is an int or a collection of acceptable status codes; an
        unexpected status raises PlacementHTTPError.
        """
        hdrs = {
            'x-auth-token': self.token,
            'accept': 'application/json',
            'openstack-api-version': 'placement %s' % (
                version or self.microversion),
        }
        payload = None
        if body is not None:
            payload = json.dumps(body).encode('utf-8')
            hdrs['content-type'] = 'application/json'
        if headers:
            hdrs.update(headers)
        conn = self._conn()
        try:
            conn.request(method, self.prefix + path, body=payload,
                         headers=hdrs)
            resp = conn.getresponse()
            raw = resp.read()
            status = resp.status
            resp_headers = {k.lower(): v for k, v in resp.getheaders()}
        finally:
            conn.close()
        text = raw.decode('utf-8', 'replace')
        data = text
        if text and 'json' in resp_headers.get('content-type', ''):
            try:
                data = json.loads(text)
            except ValueError:
                pass
        if expect is not None:
            ok = (status in expect) if isinstance(
                expect, (list, tuple, set, frozenset)) else status == expect
            if not ok:
                raise PlacementHTTPError(method, path, status, text, expect)
        return status, data, resp_headers

    def get(self, path, **kw):
        kw.setdefault('expect', 200)
        return self.request('GET', path, **kw)[1]

    def put(self, path, body=None, **kw):
        return self.request('PUT', path, body=body, **kw)[1]

    def post(self, path, body=None, **kw):
        return self.request('POST', path, body=body, **kw)[1]

    def delete(self, path, **kw):
        return self.request('DELETE', path, **kw)[1]


def quote(value):
    return urllib.parse.quote(str(value), safe='')
