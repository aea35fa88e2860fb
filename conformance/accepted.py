"""The one list of accepted differences between RabbitMQ and warren.

A scenario named here still runs against both brokers and its transcripts are still
compared; when they differ, the verdict is "accepted difference" (with the reason below in
REPORT.md) instead of a failure. Every entry needs a written reason. An entry whose scenario
turns out equal is reported as stale, so the list never silently outlives its cause.

An entry that waits for issue 7 (RabbitMQ's extensions) goes in the change that implements its
feature.
"""

_E2E = "issue 7: exchange-to-exchange bindings (exchange.bind/unbind) not implemented yet"

ACCEPTED: dict[str, str] = {
    "stream.invalid_max_age": (
        "RabbitMQ 3.10 crashes on an x-max-age that is not an interval and closes the connection "
        "with 541 INTERNAL_ERROR naming no method; warren refuses the declaration with "
        "406 PRECONDITION_FAILED 'Invalid value for  x-max-age' on the channel. A crash is not a "
        "behaviour worth copying; both refuse the queue."
    ),
    "connection.handshake_full": (
        "issue 7: exchange_exchange_bindings, connection.blocked, consumer_priorities and "
        "direct_reply_to not implemented yet, so warren does not advertise those capabilities"
    ),
    "consume.consumer_priority_argument": "issue 7: x-priority consumers not implemented yet",
    "exchange.alternate_exchange": "issue 7: alternate-exchange not implemented yet",
    "exchange.delete_if_unused_as_source_of_e2e": _E2E,
    "exchange.exchange_bind_missing": _E2E,
    "exchange.exchange_to_exchange_routing": _E2E,
    "exchange.exchange_unbind_missing_binding": _E2E,
    "exchange.internal_publish_refused": (
        "issue 7: internal exchanges and exchange-to-exchange bindings not implemented yet"
    ),
    "pika_client.pika_topic_and_exchange_binding": _E2E,
    "routing.exchange_binding_cycle": _E2E,
    "routing.multiple_routes_one_copy": _E2E + " (the scenario reaches the queue through an exchange binding)",
    "publish.priority_queue_order": "issue 7: x-max-priority not implemented yet",
    "queue.argument_invalid_max_length": "issue 7: validation of x-max-length and x-expires not implemented yet",
    "queue.argument_invalid_queue_type": "issue 7: validation of x-queue-type not implemented yet",
    "queue.argument_invalid_ttl": "issue 7: validation of x-message-ttl not implemented yet",
    "queue.dead_letter_on_reject": "issue 7: dead-lettering not implemented yet",
    "queue.max_length_drop_head": "issue 7: x-max-length not implemented yet",
    "queue.max_length_reject_publish": "issue 7: x-overflow=reject-publish not implemented yet",
    "queue.message_ttl_expires": "issue 7: x-message-ttl not implemented yet",
    "queue.per_message_expiration": "issue 7: per-message expiration not implemented yet",
    "queue.queue_expires": "issue 7: x-expires not implemented yet",
}
