"""A stand-in for the other ranks, so that data-parallel code runs without MPI."""

from nnfs.distributed import Communicator


class FakeCommunicator(Communicator):
    """Rank 0 of ``size`` ranks whose peers all hold ``peer(buffer)`` (default: a copy of ours).

    Records every collective call with the buffer's length.
    """

    transport = "fake"

    def __init__(self, size=2, peer=None):
        super().__init__(rank=0, size=size)
        self.peer = peer
        self.calls = []

    def allreduce_sum(self, buffer):
        self.calls.append(("allreduce", buffer.size))
        other = buffer.copy() if self.peer is None else self.peer(buffer)
        buffer += other * (self.size - 1)

    def broadcast(self, buffer, root=0):
        self.calls.append(("broadcast", buffer.size))

    def sum_host(self, values):
        self.calls.append(("sum_host", len(values)))
        return [float(v) * self.size for v in values]

    def barrier(self):
        self.calls.append(("barrier", 0))
