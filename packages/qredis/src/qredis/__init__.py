"""qredis."""
