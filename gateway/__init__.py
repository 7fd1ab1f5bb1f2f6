"""The running service: settings, the Starlette app, auth, the database and the embedded server."""
