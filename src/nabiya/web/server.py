"""``nabiya serve``: listen on an address, print where, and serve the playground with uvicorn."""

from __future__ import annotations

import os
import secrets
import socket
import sys
from typing import TextIO

from nabiya.errors import NabiyaError
from nabiya.web.app import create_app, is_loopback

LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1"}


def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    workers: int = 1,
    token: str | None = None,
    open_browser: bool = False,
    models: str | os.PathLike | None = None,
    out: TextIO = sys.stdout,
) -> None:
    """Serve the playground until interrupted (Ctrl+C).

    On a loopback address (the default) only this machine can reach it, and only by a
    loopback name. On any other address a token is required; a random one is made when
    none is given, and the address printed carries it, as Jupyter's does.

    Args:
        host: the address to listen on: ``127.0.0.1`` (default), ``0.0.0.0`` for every
            network interface, a name, or an IPv6 address.
        port: the port; 0 picks a free one (the address printed says which).
        workers: how many jobs may run at once, one worker process each.
        token: the token to require (also on loopback when given).
        open_browser: open the page in the default web browser.
        models: a folder of corpus models (``NAME.safetensors`` or run folders ``NAME/``
            from ``nabiya train``) to offer in the "New tunes" panel, by name; looked at
            again on every request, so a model trained there later is offered too.
        out: where the address is printed.

    Raises:
        NabiyaError: when the address cannot be listened on (in use, not this machine's, …),
            or ``models`` is not a folder holding a corpus model.

    Example:
        >>> serve("127.0.0.1", 8000)                             # doctest: +SKIP
        nabiya playground: http://127.0.0.1:8000/
    """
    try:
        import uvicorn

        from nabiya.web.jobs import JobQueue
    except ImportError as error:
        raise NabiyaError(f"the playground needs {error.name}: pip install starlette uvicorn") from None

    offered, folder = None, None
    if models is not None:
        from nabiya.web.tunes import ModelFolder

        folder = ModelFolder(models)
        offered = folder.models(required=True)  # a folder with none is refused at the start
    loopback = is_loopback(host)
    if token is None and not loopback:
        token = secrets.token_urlsafe(24)
    sock = listen_socket(host, port)
    port = sock.getsockname()[1]
    allowed_hosts = LOOPBACK_NAMES | {host.strip("[]").lower()} if loopback else None
    jobs = JobQueue(workers=workers, prestart=True)
    app = create_app(jobs=jobs, token=token, allowed_hosts=allowed_hosts, cookie_name=f"nabiya-token-{port}",
                     models=folder)
    urls = page_urls(host, port, token)
    print(f"nabiya playground: {urls[0]}", file=out, flush=True)
    for url in urls[1:]:
        print(f"               or: {url}", file=out, flush=True)
    if offered:
        print(f"corpus models: {', '.join(offered)}", file=out, flush=True)
    if not loopback:
        print("anyone who can reach this address and has the token can use it; press Ctrl+C to stop",
              file=out, flush=True)
    else:
        print("press Ctrl+C to stop", file=out, flush=True)
    if open_browser:
        import threading
        import webbrowser

        threading.Timer(0.5, webbrowser.open, [urls[-1] if not loopback else urls[0]]).start()
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on", timeout_graceful_shutdown=2)
    try:
        uvicorn.Server(config).run(sockets=[sock])  # until Ctrl+C or SIGTERM, which uvicorn raises again after
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
    print("nabiya playground: stopped", file=out, flush=True)


def listen_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` (not yet listening).

    Raises:
        NabiyaError: naming the address and the reason, when it cannot be bound.
    """
    where = f"{host}:{port}"
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host.strip("[]"), port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except (socket.gaierror, UnicodeError) as error:
        reason = error.strerror if isinstance(error, socket.gaierror) else str(error)
        raise NabiyaError(
            f"cannot listen on {where}: {reason} (give an address of this machine, e.g. 127.0.0.1)"
        ) from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as error:
        sock.close()
        hint = " (try another --port, or --port 0 for any free one)" if error.errno == 98 else ""
        raise NabiyaError(f"cannot listen on {where}: {error.strerror or error}{hint}") from None
    return sock


def page_urls(host: str, port: int, token: str | None) -> list[str]:
    """The page's addresses to print: the one asked for; for all interfaces, this machine's name and loopback.

    Example:
        >>> page_urls("127.0.0.1", 8000, None)
        ['http://127.0.0.1:8000/']
        >>> page_urls("::1", 8000, "abc")
        ['http://[::1]:8000/?token=abc']
    """
    query = f"?token={token}" if token else ""
    bare = host.strip("[]")
    if bare in ("0.0.0.0", "::", ""):
        names = [socket.gethostname(), "127.0.0.1"]
    else:
        names = [bare]
    return [f"http://{f'[{name}]' if ':' in name else name}:{port}/{query}" for name in names]
