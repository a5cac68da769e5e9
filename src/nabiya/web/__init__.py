"""The playground: nabiya in a web browser, served from this machine (``nabiya serve``).

A person chooses or brings a melody, sees and hears it, trains a model with a live loss
curve, sees and hears where the predictions go wrong, and makes new music; the page is
a thin layer over the Python API, as the CLI is.

- :mod:`nabiya.web.app`: the Starlette app: the page, its static files, the JSON API.
- :mod:`nabiya.web.jobs`: the job queue and its worker processes.
- :mod:`nabiya.web.worker`: what a worker process does (train, generate, read an uploaded
  corpus model, make new tunes).
- :mod:`nabiya.web.songs`: melodies between the page and nabiya.
- :mod:`nabiya.web.analysis`: the song analysis panel (``nabiya.analyze``): the marked
  score, the ceiling, the memory, and what a preset can reach beside its training.
- :mod:`nabiya.web.tunes`: the new-tunes panel (``nabiya.generate_tunes``): the corpus
  models the server offers (``--models DIR``) or a person uploads, and requests for tunes.
- :mod:`nabiya.web.server`: listening, the token, uvicorn.
- ``static/``: ``index.html``, ``app.js``, ``app.css``: no framework, no CDN, works offline.

**Adding a panel** (the song analysis is one; new tunes from corpus models another): name the API function that feeds it in
``app.OPTIONAL_FEATURES`` (the page shows the panel only where ``nabiya`` has it); add its
routes to ``create_app``, or its jobs as a kind in ``app.JOB_KINDS`` (the request check)
and ``worker.TASKS`` (what the worker process does: anything with JAX goes here, never
in the server); add a ``<section data-feature="NAME" hidden>`` to ``index.html`` and
``PANELS.NAME`` to ``app.js``, whose hooks hear of the song shown, the model chosen and
each training that finishes.

From Python::

    from nabiya.web.server import serve
    serve("127.0.0.1", 8000)          # until Ctrl+C
"""
