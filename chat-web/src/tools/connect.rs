//! One AMQP connection for a bot, as the chat itself connects (TLS for amqps:// URLs).

use lapin::{Connection, ConnectionProperties};

use super::ToolError;

/// Connect to `url`, naming the connection `name` (shown in the management API).
pub async fn connect(url: &str, ca_pem: Option<&str>, name: &str) -> Result<Connection, ToolError> {
    let props = ConnectionProperties::default().with_connection_name(name.into());
    let tls = lapin::tcp::OwnedTLSConfig { identity: None, cert_chain: ca_pem.map(str::to_owned) };
    let runtime = lapin::runtime::default_runtime()?;
    Ok(Connection::connect_with_config(url, props, tls, runtime).await?)
}
