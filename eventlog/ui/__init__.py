"""The local web viewer (``eventlog ui``): runs, a run's story, live updates, sessions, health.

Server-rendered pages over Starlette + Jinja2 (the ``ui`` extra), a little plain JavaScript
served as static files, read-only. Every page renders what the same library calls the CLI
uses return (:mod:`eventlog.tools.story`, :mod:`eventlog.model.debug_state`,
:mod:`eventlog.tools.search`). Only the CLI's ``ui`` command imports this package, lazily.
"""
