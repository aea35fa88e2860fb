"""The one list of accepted differences between RabbitMQ and warren.

A scenario named here still runs against both brokers and its transcripts are still
compared; when they differ, the verdict is "accepted difference" (with the reason below in
REPORT.md) instead of a failure. Every entry needs a written reason. An entry whose scenario
turns out equal is reported as stale, so the list never silently outlives its cause.
"""

ACCEPTED: dict[str, str] = {
    "qos.prefetch_size_refused": (
        "warren decodes frames with amq-protocol, whose basic.qos parser discards prefetch_size, "
        "so warren cannot tell prefetch_size != 0 from 0 and cannot refuse it with "
        "540 NOT_IMPLEMENTED the way RabbitMQ does. No client of RabbitMQ can rely on a non-zero "
        "prefetch_size (RabbitMQ never implemented it)."
    ),
}
