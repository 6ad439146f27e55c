"""The HTTP API, one router per resource (paths as in docs/craft-api.md)."""
