"""The one list of accepted differences between RabbitMQ and warren.

A scenario named here still runs against both brokers and its transcripts are still
compared; when they differ, the verdict is "accepted difference" (with the reason below in
REPORT.md) instead of a failure. Every entry needs a written reason. An entry whose scenario
turns out equal is reported as stale, so the list never silently outlives its cause.
"""

ACCEPTED: dict[str, str] = {
    "stream.invalid_max_age": (
        "RabbitMQ 3.10 crashes on an x-max-age that is not an interval and closes the connection "
        "with 541 INTERNAL_ERROR naming no method; warren refuses the declaration with "
        "406 PRECONDITION_FAILED 'Invalid value for  x-max-age' on the channel. A crash is not a "
        "behaviour worth copying; both refuse the queue."
    ),
}
