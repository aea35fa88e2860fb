//! `warren bot ...`: bots that join the chat over AMQP (the embedded broker or RabbitMQ).

use clap::{Args, Subcommand};

#[derive(Debug, Args)]
pub struct BotCommand {
    #[command(subcommand)]
    pub bot: Bot,
}

#[derive(Debug, Subcommand)]
pub enum Bot {
    /// The reference bot: answers `@NAME ...` (or `/NAME ...`) in any room with the words of a
    /// text, streamed one word at a time at a fixed rate.
    Words(WordsArgs),
}

#[derive(Debug, Args)]
pub struct WordsArgs {
    /// The broker, as the bot's own AMQP user, e.g. amqp://wordsbot:secret@127.0.0.1:5672/chat
    /// (the embedded chat lives in the vhost `chat`).
    #[arg(long, env = "WARREN_BOT_AMQP_URL", hide_env_values = true)]
    pub amqp_url: String,

    /// CA certificates (PEM) trusted for an amqps:// URL besides the system's.
    #[arg(long, env = "WARREN_AMQP_CA")]
    pub amqp_ca: Option<std::path::PathBuf>,

    /// The bot's name: it answers `@NAME` and `/NAME`, on the queue `NAME.requests`.
    #[arg(long, default_value = "words")]
    pub name: String,

    /// Words per second.
    #[arg(long, default_value_t = 5.0)]
    pub rate: f64,

    /// The text it answers with (default: the opening of "Three Men in a Boat").
    #[arg(long)]
    pub text: Option<String>,
}

pub async fn run(cmd: BotCommand) -> anyhow::Result<()> {
    match cmd.bot {
        Bot::Words(args) => {
            let ca = match &args.amqp_ca {
                Some(path) => Some(
                    std::fs::read_to_string(path)
                        .map_err(|e| anyhow::anyhow!("cannot read the CA certificate {}: {e}", path.display()))?,
                ),
                None => None,
            };
            let bot = warren_chat::tools::words_bot::WordsBot {
                amqp_url: args.amqp_url,
                amqp_ca_pem: ca,
                name: args.name,
                rate: args.rate,
                text: args.text.unwrap_or_else(|| warren_chat::tools::words_bot::DEFAULT_TEXT.to_owned()),
            };
            let stop = async {
                let _ = tokio::signal::ctrl_c().await;
            };
            warren_chat::tools::words_bot::run(bot, stop).await?;
            Ok(())
        }
    }
}
