//! The `warren` binary: parse the configuration, start the broker, wait for Ctrl-C or SIGTERM.

mod config;
mod perf_cli;

use clap::Parser;
use tokio::net::TcpListener;
use tokio::sync::watch;

use config::Cli;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_new(&cli.log).unwrap_or_else(|_| "info".into()))
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .init();
    // Without the LIFO slot, a task woken by a busy connection (a consumer's writer) can be
    // stolen by an idle worker instead of waiting for the waker's thread.
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().disable_lifo_slot().build()?;
    match cli.command {
        Some(config::Command::Perf(cmd)) => runtime.block_on(perf_cli::run(cmd)),
        None => runtime.block_on(serve(cli.server)),
    }
}

async fn serve(options: config::ServerOptions) -> anyhow::Result<()> {
    let broker = warren_broker::Broker::open(options.broker_config(), &options.data_dir)
        .map_err(|e| anyhow::anyhow!("cannot open the data directory {}: {e}", options.data_dir.display()))?;
    let listener = TcpListener::bind(&options.amqp_bind)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen for AMQP on {}: {e}", options.amqp_bind))?;
    let addr = listener.local_addr()?;
    tracing::info!("AMQP listening on {addr}");
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let server = tokio::spawn(warren_broker::serve(listener, broker, shutdown_rx));
    wait_for_signal().await?;
    tracing::info!("shutting down");
    let _ = shutdown_tx.send(true);
    server.await?;
    tracing::info!("stopped");
    Ok(())
}

async fn wait_for_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r?,
        _ = term.recv() => {}
    }
    Ok(())
}
