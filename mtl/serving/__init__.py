"""Using a trained joint model: the Python API, the per-task transformers exports, the HTTP server.

Importing this package imports nothing heavy; :mod:`mtl.serving.server` needs the ``serve`` extra
(``pip install "klue-mtl[serve]"``: FastAPI, uvicorn, httpx).
"""
