//! `Live`: the chat's current `App`, replaced as a whole when its broker connection is lost.
//!
//! When the broker restarts (or the RabbitMQ node goes away), `supervise` retires the old
//! state: its WebSocket sessions close and their clients reconnect with backoff, catching up
//! from their last offsets. It then connects again, with backoff, folds the directory anew and
//! swaps the new state in. Sign-ins and login limits carry over (`Local`); nothing else lived
//! outside the broker.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;
use tokio::sync::watch;

use crate::ChatConfig;
use crate::state::App;

const FIRST_RETRY: Duration = Duration::from_millis(500);
const LONGEST_RETRY: Duration = Duration::from_secs(10);
/// A connection that lasted this long was not lost "soon after connecting".
const STABLE: Duration = Duration::from_secs(30);

#[derive(Clone)]
pub struct Live {
    current: Arc<RwLock<App>>,
}

impl Live {
    pub fn new(app: App) -> Live {
        Live { current: Arc::new(RwLock::new(app)) }
    }

    /// The state requests and new sessions use now.
    pub fn app(&self) -> App {
        self.current.read().clone()
    }

    fn replace(&self, app: App) {
        *self.current.write() = app;
    }
}

/// Replace `live`'s app each time its broker connection is lost, until `shutdown` turns true.
pub async fn supervise(live: Live, config: ChatConfig, mut shutdown: watch::Receiver<bool>) {
    // connections lost soon after they were made, in a row (a broker that keeps cancelling a
    // stream consumer, say): wait before the next attempt, longer each time
    let mut quick_losses = 0u32;
    loop {
        let old = live.app();
        let since = std::time::Instant::now();
        tokio::select! {
            _ = old.connection_lost() => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
        old.retire().await;
        if since.elapsed() < STABLE {
            quick_losses += 1;
            let pause = (FIRST_RETRY * 2u32.saturating_pow(quick_losses.min(5) - 1)).min(LONGEST_RETRY);
            tracing::warn!(
                "the broker connection was lost {quick_losses} time(s) in a row soon after connecting: waiting {pause:?}"
            );
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = shutdown.wait_for(|s| *s) => return,
            }
        } else {
            quick_losses = 0;
        }
        let mut delay = FIRST_RETRY;
        let next = loop {
            let attempt = tokio::select! {
                started = crate::start::start_once(config.clone(), old.local.clone()) => started,
                _ = shutdown.wait_for(|s| *s) => return,
            };
            match attempt {
                Ok(next) => break next,
                Err(e) => {
                    tracing::warn!("chat cannot reach the broker yet, retrying in {delay:?}: {e}");
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = shutdown.wait_for(|s| *s) => return,
                    }
                    delay = (delay * 2).min(LONGEST_RETRY);
                }
            }
        };
        live.replace(next);
        tracing::info!("chat reconnected to the broker");
    }
}
