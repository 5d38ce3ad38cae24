"""The benchmarked queues: one module per library (harness side + client side), see base.py.

Nothing is imported here: worker processes import ``tools.bench.peers.tasks.*`` in the peers'
own environments, which must not pull in the harness.
"""
