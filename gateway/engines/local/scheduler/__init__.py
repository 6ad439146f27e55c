"""In-process schedulers of the local engine."""
