"""Q's benchmark against its peers: ``uv run python -m tools.bench`` (see README.md).

Deliberately empty of imports: worker processes of the peers import ``tools.bench.peers.tasks``
in their own environments, where the harness's dependencies are not installed.
"""
