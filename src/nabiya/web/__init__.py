"""The playground: nabiya in a web browser, served from this machine (``nabiya serve``).

A person chooses or brings a melody, sees and hears it, trains a model with a live loss
curve, sees and hears where the predictions go wrong, and makes new music; the page is
a thin layer over the Python API, as the CLI is.

- :mod:`nabiya.web.app`: the Starlette app: the page, its static files, the JSON API.
- :mod:`nabiya.web.jobs`: the job queue and its worker processes.
- :mod:`nabiya.web.worker`: what a worker process does (train, generate).
- :mod:`nabiya.web.songs`: melodies between the page and nabiya.
- :mod:`nabiya.web.server`: listening, the token, uvicorn.
- ``static/``: ``index.html``, ``app.js``, ``app.css``: no framework, no CDN, works offline.

From Python::

    from nabiya.web.server import serve
    serve("127.0.0.1", 8000)          # until Ctrl+C
"""
