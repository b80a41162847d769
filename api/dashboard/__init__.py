"""The web dashboard: server-rendered pages (Jinja2) with a little JavaScript over the REST API."""
