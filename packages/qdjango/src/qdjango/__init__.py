"""qdjango."""
