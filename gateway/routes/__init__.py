"""The HTTP API, one router per resource (paths as in ../shared/craft-api.md)."""
