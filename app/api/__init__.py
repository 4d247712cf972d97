"""geoha's reference API: themes CRUD over PostgreSQL, as a raw ASGI app for granian.

Start it with `python -m app.api` (see docs/API.md for the environment it reads)
or `granian --interface asgi app.api.main:app`.
"""
