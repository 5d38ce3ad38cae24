"""The workflow tests use the fault suite's bench and side-effect counter."""

from tests.faults.conftest import bench, fx, own_bench, own_fx, own_redis

__all__ = ["bench", "fx", "own_bench", "own_fx", "own_redis"]
