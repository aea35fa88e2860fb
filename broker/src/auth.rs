//! SASL (PLAIN and AMQPLAIN) and the users a broker starts with. Users themselves live in
//! [`crate::access`]; `guest` may log in from loopback only, as in RabbitMQ.

use amq_protocol::types::parsing::parse_field_table;
use amq_protocol::types::{AMQPValue, FieldTable};

/// A user the broker creates when it starts on a fresh data directory (the default user),
/// or at every start (a service user the binary needs, such as the chat's).
#[derive(Clone, Debug)]
pub struct User {
    pub name: String,
    pub password: String,
}

impl User {
    /// RabbitMQ's default user.
    pub fn guest() -> Self {
        Self { name: "guest".into(), password: "guest".into() }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("unknown authentication mechanism '{0}'")]
    UnknownMechanism(String),
    #[error("malformed {0} response")]
    Malformed(&'static str),
    #[error("invalid credentials for user '{0}'")]
    InvalidCredentials(String),
    #[error("user '{0}' can only connect via localhost")]
    LoopbackOnly(String),
    #[error("user '{0}' attempted to log in with a blank password")]
    BlankPassword(String),
}

/// The SASL mechanisms offered in connection.start.
pub const MECHANISMS: &str = "AMQPLAIN PLAIN";

/// The user name and password of a start-ok response.
pub fn parse_response(mechanism: &str, response: &[u8]) -> Result<(String, String), AuthError> {
    match mechanism {
        "PLAIN" => parse_plain(response),
        "AMQPLAIN" => parse_amqplain(response),
        other => Err(AuthError::UnknownMechanism(other.to_owned())),
    }
}

/// PLAIN: `authzid \0 authcid \0 password`.
fn parse_plain(response: &[u8]) -> Result<(String, String), AuthError> {
    let mut parts = response.split(|b| *b == 0);
    let (Some(_authzid), Some(user), Some(pass), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(AuthError::Malformed("PLAIN"));
    };
    let text = |b: &[u8]| String::from_utf8(b.to_vec()).map_err(|_| AuthError::Malformed("PLAIN"));
    Ok((text(user)?, text(pass)?))
}

/// AMQPLAIN: a field table without its length prefix, with LOGIN and PASSWORD.
fn parse_amqplain(response: &[u8]) -> Result<(String, String), AuthError> {
    let mut framed = Vec::with_capacity(response.len() + 4);
    framed.extend_from_slice(&(response.len() as u32).to_be_bytes());
    framed.extend_from_slice(response);
    let table: FieldTable = match parse_field_table(&framed[..]) {
        Ok((&[], t)) => t,
        _ => return Err(AuthError::Malformed("AMQPLAIN")),
    };
    let field = |key: &str| match table.inner().get(key) {
        Some(AMQPValue::LongString(s)) => String::from_utf8(s.as_bytes().to_vec()).ok(),
        Some(AMQPValue::ShortString(s)) => Some(s.as_str().to_owned()),
        _ => None,
    };
    match (field("LOGIN"), field("PASSWORD")) {
        (Some(u), Some(p)) => Ok((u, p)),
        _ => Err(AuthError::Malformed("AMQPLAIN")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain() {
        assert_eq!(parse_response("PLAIN", b"\0guest\0guest"), Ok(("guest".into(), "guest".into())));
        assert!(matches!(parse_response("PLAIN", b"garbage"), Err(AuthError::Malformed(_))));
        assert!(matches!(parse_response("EXTERNAL", b""), Err(AuthError::UnknownMechanism(_))));
    }

    #[test]
    fn amqplain() {
        let mut body = Vec::new();
        for (k, v) in [("LOGIN", "guest"), ("PASSWORD", "guest")] {
            body.push(k.len() as u8);
            body.extend_from_slice(k.as_bytes());
            body.push(b'S');
            body.extend_from_slice(&(v.len() as u32).to_be_bytes());
            body.extend_from_slice(v.as_bytes());
        }
        assert_eq!(parse_response("AMQPLAIN", &body), Ok(("guest".into(), "guest".into())));
        assert!(parse_response("AMQPLAIN", &body[..5]).is_err());
    }
}
