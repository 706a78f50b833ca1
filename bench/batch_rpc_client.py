"""bench/batch_rpc_client.py - the gRPC client both batch-rpc bench drivers
use (bench/batch_rpc.py, bench/batch_rpc_realtime.py): one channel, ready
before the first call, and a callable per unary method of
rte.v1.BatchEligibilityService."""
import grpc

SERVICE = "/rte.v1.BatchEligibilityService/"


class Client:
    def __init__(self, addr, timeout=120):
        self.channel = grpc.insecure_channel(addr)
        grpc.channel_ready_future(self.channel).result(timeout=timeout)

    def unary(self, name, resp):
        """A callable sending a request message to method `name`, answering a `resp`."""
        return self.channel.unary_unary(SERVICE + name,
                                        request_serializer=lambda m: m.SerializeToString(),
                                        response_deserializer=resp.FromString)
