"""The HTTP API: FastAPI over the projection tables (see `api.app.create_app`)."""
