//! Starting a front end's state: connect, follow the bots' replies, fold the directory and
//! listen to `chat.events`, make sure the default room exists, say hello, keep presence fresh.

use std::time::Duration;

use serde_json::json;

use crate::ChatConfig;
use crate::bots;
use crate::error::ApiError;
use crate::state::{App, Local};

/// Start a state, retried a few times.
///
/// RabbitMQ (3.10 at least) answers `queue.declare` for a stream that another client is
/// declaring at the same moment before the stream is started, and a `basic.consume` on it then
/// crashes the channel with 541 INTERNAL_ERROR (`stream_not_found`), which closes the whole
/// connection. Front ends starting together on a fresh broker hit this on `chat.directory`; a
/// second attempt finds the stream up.
pub async fn start(config: ChatConfig, local: Local) -> Result<App, ApiError> {
    const ATTEMPTS: u32 = 5;
    let mut attempt = 1;
    loop {
        match start_once(config.clone(), local.clone()).await {
            Ok(app) => return Ok(app),
            Err(ApiError::Broker(e)) if attempt < ATTEMPTS => {
                tracing::warn!(attempt, "chat could not start, retrying: {e}");
                tokio::time::sleep(Duration::from_millis(250 * u64::from(attempt))).await;
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Start a state once: its broker connection is shut down again if a step fails.
pub(crate) async fn start_once(config: ChatConfig, local: Local) -> Result<App, ApiError> {
    let (app, direct_replies) = App::connect(config, local).await?;
    if let Some(consumer) = direct_replies {
        app.keep(bots::replies::follow(&app, consumer));
    }
    app.keep(bots::replies::watch_timeouts(&app));
    if let Err(e) = app.listen().await {
        app.shutdown().await;
        return Err(e);
    }
    if let Err(e) = crate::default_room::ensure(&app).await {
        app.shutdown().await;
        return Err(e);
    }
    app.announce(&json!({"type": "hello", "node": app.node})).await;
    app.keep_presence_fresh();
    app.sweep_expired();
    Ok(app)
}
