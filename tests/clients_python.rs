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
    let status = Command::new(Path::new(&venv).join("bin/pytest"))
        .args(["-q", "-p", "no:cacheprovider", "tests/python_bots"])
        .current_dir(root)
        .env("AMQP_URL", format!("amqp://pybot:pybot-secret@{}/chat", w.amqp))
        .env("CHAT_URL", chat)
        .status()
        .expect("run pytest");
    assert!(status.success(), "pika bot suite failed against warren ({status})");
}
