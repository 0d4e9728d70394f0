"""Serve the upstream (Python) OpenStack Placement WSGI app over real HTTP.

The command line deliberately mirrors the Ferrite binary's flags so that the
conformance harness (and benchmarks) can start either implementation the same
way::

    python -m conformance.upstream_server --bind 127.0.0.1:8778 \\
        --database-url 'sqlite:///tmp/x/placement.db?mode=rwc' \\
        [--policy-file PATH] [--enforce-new-defaults true|false] \\
        [--cors-allowed-origin URL ...] [--cors-allow-headers H1,H2]

The app is configured the way upstream's functional-test fixture configures
it: ``[api]auth_strategy = noauth2`` (``x-auth-token: user[:project]``, the
token ``admin`` gets the admin role, ``x-roles`` overrides the roles,
``openstack-system-scope`` makes the request system scoped), an empty default
config file list, ``[oslo_policy]enforce_new_defaults = false`` unless told
otherwise, and a database schema created straight from the models when the
database is empty.

It needs the ``openstack-placement`` package importable (the harness venv has
it).  By default it serves with a threaded ``wsgiref`` server (no extra
dependency); ``--server gunicorn --workers N`` uses gunicorn when installed.
"""

import argparse
import logging
import os
import signal
import socketserver
import sys
import threading
import urllib.parse
from wsgiref import simple_server


def _bool(text):
    low = str(text).strip().lower()
    if low in ('1', 'true', 'yes', 'on'):
        return True
    if low in ('0', 'false', 'no', 'off'):
        return False
    raise argparse.ArgumentTypeError('expected true or false, got %r' % text)


def _split_list(values):
    out = []
    for value in values or []:
        out.extend(v.strip() for v in value.split(',') if v.strip())
    return out


def sqlalchemy_url(url):
    """Translate a sqlx-style URL (as the Rust binary takes) to SQLAlchemy.

    ``sqlite://DIR/placement.db?mode=rwc`` (DIR absolute) and
    ``sqlite:DIR/placement.db`` become ``sqlite:////DIR/placement.db``.
    SQLAlchemy-style URLs (``sqlite:////abs``, ``mysql+pymysql://...``) are
    returned unchanged, except that sqlx-only query options are dropped.
    """
    if url.startswith('sqlite:'):
        if url.startswith('sqlite:////'):
            rest = url[len('sqlite:///'):]
        elif url.startswith('sqlite://'):
            rest = url[len('sqlite://'):]
        else:
            rest = url[len('sqlite:'):]
        path = rest.split('?', 1)[0]
        if path in ('', ':memory:'):
            return 'sqlite://'
        return 'sqlite:///' + os.path.abspath(path)
    if url.startswith('postgres://'):
        url = 'postgresql://' + url[len('postgres://'):]
    if url.startswith('mysql://'):
        url = 'mysql+pymysql://' + url[len('mysql://'):]
    return url


def build_conf(args):
    from oslo_config import cfg
    from placement import conf as placement_conf

    conf = cfg.ConfigOpts()
    placement_conf.register_opts(conf)
    # The connection is a required option: give it before parsing.
    conf.set_default('connection', sqlalchemy_url(args.database_url),
                     group='placement_database')
    # Same as the test fixtures: never read /etc/placement/placement.conf.
    conf([], default_config_files=[])
    conf.set_override('auth_strategy', 'noauth2', group='api')
    conf.set_override('sync_on_startup', args.sync_on_startup,
                      group='placement_database')
    conf.set_override('enforce_new_defaults', args.enforce_new_defaults,
                      group='oslo_policy')
    if args.policy_file:
        conf.set_override('policy_file', os.path.abspath(args.policy_file),
                          group='oslo_policy')
    else:
        # A path that does not exist: only the in-code defaults apply.
        conf.set_override('policy_file', '/nonexistent/placement-policy.yaml',
                          group='oslo_policy')
    origins = _split_list(args.cors_allowed_origin)
    if origins:
        conf.set_override('allowed_origin', origins, group='cors')
        headers = _split_list(args.cors_allow_headers)
        if headers:
            conf.set_override('allow_headers', headers, group='cors')
    if args.max_allocation_candidates is not None:
        conf.set_override('max_allocation_candidates',
                          args.max_allocation_candidates, group='placement')
    if args.randomize_allocation_candidates is not None:
        conf.set_override('randomize_allocation_candidates',
                          args.randomize_allocation_candidates,
                          group='placement')
    if args.allocation_candidates_generation_strategy:
        conf.set_override('allocation_candidates_generation_strategy',
                          args.allocation_candidates_generation_strategy,
                          group='placement')
    return conf


def build_app(args):
    """Configure the database and return the upstream WSGI application."""
    from placement import db_api
    from placement import deploy
    from placement.db.sqlalchemy import migration
    import sqlalchemy

    conf = build_conf(args)
    db_api.configure(conf)
    if not args.sync_on_startup:
        engine = db_api.get_placement_engine()
        if not sqlalchemy.inspect(engine).has_table('resource_providers'):
            # The functional-test fixture does exactly this (no alembic).
            migration.create_schema(engine)
    # loadapp() initialises policy and syncs standard traits and resource
    # classes into the database.
    return deploy.loadapp(conf)


class _QuietHandler(simple_server.WSGIRequestHandler):
    def log_message(self, *args):
        pass

    def address_string(self):
        return self.client_address[0]

    def get_environ(self):
        env = super().get_environ()
        # wsgiref invents "text/plain" for requests without a content-type;
        # placement (and upstream's tests) must see the header as absent.
        if self.headers.get('content-type') is None:
            env.pop('CONTENT_TYPE', None)
        return env


class _ThreadingWSGIServer(socketserver.ThreadingMixIn,
                           simple_server.WSGIServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


def serve_wsgiref(app, host, port, ready_file=None):
    httpd = simple_server.make_server(host, port, app,
                                      server_class=_ThreadingWSGIServer,
                                      handler_class=_QuietHandler)

    def _stop(signum, frame):
        threading.Thread(target=httpd.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    if ready_file:
        with open(ready_file, 'w') as fh:
            fh.write('%s:%d\n' % httpd.server_address[:2])
    try:
        httpd.serve_forever(poll_interval=0.2)
    finally:
        httpd.server_close()


def serve_gunicorn(args, host, port):
    from gunicorn.app.base import BaseApplication

    class _App(BaseApplication):
        def load_config(self):
            self.cfg.set('bind', '%s:%d' % (host, port))
            self.cfg.set('workers', args.workers)
            self.cfg.set('threads', args.threads)
            self.cfg.set('worker_class',
                         'gthread' if args.threads > 1 else 'sync')
            self.cfg.set('accesslog', None)
            self.cfg.set('loglevel', 'warning')
            self.cfg.set('keepalive', 5)

        def load(self):
            return build_app(args)

    # Build once in the master so that the schema and the trait/resource
    # class sync happen before any worker forks (avoids races on sqlite).
    build_app(args)
    _App().run()


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        prog='upstream_server',
        description='Serve upstream OpenStack Placement (noauth2) over HTTP')
    p.add_argument('--bind', default='127.0.0.1:8778',
                   help='HOST:PORT to listen on (port 0 = ephemeral)')
    p.add_argument('--database-url', required=True,
                   help='sqlx-style (sqlite://DIR/placement.db?mode=rwc) '
                        'or SQLAlchemy URL')
    p.add_argument('--policy-file', default=None)
    p.add_argument('--enforce-new-defaults', type=_bool, default=False)
    p.add_argument('--cors-allowed-origin', action='append', default=[],
                   help='may be repeated or comma separated')
    p.add_argument('--cors-allow-headers', action='append', default=[],
                   help='comma separated header names')
    p.add_argument('--max-allocation-candidates', type=int, default=None)
    p.add_argument('--randomize-allocation-candidates', type=_bool,
                   default=None)
    p.add_argument('--allocation-candidates-generation-strategy',
                   choices=('depth-first', 'breadth-first'), default=None)
    p.add_argument('--sync-on-startup', type=_bool, default=False,
                   help='run the alembic migrations instead of creating '
                        'the schema from the models')
    p.add_argument('--server', choices=('wsgiref', 'gunicorn'),
                   default='wsgiref')
    p.add_argument('--workers', type=int, default=1,
                   help='gunicorn worker processes')
    p.add_argument('--threads', type=int, default=1,
                   help='gunicorn threads per worker')
    p.add_argument('--ready-file', default=None,
                   help='write HOST:PORT here once listening')
    p.add_argument('--verbose', action='store_true')
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose
                        else logging.WARNING, stream=sys.stderr)
    if not args.verbose:
        import warnings
        warnings.simplefilter('ignore')
    host, _sep, port = args.bind.rpartition(':')
    host = host.strip('[]') or '127.0.0.1'
    port = int(port)
    if args.server == 'gunicorn':
        serve_gunicorn(args, host, port)
    else:
        serve_wsgiref(build_app(args), host, port, args.ready_file)
    return 0


if __name__ == '__main__':
    sys.exit(main())
