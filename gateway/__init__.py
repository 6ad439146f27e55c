"""tender's gateway: the HTTP service, its store, storage and engines."""
