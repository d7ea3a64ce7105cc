"""The web process: Starlette app, routes, auth, problem responses, the WebSocket hub."""
