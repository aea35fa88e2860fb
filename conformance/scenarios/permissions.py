"""Users, vhosts and permissions: users set up with the broker's control tool (rabbitmqctl,
warren ctl), then what they are refused (403 ACCESS_REFUSED, 530 NOT_ALLOWED) and allowed."""

from typing import Optional

from harness import Client, T, scenario

PASSWORD = "s3cret"


def _user(t: T, configure: Optional[str] = None, write: str = "", read: str = "", vhost: str = "/",
          base: str = "bob") -> Optional[str]:
    """A user of this run (deleted at the end), with permissions on `vhost` unless configure
    is None. Returns its name, or None if the control tool failed."""
    name = f"{base}.{t.token}"
    if not t.ctl(["add_user", name, PASSWORD], undo=["delete_user", name]):
        return None
    if configure is not None and not t.ctl(["set_permissions", "-p", vhost, name, configure, write, read]):
        return None
    return name


def _as(t: T, user: str, label: str = "u", vhost: str = "/") -> Client:
    return t.connect(label, user=user, password=PASSWORD, vhost=vhost)


def _fresh_channel(c: Client, state: dict) -> int:
    """A new channel on c (the previous one was closed by an error)."""
    state["ch"] = state.get("ch", 1) + 1
    c.channel(state["ch"], quiet=True)
    return state["ch"]


def _after_publish(c: Client, ch: int) -> None:
    """A synchronous method after a publish, so that a channel.close for it is seen."""
    c.call(ch, "basic.qos", prefetch_count=1)


@scenario
def refused_declare_delete_purge(t: T):
    """A user with configure/write/read on `mine.*` only: queue.declare, exchange.declare,
    queue.delete, exchange.delete (configure) and queue.purge (read) on others' resources are
    403 with RabbitMQ's "access to queue 'q' in vhost '/' refused for user 'u'"."""
    admin = t.connect("admin")
    q, x = t.n("other"), t.n("otherx")
    admin.declare_queue(1, q)
    admin.declare_exchange(1, x, "topic")
    user = _user(t, "^mine", "^mine", "^mine")
    if user is None:
        return
    c = _as(t, user)
    st: dict = {}
    c.declare_queue(1, q)
    c.declare_exchange(_fresh_channel(c, st), t.n("otherx2"), "direct")
    c.call(_fresh_channel(c, st), "queue.delete", queue=q)
    c.call(_fresh_channel(c, st), "exchange.delete", exchange=x)
    c.call(_fresh_channel(c, st), "queue.purge", queue=q)
    # not refused: what the user may configure
    ch = _fresh_channel(c, st)
    mine = t.n("mine.q")
    c.declare_queue(ch, mine, exclusive=True)
    c.call(ch, "queue.purge", queue=mine)
    c.call(ch, "queue.delete", queue=mine)
    c.close()
    admin.close()


@scenario
def refused_bind_and_unbind(t: T):
    """queue.bind needs write on the queue and read on the exchange, exchange.bind write on
    the destination and read on the source; unbinding the same."""
    admin = t.connect("admin")
    q, x = t.n("other"), t.n("otherx")
    admin.declare_queue(1, q)
    admin.declare_exchange(1, x, "direct")
    user = _user(t, ".*", "^mine", "^mine")
    if user is None:
        return
    mq, mx = t.n("mine.q"), t.n("mine.x")
    c = _as(t, user)
    st: dict = {}
    c.declare_queue(1, mq, exclusive=True)
    c.declare_exchange(1, mx, "direct", auto_delete=True)
    c.bind(1, mq, x, "k")
    c.bind(_fresh_channel(c, st), q, mx, "k")
    c.call(_fresh_channel(c, st), "exchange.bind", destination=x, source=mx, routing_key="k")
    c.call(_fresh_channel(c, st), "exchange.bind", destination=mx, source=x, routing_key="k")
    c.call(_fresh_channel(c, st), "queue.unbind", queue=mq, exchange=x, routing_key="k")
    ch = _fresh_channel(c, st)
    c.bind(ch, mq, mx, "k")
    c.call(ch, "queue.unbind", queue=mq, exchange=mx, routing_key="k")
    c.call(ch, "exchange.delete", exchange=mx)
    c.close()
    admin.close()


@scenario
def refused_publish_consume_get(t: T):
    """basic.publish needs write on the exchange (the default exchange is checked as
    'amq.default'), basic.consume and basic.get read on the queue."""
    admin = t.connect("admin")
    q = t.n("other")
    admin.declare_queue(1, q)
    user = _user(t, ".*", "^mine", "^mine")
    if user is None:
        return
    c = _as(t, user)
    st: dict = {}
    c.publish(1, "", q, b"x")
    _after_publish(c, 1)
    ch = _fresh_channel(c, st)
    c.publish(ch, "amq.direct", "k", b"x")
    _after_publish(c, ch)
    c.consume(_fresh_channel(c, st), q)
    c.get(_fresh_channel(c, st), q)
    # allowed: an exchange of its own, a queue of its own
    ch = _fresh_channel(c, st)
    mq, mx = t.n("mine.q"), t.n("mine.x")
    c.declare_queue(ch, mq, exclusive=True)
    c.declare_exchange(ch, mx, "fanout", auto_delete=True)
    c.bind(ch, mq, mx)
    c.sync_channel(ch)
    c.publish(ch, mx, "", b"mine")
    c.get(ch, mq, no_ack=True)
    c.consume(ch, mq, tag="t", no_ack=True)
    c.close()
    admin.close()


@scenario
def permission_regex_is_unanchored_and_empty_means_nothing(t: T):
    """Permissions match anywhere in the name, as re:run does ('cfg' allows 'x.cfg.x'); an
    empty permission allows nothing; a passive declare needs no permission."""
    user = _user(t, "cfg", "", "^$")
    if user is None:
        return
    admin = t.connect("admin")
    q = t.n("other")
    admin.declare_queue(1, q)
    c = _as(t, user)
    st: dict = {}
    c.declare_queue(1, t.n("x.cfg.x"), exclusive=True)
    c.declare_queue(1, q, passive=True)
    c.declare_queue(1, t.n("nope"), exclusive=True)
    ch = _fresh_channel(c, st)
    c.publish(ch, "amq.fanout", "", b"x")
    _after_publish(c, ch)
    c.close()
    admin.close()


@scenario
def unknown_and_forbidden_vhost(t: T):
    """connection.open to a vhost that does not exist is 530 "vhost v not found"; to one the
    user has no permissions on, 530 "access to vhost 'v' refused for user 'u'"; once
    permitted, the user opens it."""
    user = _user(t, ".*", ".*", ".*")
    if user is None:
        return
    v = f"v.{t.token}"
    if not t.ctl(["add_vhost", v], undo=["delete_vhost", v]):
        return
    c = _as(t, user, "unknown", vhost=f"nope.{t.token}")
    c.expect_closed()
    c = _as(t, user, "forbidden", vhost=v)
    c.expect_closed()
    t.ctl(["set_permissions", "-p", v, user, ".*", ".*", ".*"])
    c = _as(t, user, "permitted", vhost=v)
    q = t.n("in.v")
    c.declare_queue(1, q, exclusive=True)
    c.close()


@scenario
def vhost_without_permissions_for_guest(t: T):
    """A new vhost: guest (an administrator) still needs permissions on it to open it."""
    v = f"v.{t.token}"
    if not t.ctl(["add_vhost", v], undo=["delete_vhost", v]):
        return
    c = t.connect("guest", vhost=v)
    c.expect_closed()


@scenario
def topic_permission_on_publish(t: T):
    """A topic permission on amq.topic with {username}: publishing with the user's own prefix
    works, another routing key is 403 "access to topic 'k' in exchange topic 'amq.topic' in
    vhost '/' refused for user 'u'"; exchanges without a topic permission are not limited."""
    user = _user(t, ".*", ".*", ".*")
    if user is None:
        return
    if not t.ctl(["set_topic_permissions", "-p", "/", user, "amq.topic", "^{username}\\.", ".*"]):
        return
    c = _as(t, user)
    q = t.n("tq")
    c.declare_queue(1, q, exclusive=True)
    c.bind(1, q, "amq.topic", "#")
    c.sync_channel(1)
    c.publish(1, "amq.topic", f"{user}.news", b"own")
    c.get(1, q, no_ack=True)
    c.publish(1, "amq.direct", "alice.news", b"other exchange")
    c.publish(1, "amq.topic", "alice.news", b"not mine")
    c.close()


@scenario
def topic_permission_on_bind(t: T):
    """The topic read permission limits the routing keys a queue may be bound with on a topic
    exchange ({vhost} expands to the vhost's name)."""
    user = _user(t, ".*", ".*", ".*")
    if user is None:
        return
    if not t.ctl(["set_topic_permissions", "-p", "/", user, "amq.topic", ".*", "^{vhost}\\."]):
        return
    c = _as(t, user)
    q = t.n("tq")
    c.declare_queue(1, q, exclusive=True)
    c.bind(1, q, "amq.topic", "/.news")
    c.bind(1, q, "amq.topic", "#")
    c.close()


@scenario
def cleared_permissions_apply_to_new_channels(t: T):
    """clear_permissions while the user is connected: a new channel on the open connection is
    refused what it was allowed before."""
    user = _user(t, ".*", ".*", ".*")
    if user is None:
        return
    c = _as(t, user)
    c.declare_queue(1, t.n("before"), exclusive=True)
    t.ctl(["clear_permissions", "-p", "/", user])
    c.channel(2, quiet=True)
    c.declare_queue(2, t.n("after"), exclusive=True)
    c.close()


@scenario
def update_secret_is_answered(t: T):
    """connection.update-secret (RabbitMQ's extension, class 10 method 70) is answered with
    update-secret-ok; the internal backend takes any secret and the connection goes on."""
    user = _user(t, ".*", ".*", ".*")
    if user is None:
        return
    c = _as(t, user)
    c.send(0, "connection.update-secret", new_secret=PASSWORD.encode(), reason="rotation")
    c.expect("connection.update-secret-ok", "connection.update-secret-ok")
    c.send(0, "connection.update-secret", new_secret=b"something else", reason="rotation")
    c.expect("connection.update-secret-ok", "connection.update-secret-ok")
    t.check_conn_alive(c)
    c.close()


@scenario
def wrong_password_and_deleted_user(t: T):
    """A wrong password is refused (403 with authentication_failure_close); a deleted user's
    open connection is closed with 320 and it can no longer log in."""
    user = _user(t, ".*", ".*", ".*")
    if user is None:
        return
    bad = t.connect("bad", user=user, password="wrong")
    bad.expect_closed()
    c = _as(t, user)
    t.ctl(["delete_user", user])
    c.expect_closed()
    again = _as(t, user, "again")
    again.expect_closed()


@scenario
def dead_letter_and_alternate_exchanges_need_write(t: T):
    """A new queue with x-dead-letter-exchange needs read on itself and write on the DLX; a
    new exchange with alternate-exchange read on itself and write on the alternate; redeclaring
    an existing one checks configure only."""
    user = _user(t, ".*", "^mine", "^mine")
    if user is None:
        return
    c = _as(t, user)
    st: dict = {}
    c.declare_queue(1, t.n("mine.dl"), exclusive=True, arguments={"x-dead-letter-exchange": "amq.direct"})
    ch = _fresh_channel(c, st)
    c.declare_queue(ch, t.n("other.dl"), exclusive=True, arguments={"x-dead-letter-exchange": t.n("mine.dlx")})
    ch = _fresh_channel(c, st)
    ok = t.n("mine.ok")
    c.declare_queue(ch, ok, exclusive=True, arguments={"x-dead-letter-exchange": t.n("mine.dlx")})
    c.declare_queue(ch, ok, exclusive=True, arguments={"x-dead-letter-exchange": t.n("mine.dlx")})
    c.declare_exchange(ch, t.n("mine.ae"), "direct", auto_delete=True, arguments={"alternate-exchange": "amq.fanout"})
    ch = _fresh_channel(c, st)
    c.declare_exchange(ch, t.n("other.ae"), "direct", auto_delete=True,
                       arguments={"alternate-exchange": t.n("mine.x")})
    ch = _fresh_channel(c, st)
    x = t.n("mine.x2")
    c.declare_exchange(ch, x, "direct", auto_delete=True, arguments={"alternate-exchange": t.n("mine.x")})
    c.declare_exchange(ch, x, "direct", auto_delete=True, arguments={"alternate-exchange": t.n("mine.x")})
    c.call(ch, "exchange.delete", exchange=x)
    c.close()


@scenario
def passive_declares_and_system_exchanges(t: T):
    """A user with no permissions at all on anything but its vhost: passive declares of
    existing queues and exchanges work, the default and amq.* exchanges are refused for what
    they are before any permission."""
    user = _user(t, "^$", "^$", "^$")
    if user is None:
        return
    admin = t.connect("admin")
    q = t.n("other")
    admin.declare_queue(1, q)
    c = _as(t, user)
    st: dict = {}
    c.declare_queue(1, q, passive=True)
    c.declare_exchange(1, "amq.topic", "topic", passive=True)
    c.call(1, "exchange.delete", exchange="amq.topic")
    c.call(_fresh_channel(c, st), "exchange.delete", exchange="")
    c.declare_exchange(_fresh_channel(c, st), "", "direct")
    c.declare_exchange(_fresh_channel(c, st), "amq.direct", "direct", durable=True)
    c.declare_queue(_fresh_channel(c, st), "amq.reserved", exclusive=True)
    c.declare_queue(_fresh_channel(c, st), "", exclusive=True)
    c.close()
    admin.close()
