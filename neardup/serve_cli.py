"""`neardup serve`: the web view (JSON, Server-Sent Events, a page with live bars)."""
from __future__ import annotations

import argparse
import errno
import logging
import socket
import sys

from neardup.cli import Exit, Fail, env, stderr_console

EXAMPLES = """\
examples:
  neardup serve                          http://127.0.0.1:8000/ lists jobs; /watch/12 shows live bars
  neardup serve --host 0.0.0.0 --port 9000
  curl -N localhost:8000/jobs/12/events  the event log as Server-Sent Events, then live
  curl -N -H 'Last-Event-ID: 40' localhost:8000/jobs/12/events   resume after event 40
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="serve job progress over HTTP: JSON, SSE events, live page",
                       epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default=env("HOST", "127.0.0.1"), help="address to listen on (127.0.0.1)")
    p.add_argument("--port", type=port, default=env("PORT", 8000, int), help="port (8000)")
    p.set_defaults(run=serve)


def port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be between 0 and 65535, got {value}")
    return value


def bind(host: str, port_no: int) -> socket.socket:
    """Bind before starting the server, so a taken port is one clear line, not a traceback."""
    try:
        infos = socket.getaddrinfo(host, port_no, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as e:
        raise Fail(f"--host {host}: {e.strerror}", Exit.USAGE) from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as e:
        sock.close()
        why = "address already in use" if e.errno == errno.EADDRINUSE else (e.strerror or str(e))
        raise Fail(f"cannot listen on {host}:{port_no}: {why}", Exit.USAGE) from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from neardup.commands import connect
    from neardup.web import make_app

    sock = bind(args.host, args.port)
    url = connect()
    host, bound = sock.getsockname()[:2]
    stderr_console().print(f"neardup: serving on http://{host}:{bound}/ (Ctrl-C stops)")
    sys.stderr.flush()
    # A client that drops its stream mid-read makes psycopg discard that pooled connection: expected.
    logging.getLogger("psycopg").setLevel(logging.ERROR)
    config = uvicorn.Config(make_app(url), log_level="warning", lifespan="on", timeout_graceful_shutdown=2)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
    return Exit.OK
