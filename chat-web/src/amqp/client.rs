//! `Amqp`: a cheap-clone handle over one lapin connection and its confirm-mode publish channel.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;

use lapin::options::{
    BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions,
    QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, ExchangeKind};

use tokio::sync::watch;

use super::addresses::{Addresses, Rotation};
use super::{CHAT_EXCHANGE, DIRECTORY_QUEUE, EVENTS_EXCHANGE, files_queue, room_key, room_queue};
use crate::error::ApiError;

#[derive(Clone)]
pub struct Amqp {
    inner: Arc<Inner>,
}

struct Inner {
    connection: Connection,
    publisher: Channel,
    user: String,
    /// Turns true when a consumer of this connection stopped without being asked to (the
    /// broker cancelled it: its stream's node went away): the connection is as good as lost.
    broken: watch::Sender<bool>,
}

/// How long one node of the address list gets to accept a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Replicas of each stream the chat declares, on a cluster (RabbitMQ caps it at the number of
/// nodes; a single node or warren ignores it): three keep a majority, so writes and
/// confirms go on, when any one node is lost.
pub const STREAM_REPLICAS: i64 = 3;

fn short(s: &str) -> Result<ShortString, ApiError> {
    ShortString::try_new(s).map_err(|_| ApiError::BadRequest("name too long".into()))
}

/// `x-max-age` for a retention of `secs` seconds: whole days as days ("7D", as rooms always
/// had), anything else in seconds ("60s").
pub fn max_age(secs: u64) -> String {
    if secs.is_multiple_of(86_400) { format!("{}D", secs / 86_400) } else { format!("{secs}s") }
}

fn stream_args(max_age_secs: Option<u64>) -> FieldTable {
    let mut args = FieldTable::default();
    args.insert("x-queue-type".into(), AMQPValue::LongString(LongString::from("stream")));
    args.insert("x-initial-cluster-size".into(), AMQPValue::LongLongInt(STREAM_REPLICAS));
    if let Some(secs) = max_age_secs.filter(|s| *s > 0) {
        args.insert("x-max-age".into(), AMQPValue::LongString(LongString::from(max_age(secs))));
    }
    args
}

impl Amqp {
    /// Connect to the first node of `addresses` (a comma-separated list, see
    /// [`Addresses`]) that accepts, starting at `rotation`'s, and declare the chat's shared
    /// topology. An `amqps://` URL connects over TLS, trusting the system's CA certificates
    /// and those in `ca_pem`.
    pub async fn connect(addresses: &str, ca_pem: Option<&str>, rotation: &Rotation) -> Result<Amqp, ApiError> {
        let list = Addresses::parse(addresses).map_err(|e| ApiError::BadRequest(e.to_string()))?;
        let mut last = None;
        for (index, url) in list.from(rotation.first()) {
            match Self::connect_one(url, ca_pem).await {
                Ok(amqp) => {
                    rotation.connected(index, list.len());
                    tracing::info!(node = %Addresses::redacted(url), "chat connected to the broker");
                    return Ok(amqp);
                }
                Err(e) => {
                    tracing::warn!(node = %Addresses::redacted(url), "cannot use this broker node: {e}");
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| ApiError::Broker("no broker address".into())))
    }

    async fn connect_one(url: &str, ca_pem: Option<&str>) -> Result<Amqp, ApiError> {
        let uri: lapin::uri::AMQPUri =
            url.parse().map_err(|e: String| ApiError::BadRequest(format!("bad AMQP URL: {e}")))?;
        let user = uri.authority.userinfo.username.clone();
        let props = ConnectionProperties::default().with_connection_name("warren-chat".into());
        let tls = lapin::tcp::OwnedTLSConfig { identity: None, cert_chain: ca_pem.map(str::to_owned) };
        let runtime = lapin::runtime::default_runtime()?;
        let connecting = Connection::connect_with_config(url, props, tls, runtime);
        let connection = tokio::time::timeout(CONNECT_TIMEOUT, connecting)
            .await
            .map_err(|_| ApiError::Broker(format!("no answer within {CONNECT_TIMEOUT:?}")))??;
        let publisher = connection.create_channel().await?;
        publisher.confirm_select(ConfirmSelectOptions::default()).await?;
        let broken = watch::channel(false).0;
        let amqp = Amqp { inner: Arc::new(Inner { connection, publisher, user, broken }) };
        if let Err(e) = amqp.declare_topology().await {
            amqp.close().await;
            return Err(e);
        }
        Ok(amqp)
    }

    /// A consumer of this connection stopped on its own: [`Amqp::lost`] resolves, and the
    /// front end reconnects (to the next node) and folds everything again.
    pub fn broken(&self, why: &str) {
        if !self.inner.broken.send_replace(true) {
            tracing::warn!("broker connection unusable: {why}");
        }
    }

    /// The AMQP user the chat publishes as (the `user_id` of its messages).
    pub fn user(&self) -> &str {
        &self.inner.user
    }

    pub fn is_connected(&self) -> bool {
        self.inner.connection.status().connected()
    }

    /// Resolves when the connection is gone: checked on every error lapin reports (channel
    /// errors come that way too) and once a second, for a close that reports none.
    pub async fn lost(&self) {
        let mut events = self.inner.connection.events_listener();
        let mut broken = self.inner.broken.subscribe();
        let mut check = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                event = events.next() => match event {
                    Some(lapin::Event::Error(e)) if !self.is_connected() => {
                        tracing::warn!("broker connection lost: {e}");
                        return;
                    }
                    None => return,
                    Some(_) => {}
                },
                _ = broken.wait_for(|b| *b) => return,
                _ = check.tick() => if !self.is_connected() {
                    tracing::warn!("broker connection lost");
                    return;
                },
            }
        }
    }

    async fn declare_topology(&self) -> Result<(), ApiError> {
        let ch = self.inner.connection.create_channel().await?;
        let durable = ExchangeDeclareOptions { durable: true, ..Default::default() };
        ch.exchange_declare(short(CHAT_EXCHANGE)?, ExchangeKind::Topic, durable, FieldTable::default()).await?;
        ch.exchange_declare(
            short(EVENTS_EXCHANGE)?,
            ExchangeKind::Fanout,
            ExchangeDeclareOptions::default(),
            FieldTable::default(),
        )
        .await?;
        let _ = ch.close(200, "bye".into()).await;
        self.declare_stream(short(DIRECTORY_QUEUE)?, stream_args(None)).await
    }

    /// Declare one of the chat's streams. One that exists with other arguments (declared by
    /// an earlier warren, e.g. without `x-initial-cluster-size`: 406 inequivalent arg) is
    /// kept as it is: the chat works with it, and redeclaring it would mean deleting it.
    async fn declare_stream(&self, queue: ShortString, args: FieldTable) -> Result<(), ApiError> {
        let opts = QueueDeclareOptions { durable: true, ..Default::default() };
        let ch = self.inner.connection.create_channel().await?;
        let declared = ch.queue_declare(queue.clone(), opts, args).await;
        let Err(refused) = declared else {
            let _ = ch.close(200, "bye".into()).await;
            return Ok(());
        };
        // the refusal closed that channel; is the stream there at all?
        let ch = self.inner.connection.create_channel().await?;
        let passive = QueueDeclareOptions { passive: true, ..Default::default() };
        match ch.queue_declare(queue.clone(), passive, FieldTable::default()).await {
            Ok(_) => {
                tracing::warn!(queue = %queue, error = %refused, "a stream exists with other arguments: kept as it is");
                let _ = ch.close(200, "bye".into()).await;
                Ok(())
            }
            Err(_) => Err(refused.into()),
        }
    }

    /// Declare room `id`'s stream (retention `secs` seconds, 0 = forever) and bind it to `chat`.
    pub async fn declare_room(&self, id: &str, secs: u64) -> Result<(), ApiError> {
        let queue = short(&room_queue(id))?;
        self.declare_stream(queue.clone(), stream_args(Some(secs))).await?;
        let ch = self.inner.connection.create_channel().await?;
        ch.queue_bind(
            queue,
            short(CHAT_EXCHANGE)?,
            short(&room_key(id))?,
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
        let _ = ch.close(200, "bye".into()).await;
        Ok(())
    }

    /// Delete room `id`'s streams (the room was deleted): its messages and files go at once
    /// (deleting a queue that was never declared is no error, on warren as on RabbitMQ).
    pub async fn delete_room(&self, id: &str) -> Result<(), ApiError> {
        let ch = self.inner.connection.create_channel().await?;
        ch.queue_delete(short(&room_queue(id))?, QueueDeleteOptions::default()).await?;
        ch.queue_delete(short(&files_queue(id))?, QueueDeleteOptions::default()).await?;
        let _ = ch.close(200, "bye".into()).await;
        Ok(())
    }

    /// Declare room `id`'s files stream with the room's retention (`secs`, 0 = forever), so a
    /// file is kept exactly as long as the messages that show it. Bound to no exchange: files
    /// are published straight to it, and bots bound to `room.#` never get the bytes.
    pub async fn declare_files(&self, id: &str, secs: u64) -> Result<(), ApiError> {
        self.declare_stream(short(&files_queue(id))?, stream_args(Some(secs))).await
    }

    /// Publish one file to stream `queue` (default exchange) with `headers` describing it, as
    /// the chat's service user, and wait for the broker's confirm.
    pub async fn publish_file(
        &self,
        queue: &str,
        content_type: &str,
        headers: FieldTable,
        body: &[u8],
    ) -> Result<(), ApiError> {
        let mut props = self.properties(None).with_headers(headers);
        if let Ok(ct) = ShortString::try_new(content_type) {
            props = props.with_content_type(ct);
        }
        let confirm = self
            .inner
            .publisher
            .basic_publish(short("")?, short(queue)?, BasicPublishOptions::default(), body, props)
            .await?
            .await?;
        match confirm {
            Confirmation::Ack(_) | Confirmation::NotRequested => Ok(()),
            Confirmation::Nack(_) => Err(ApiError::Broker("the broker refused the file (nack)".into())),
        }
    }

    /// A fresh channel with `prefetch` credit, for one stream consumer.
    pub async fn consumer_channel(&self, prefetch: u16) -> Result<Channel, ApiError> {
        let ch = self.inner.connection.create_channel().await?;
        ch.basic_qos(prefetch, BasicQosOptions::default()).await?;
        Ok(ch)
    }

    pub async fn channel(&self) -> Result<Channel, ApiError> {
        Ok(self.inner.connection.create_channel().await?)
    }

    /// Properties of the chat's messages; `author` is a header naming who wrote it
    /// (`x-chat-author` for a web user, `x-chat-bot` for a bot's reply relayed by the chat).
    fn properties(&self, author: Option<(&str, &str)>) -> BasicProperties {
        let mut props = BasicProperties::default()
            .with_content_type("application/json".into())
            .with_timestamp(crate::model::now_ms() / 1000)
            .with_delivery_mode(2);
        if let Ok(user) = ShortString::try_new(self.inner.user.as_str()) {
            props = props.with_user_id(user);
        }
        if let Some((header, author)) = author {
            let mut headers = FieldTable::default();
            headers.insert(header.into(), AMQPValue::LongString(LongString::from(author)));
            props = props.with_headers(headers);
        }
        props
    }

    /// Publish and wait for the broker's confirm.
    async fn publish(
        &self,
        exchange: &str,
        key: &str,
        body: &[u8],
        author: Option<(&str, &str)>,
    ) -> Result<(), ApiError> {
        let confirm = self
            .inner
            .publisher
            .basic_publish(short(exchange)?, short(key)?, BasicPublishOptions::default(), body, self.properties(author))
            .await?
            .await?;
        match confirm {
            Confirmation::Ack(_) | Confirmation::NotRequested => Ok(()),
            Confirmation::Nack(_) => Err(ApiError::Broker("the broker refused the message (nack)".into())),
        }
    }

    /// Publish a chat event (message, edit, delete, receipt) by web user `author` to room `room`.
    pub async fn publish_room(&self, room: &str, author: &str, body: &[u8]) -> Result<(), ApiError> {
        self.publish(CHAT_EXCHANGE, &room_key(room), body, Some(("x-chat-author", author))).await
    }

    /// Publish an event of bot `bot`'s streamed reply (relayed by the chat) to room `room`.
    pub async fn publish_room_for_bot(&self, room: &str, bot: &str, body: &[u8]) -> Result<(), ApiError> {
        self.publish(CHAT_EXCHANGE, &room_key(room), body, Some(("x-chat-bot", bot))).await
    }

    /// Publish straight into a stream queue through the default exchange (directory events and
    /// sync markers, which bots bound to `room.#` need not see).
    pub async fn publish_to_queue(&self, queue: &str, body: &[u8]) -> Result<(), ApiError> {
        self.publish("", queue, body, None).await
    }

    /// Publish a transient presence/typing/receipt event to every front end.
    pub async fn publish_event(&self, body: &[u8]) -> Result<(), ApiError> {
        let ch = &self.inner.publisher;
        let mut props = BasicProperties::default().with_content_type("application/json".into());
        // front ends take events only from the chat's own login, which the broker vouches for
        if let Ok(user) = ShortString::try_new(self.inner.user.as_str()) {
            props = props.with_user_id(user);
        }
        // confirms are on for this channel; transient events don't wait for them
        let _confirm =
            ch.basic_publish(short(EVENTS_EXCHANGE)?, short("")?, BasicPublishOptions::default(), body, props).await?;
        Ok(())
    }

    pub async fn close(&self) {
        let _ = self.inner.connection.close(200, "shutdown".into()).await;
    }
}
