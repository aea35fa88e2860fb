//! pika (Python) against the real binary: the suite in tests/python, run in the venv that
//! scripts/python-venv.sh creates (installing python3-venv if needed), and tests/python_tls
//! over AMQPS with a certificate the test makes. Never skipped.

mod common;

use std::path::Path;
use std::process::Command;

use common::Warren;

/// The repository root and the venv scripts/python-venv.sh made (or found).
fn python_venv() -> (&'static Path, String) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let venv = Command::new("bash")
        .arg(root.join("scripts/python-venv.sh"))
        .current_dir(root)
        .output()
        .expect("run python-venv.sh");
    assert!(venv.status.success(), "python-venv.sh failed:\n{}", String::from_utf8_lossy(&venv.stderr));
    (root, String::from_utf8_lossy(&venv.stdout).trim().to_owned())
}

#[test]
fn pika_suite_passes_against_the_binary() {
    let (root, venv) = python_venv();
    let w = Warren::start(&[]);
    let status = Command::new(Path::new(&venv).join("bin/pytest"))
        .args(["-q", "-p", "no:cacheprovider", "tests/python"])
        .current_dir(root)
        .env("AMQP_URL", w.url())
        .status()
        .expect("run pytest");
    assert!(status.success(), "pika suite failed against warren ({status})");
}

#[test]
fn pika_over_amqps_against_the_binary() {
    let (root, venv) = python_venv();
    let pki = common::pki::Pki::new();
    let (_w, amqps, _) = Warren::start_tls(&pki, &["--no-chat"]);
    let status = Command::new(Path::new(&venv).join("bin/pytest"))
        .args(["-q", "-p", "no:cacheprovider", "tests/python_tls"])
        .current_dir(root)
        .env("AMQPS_URL", format!("amqps://guest:guest@127.0.0.1:{}/%2f", amqps.port()))
        .env("AMQPS_CA", pki.ca())
        .status()
        .expect("run pytest");
    assert!(status.success(), "pika AMQPS suite failed against warren ({status})");
}

/// The README's pika bot (chat-web/bots/echo_bot.py), as its own AMQP user in the chat's vhost:
/// a round trip in both reply modes, and through the chat (tests/python_bots).
#[test]
fn pika_bot_streams_replies_into_the_chat() {
    let (root, venv) = python_venv();
    let w = Warren::start(&[]);
    let chat = w.chat_base();
    common::ctl_ok(&w.data_dir, &["add_user", "pybot", "pybot-secret"]);
    let any = r"^(pybot-.*|amq\.gen.*|amq\.default)$";
    common::ctl_ok(&w.data_dir, &["set_permissions", "-p", "chat", "pybot", any, any, any]);
    bot_suite(root, &venv, &format!("amqp://pybot:pybot-secret@{}/chat", w.amqp), &chat);
}

/// The same with the chat and the bot on RabbitMQ (scripts/test.sh runs it with `--ignored`):
/// `WARREN_PIKA_CHAT_AMQP_URL` is the chat's broker and login, `WARREN_PIKA_BOT_AMQP_URL` the
/// bot's login on the same vhost (configure/read/write on `pybot-.*`, `amq.gen.*`,
/// `amq.default`).
#[test]
#[ignore = "needs RabbitMQ: WARREN_PIKA_CHAT_AMQP_URL and WARREN_PIKA_BOT_AMQP_URL (scripts/test.sh)"]
fn pika_bot_streams_replies_into_a_chat_on_rabbitmq() {
    let chat_url = std::env::var("WARREN_PIKA_CHAT_AMQP_URL").expect("WARREN_PIKA_CHAT_AMQP_URL");
    let bot_url = std::env::var("WARREN_PIKA_BOT_AMQP_URL").expect("WARREN_PIKA_BOT_AMQP_URL");
    let (root, venv) = python_venv();
    let front = common::ChatFrontEnd::start(&chat_url);
    bot_suite(root, &venv, &bot_url, &front.base);
}

/// tests/python_bots: the bot logs in with `amqp_url`, the chat is at `chat`.
fn bot_suite(root: &Path, venv: &str, amqp_url: &str, chat: &str) {
    let status = Command::new(Path::new(venv).join("bin/pytest"))
        .args(["-q", "-p", "no:cacheprovider", "tests/python_bots"])
        .current_dir(root)
        .env("AMQP_URL", amqp_url)
        .env("CHAT_URL", chat)
        .status()
        .expect("run pytest");
    assert!(status.success(), "pika bot suite failed against warren ({status})");
}
