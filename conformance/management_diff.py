#!/usr/bin/env python3
"""The same management API requests to warren and to RabbitMQ 3.10 (its management plugin),
compared: the status of every answer, and for JSON answers the fields listed with each request
(those warren implements; RabbitMQ's others, e.g. Erlang's figures, are not compared: see the
README's "Management HTTP API"). Prints every request with `same` or the differences; exits 1
on any difference.

    conformance/management_diff.py WARREN_API RABBITMQ_API   # e.g. http://127.0.0.1:15699

Both brokers must be fresh (only the default vhost `/` and user guest/guest). Standard library
only.
"""

import base64
import json
import sys
import time
import urllib.error
import urllib.request

GUEST = "Basic " + base64.b64encode(b"guest:guest").decode()


def call(base, method, path, body=None, auth=GUEST, raw=None):
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(base + path, data=data, method=method)
    if auth:
        req.add_header("Authorization", auth)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            status, text = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, text = e.code, e.read()
    try:
        parsed = json.loads(text) if text.strip() else None
    except ValueError:
        parsed = None
    return status, parsed


def pick(value, fields):
    """The listed fields of an object (dotted paths), or of each element of a list."""
    if isinstance(value, list):
        return [pick(v, fields) for v in value]
    if not isinstance(value, dict):
        return value
    out = {}
    for f in fields:
        v = value
        for part in f.split("."):
            v = v.get(part) if isinstance(v, dict) else None
        out[f] = v
    return out


V = "diff-vh"
Q = f"/api/queues/{V}/jobs"
X = f"/api/exchanges/{V}/work"
QUEUE = ["name", "vhost", "durable", "auto_delete", "exclusive", "arguments", "type", "state",
         "consumers", "messages", "messages_ready", "messages_unacknowledged"]
EXCHANGE = ["name", "vhost", "type", "durable", "auto_delete", "internal", "arguments"]
BINDING = ["source", "vhost", "destination", "destination_type", "routing_key", "arguments",
           "properties_key"]
GOT = ["payload", "payload_bytes", "payload_encoding", "redelivered", "exchange", "routing_key",
       "message_count", "properties"]
ERROR = ["error", "reason"]

# (method, path, body, fields compared in the JSON answer or None for the status alone,
#  options)
STEPS = [
    ("GET", "/api/whoami", None, ["name", "tags"], {}),
    ("GET", "/api/overview", None, ["management_version", "rabbitmq_version"], {"skip": ["management_version", "rabbitmq_version"]}),
    ("PUT", f"/api/vhosts/{V}", {"description": "diff"}, None, {}),
    ("GET", f"/api/vhosts/{V}", None, ["name", "description", "tracing"], {}),
    ("PUT", f"/api/permissions/{V}/guest", {"configure": ".*", "write": ".*", "read": ".*"}, None, {}),
    ("GET", f"/api/permissions/{V}/guest", None, ["user", "vhost", "configure", "write", "read"], {}),
    ("PUT", Q, {"durable": True, "arguments": {"x-max-length": 10}}, None, {}),
    ("PUT", Q, {"durable": False}, ERROR, {}),
    ("GET", Q, None, QUEUE, {"settle": True}),
    ("PUT", X, {"type": "direct", "durable": True}, None, {}),
    ("GET", X, None, EXCHANGE, {}),
    ("POST", f"/api/bindings/{V}/e/work/q/jobs", {"routing_key": "k", "arguments": {}}, None, {}),
    ("GET", f"/api/bindings/{V}/e/work/q/jobs", None, BINDING, {}),
    ("GET", f"/api/queues/{V}/jobs/bindings", None, BINDING, {}),
    ("POST", f"{X}/publish", {"routing_key": "k", "payload": "hello", "payload_encoding": "string", "properties": {}}, ["routed"], {}),
    ("POST", f"{X}/publish", {"routing_key": "nowhere", "payload": "x", "payload_encoding": "string", "properties": {}}, ["routed"], {}),
    ("GET", Q, None, ["messages_ready", "messages"], {"settle": True}),
    ("POST", f"{Q}/get", {"count": 5, "ackmode": "ack_requeue_true", "encoding": "auto"}, GOT, {}),
    ("DELETE", f"{Q}/contents", None, None, {}),
    ("GET", Q, None, ["messages_ready"], {"settle": True}),
    ("GET", f"/api/queues/{V}/nothing", None, ERROR, {}),
    ("GET", f"/api/exchanges/{V}/nothing", None, ERROR, {}),
    ("PUT", f"/api/queues/{V}/bad", None, ERROR, {"raw": b"{not json"}),
    ("GET", "/api/overview", None, ERROR, {"auth": "Basic " + base64.b64encode(b"guest:wrong").decode()}),
    ("GET", "/api/users/guest", None, ["name", "tags"], {}),
    ("GET", f"/api/aliveness-test/{V}", None, ["status"], {}),
    ("GET", "/api/health/checks/alarms", None, ["status"], {}),
    ("DELETE", f"{X}?if-unused=true", None, ERROR, {}),
    ("DELETE", X, None, None, {}),
    ("DELETE", Q, None, None, {}),
    ("DELETE", f"/api/vhosts/{V}", None, None, {}),
    ("GET", f"/api/vhosts/{V}", None, ERROR, {}),
]


def settled(base, path, fields):
    """RabbitMQ's queue figures come from its statistics, emitted every 5 s: wait until they
    are there, then one more interval, and read them."""
    deadline = time.time() + 20
    while True:
        status, parsed = call(base, "GET", path)
        shown = pick(parsed, fields)
        if isinstance(shown, dict) and all(v is not None for v in shown.values()) or time.time() > deadline:
            break
        time.sleep(0.5)
    time.sleep(5.5)
    return call(base, "GET", path)


def normalise(value):
    # RabbitMQ lists tags as a list since 3.10 (warren too); x-queue-type may be added by
    # neither; order of list results: by name where they have one
    if isinstance(value, list):
        return sorted((normalise(v) for v in value), key=lambda v: json.dumps(v, sort_keys=True))
    if isinstance(value, dict):
        return {k: normalise(v) for k, v in value.items()}
    return value


def main():
    warren, rabbit = sys.argv[1].rstrip("/"), sys.argv[2].rstrip("/")
    differences = 0
    for method, path, body, fields, opts in STEPS:
        answers = []
        for base in (warren, rabbit):
            status, parsed = call(base, method, path, body, opts.get("auth", GUEST), opts.get("raw"))
            if opts.get("settle") and base == rabbit:
                status, parsed = settled(base, path, fields)
            shown = pick(parsed, fields) if fields is not None else None
            if isinstance(shown, dict):
                for k in opts.get("skip", []):
                    shown.pop(k, None)
            if fields == ERROR and isinstance(shown, dict):
                shown.pop("reason", None)  # reason texts differ in wording; the error kind must not
            answers.append((status, normalise(shown)))
        if answers[0] == answers[1]:
            print(f"same       {method} {path}")
        else:
            differences += 1
            print(f"DIFFERENT  {method} {path}\n  warren:   {answers[0]}\n  RabbitMQ: {answers[1]}")
    print(f"{len(STEPS)} requests, {differences} different")
    return 1 if differences else 0


if __name__ == "__main__":
    sys.exit(main())
