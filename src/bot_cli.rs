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

/// `warren exec`: a program in a room.
#[derive(Debug, Args)]
pub struct ExecCommand {
    /// The room's id (`general`, or the `id` that `GET /api/rooms` lists).
    #[arg(long)]
    pub room: String,

    /// The bot's AMQP user: replaces the user in --amqp-url (its password stays). The room shows
    /// lines as from this user, with the bot badge.
    #[arg(long = "as", value_name = "BOT")]
    pub as_bot: Option<String>,

    /// Write each room message to stdin as a JSON line ({"id","room","author","bot","text","ts"})
    /// instead of its text.
    #[arg(long)]
    pub json: bool,

    /// The broker, as the bot's AMQP user, e.g. amqp://echobot:secret@127.0.0.1:5672/chat.
    #[arg(long, env = "WARREN_BOT_AMQP_URL", hide_env_values = true)]
    pub amqp_url: String,

    /// CA certificates (PEM) trusted for an amqps:// URL besides the system's.
    #[arg(long, env = "WARREN_AMQP_CA")]
    pub amqp_ca: Option<std::path::PathBuf>,

    /// Output lines posted per second, at most (a faster program waits on its pipe).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
    pub lines_per_sec: u32,

    /// The program and its arguments (after `--`).
    #[arg(required = true, num_args = 1.., last = true)]
    pub command: Vec<String>,
}

/// `url` with its user replaced by `user` (percent-encoded), the rest as it was.
fn with_user(url: &str, user: &str) -> anyhow::Result<String> {
    let (scheme, rest) = url.split_once("://").ok_or_else(|| anyhow::anyhow!("bad AMQP URL {url:?}"))?;
    let encoded: String = user
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    Ok(match rest.split_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((_, pass)) => format!("{scheme}://{encoded}:{pass}@{host}"),
            None => format!("{scheme}://{encoded}@{host}"),
        },
        None => format!("{scheme}://{encoded}@{rest}"),
    })
}

fn read_ca(path: &Option<std::path::PathBuf>) -> anyhow::Result<Option<String>> {
    match path {
        Some(path) => Ok(Some(
            std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("cannot read the CA certificate {}: {e}", path.display()))?,
        )),
        None => Ok(None),
    }
}

pub async fn exec(cmd: ExecCommand) -> anyhow::Result<()> {
    let amqp_url = match &cmd.as_bot {
        Some(user) => with_user(&cmd.amqp_url, user)?,
        None => cmd.amqp_url.clone(),
    };
    let (program, args) = cmd.command.split_first().ok_or_else(|| anyhow::anyhow!("no program given after --"))?;
    let exec = warren_chat::tools::exec::Exec {
        amqp_url,
        amqp_ca_pem: read_ca(&cmd.amqp_ca)?,
        room: cmd.room,
        json: cmd.json,
        lines_per_sec: cmd.lines_per_sec,
        program: program.clone(),
        args: args.to_vec(),
    };
    let stop = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    warren_chat::tools::exec::run(exec, Default::default(), stop).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::with_user;

    #[test]
    fn as_replaces_the_user_only() {
        assert_eq!(with_user("amqp://a:pw@h:5672/chat", "bot").unwrap(), "amqp://bot:pw@h:5672/chat");
        assert_eq!(with_user("amqp://h/chat", "b t").unwrap(), "amqp://b%20t@h/chat");
        assert!(with_user("nonsense", "x").is_err());
    }
}
