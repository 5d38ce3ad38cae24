"""What the documentation site generates from the code at build time (see mkdocs.yml)."""
