# The README's "Testing code that sends tasks" (plain Python): no Redis, no cluster.
from qcluster import join
from qcore import Codec, Signer, enqueue
from qcore.testing import MemoryResultStore, MemoryTransport


def send_receipt(order_id: int) -> str:  # a task
    return f"receipt {order_id} sent"


def place_order(transport, codec, order_id):  # the code under test: it sends a task
    return enqueue(transport, codec, send_receipt, (order_id,)).id


def test_placing_an_order_sends_its_receipt():
    transport, store = MemoryTransport(), MemoryResultStore()
    codec = Codec(Signer(b"a test secret of 32 bytes or more"))
    task_id = place_order(transport, codec, 42)
    assert transport.queue_size() == 1  # queued, not run yet
    assert join(transport, store, codec=codec) == 1  # run here, through a worker's own code
    assert store.get(task_id).result == "receipt 42 sent"
