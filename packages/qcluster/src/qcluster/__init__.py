"""qcluster."""
