"""Serving the joint model over HTTP (``klue-mtl serve``): the app, the micro-batcher, the page.

Importing this package imports nothing heavy; :mod:`mtl.serving.server` needs the ``serve`` extra
(``pip install "klue-mtl[serve]"``: FastAPI, uvicorn, httpx).
"""
