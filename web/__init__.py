"""The web app of the 1022 hotline: accounts and roles, the supervisors' wallboard, the agents'
console, ticket pages, the REST API (OpenAPI) and Prometheus metrics, on Starlette/uvicorn in
the engine's event loop. ``web.app.create_app`` builds it; ``web.app.serve`` runs it."""
