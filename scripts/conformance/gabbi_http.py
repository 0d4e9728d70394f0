"""Let gabbi send requests that httpx refuses to put on the wire.

Upstream runs its gabbi files in-process (WSGI intercept), so a test may
send headers that are not valid HTTP, e.g. ``content-length: hi mom``.  Over
a real socket httpx (h11) refuses to send them; for those requests only we
fall back to a raw ``http.client`` request so that the server under test
gets to answer.
"""

import http.client
import urllib.parse

import httpx
from gabbi import httpclient

_original_request = httpclient.Http.request


def _raw_request(absolute_uri, method, body, headers, timeout):
    url = urllib.parse.urlsplit(absolute_uri)
    if url.scheme == 'https':
        conn = http.client.HTTPSConnection(url.hostname, url.port,
                                           timeout=timeout)
    else:
        conn = http.client.HTTPConnection(url.hostname, url.port or 80,
                                          timeout=timeout)
    target = url.path or '/'
    if url.query:
        target += '?' + url.query
    if isinstance(body, str):
        body = body.encode('utf-8')
    try:
        conn.putrequest(method, target, skip_accept_encoding=True)
        names = set()
        for key, value in (headers or {}).items():
            conn.putheader(key, str(value))
            names.add(key.lower())
        if body and 'content-length' not in names:
            conn.putheader('content-length', str(len(body)))
        conn.endheaders(body or None)
        resp = conn.getresponse()
        content = resp.read()
        out = httpx.Headers(resp.getheaders())
        out['status'] = str(resp.status)
        out['reason'] = str(resp.reason)
        out['http_protocol_version'] = 'HTTP/1.1' if resp.version == 11 \
            else 'HTTP/1.0'
        return out, content
    finally:
        conn.close()


def _request(self, absolute_uri, method, body, headers, redirect, timeout):
    try:
        return _original_request(self, absolute_uri, method, body, headers,
                                 redirect, timeout)
    except httpx.LocalProtocolError:
        return _raw_request(absolute_uri, method, body, headers, timeout)


def install():
    if httpclient.Http.request is not _request:
        httpclient.Http.request = _request
