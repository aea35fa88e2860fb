//! HTTP Basic authentication against the broker's users, and RabbitMQ's tag rules
//! (`rabbit_mgmt_util`): `management` (or `policymaker`) sees and acts on the vhosts it has
//! permissions on and its own connections; `monitoring` sees every vhost's objects,
//! connections and the nodes; `administrator` also manages users, vhosts, permissions and
//! definitions. A user with none of these tags may not use the API at all.

use std::net::IpAddr;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use warren_broker::Broker;
use warren_broker::vhost::VirtualHost;

use crate::error::ApiError;

/// The tags that open the management API.
const MANAGEMENT_TAGS: &[&str] = &["management", "policymaker", "monitoring", "administrator"];

/// An authenticated user of the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub tags: Vec<String>,
}

impl User {
    fn has(&self, tag: &str) -> bool {
        self.tags.iter().any(|t| t == tag)
    }

    pub fn is_admin(&self) -> bool {
        self.has("administrator")
    }

    /// `monitoring`, or an administrator: sees everything.
    pub fn is_monitor(&self) -> bool {
        self.is_admin() || self.has("monitoring")
    }

    pub fn is_management(&self) -> bool {
        MANAGEMENT_TAGS.iter().any(|t| self.has(t))
    }

    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.is_admin() { Ok(()) } else { Err(ApiError::NotAuthorised("Not administrator user".into())) }
    }

    pub fn require_monitor(&self) -> Result<(), ApiError> {
        if self.is_monitor() { Ok(()) } else { Err(ApiError::NotAuthorised("Not monitor user".into())) }
    }

    /// Whether the user has permissions on `vhost` (may open it over AMQP).
    pub fn has_permissions(&self, broker: &Broker, vhost: &str) -> bool {
        broker.access.permissions(&self.name, vhost).may_open()
    }

    /// Whether the user sees `vhost`'s objects in listings.
    pub fn sees_vhost(&self, broker: &Broker, vhost: &str) -> bool {
        self.is_monitor() || self.has_permissions(broker, vhost)
    }

    /// RabbitMQ's `is_authorized_vhost`, for every path naming a vhost (reads included, even
    /// for `monitoring`): administrators pass (what they change is then checked against their
    /// permissions, as any user's), others need permissions on it. A vhost that does not
    /// exist passes here and is a 404 later.
    pub fn require_vhost(&self, broker: &Broker, vhost: &str) -> Result<(), ApiError> {
        if self.is_admin() || self.has_permissions(broker, vhost) || broker.vhost(vhost).is_none() {
            return Ok(());
        }
        Err(vhost_refused())
    }

    /// The vhosts whose objects the user sees in listings, by name.
    pub fn visible_vhosts(&self, broker: &Broker) -> Vec<Arc<VirtualHost>> {
        broker.vhost_list().into_iter().filter(|v| self.sees_vhost(broker, &v.name)).collect()
    }

    /// The vhosts a listing covers: `vhost` alone (after the visibility check; 404 when it
    /// does not exist), or every visible one.
    pub fn listed_vhosts(&self, broker: &Broker, vhost: Option<&str>) -> Result<Vec<Arc<VirtualHost>>, ApiError> {
        match vhost {
            Some(name) => {
                self.require_vhost(broker, name)?;
                Ok(vec![broker.vhost(name).ok_or(ApiError::NotFound)?])
            }
            None => Ok(self.visible_vhosts(broker)),
        }
    }

    /// Whether the user sees a connection or channel of `owner` (RabbitMQ's
    /// `filter_conn_ch_list`): its own, or any for monitoring.
    pub fn sees_connection_of(&self, owner: &str) -> bool {
        self.is_monitor() || self.name == owner
    }
}

fn vhost_refused() -> ApiError {
    ApiError::NotAuthorised("User not authorised to access virtual host".into())
}

/// `user:password` from an `Authorization: Basic ...` header.
pub fn parse_basic(header: &str) -> Option<(String, String)> {
    let (scheme, encoded) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

/// Check the credentials of a request from `peer` as an AMQP login is checked (the same
/// password check, blank passwords refused, `loopback_users` only from loopback), then the
/// tags. SHA-256 password hashes cost microseconds, so this runs on the runtime's thread.
pub fn authenticate(broker: &Broker, authorization: Option<&str>, peer: Option<IpAddr>) -> Result<User, ApiError> {
    let Some(header) = authorization else { return Err(ApiError::NoCredentials) };
    let Some((name, password)) = parse_basic(header) else { return Err(ApiError::LoginFailed) };
    if password.is_empty() || !broker.access.check_password(&name, &password) {
        tracing::info!(user = %name, "management API: login failed");
        return Err(ApiError::LoginFailed);
    }
    let loopback_only = broker.config.loopback_users.contains(&name);
    if loopback_only && !peer.is_some_and(|ip| is_loopback(&ip)) {
        return Err(ApiError::NotAuthorised("User can only log in via localhost".into()));
    }
    let Some(def) = broker.access.user(&name) else { return Err(ApiError::LoginFailed) };
    let user = User { name: def.name, tags: def.tags };
    if !user.is_management() {
        return Err(ApiError::NotAuthorised("Not management user".into()));
    }
    Ok(user)
}

/// Loopback, including an IPv4 loopback address mapped into IPv6 (a dual-stack listener).
fn is_loopback(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use warren_broker::BrokerConfig;

    fn basic(user: &str, pass: &str) -> String {
        format!("Basic {}", STANDARD.encode(format!("{user}:{pass}")))
    }

    fn user(tags: &[&str]) -> User {
        User { name: "u".into(), tags: tags.iter().map(|t| t.to_string()).collect() }
    }

    #[test]
    fn basic_credentials_parse() {
        assert_eq!(parse_basic(&basic("a", "b:c")), Some(("a".into(), "b:c".into())));
        assert_eq!(parse_basic("basic YTpi"), Some(("a".into(), "b".into())));
        assert_eq!(parse_basic("Bearer abc"), None);
        assert_eq!(parse_basic("Basic !!!"), None);
        assert_eq!(parse_basic("Basic YWJj"), None, "no colon");
    }

    #[test]
    fn tag_rules() {
        assert!(!user(&[]).is_management());
        assert!(!user(&["impersonator"]).is_management());
        for t in ["management", "policymaker", "monitoring", "administrator"] {
            assert!(user(&[t]).is_management(), "{t}");
        }
        assert!(user(&["administrator"]).is_monitor());
        assert!(user(&["monitoring"]).is_monitor());
        assert!(!user(&["management", "policymaker"]).is_monitor());
        assert!(user(&["monitoring"]).require_admin().is_err());
        assert!(user(&["management"]).require_monitor().is_err());
        assert!(user(&["management"]).sees_connection_of("u"));
        assert!(!user(&["management"]).sees_connection_of("other"));
        assert!(user(&["monitoring"]).sees_connection_of("other"));
    }

    #[test]
    fn login_as_amqp_with_loopback_and_tags() {
        let broker = Broker::new(BrokerConfig::default());
        let local: Option<IpAddr> = Some("127.0.0.1".parse().unwrap());
        let remote: Option<IpAddr> = Some("192.0.2.1".parse().unwrap());
        let guest = authenticate(&broker, Some(&basic("guest", "guest")), local).unwrap();
        assert!(guest.is_admin());
        assert_eq!(authenticate(&broker, None, local), Err(ApiError::NoCredentials));
        assert_eq!(authenticate(&broker, Some(&basic("guest", "nope")), local), Err(ApiError::LoginFailed));
        assert_eq!(authenticate(&broker, Some("Basic %%%"), local), Err(ApiError::LoginFailed));
        assert!(matches!(
            authenticate(&broker, Some(&basic("guest", "guest")), remote),
            Err(ApiError::NotAuthorised(_))
        ));
        let mapped: Option<IpAddr> = Some("::ffff:127.0.0.1".parse().unwrap());
        assert!(authenticate(&broker, Some(&basic("guest", "guest")), mapped).is_ok());
        broker.access.add_user("plain", "pw").unwrap();
        assert_eq!(
            authenticate(&broker, Some(&basic("plain", "pw")), remote),
            Err(ApiError::NotAuthorised("Not management user".into()))
        );
        broker.access.add_user("blank", "").unwrap();
        broker.access.set_user_tags("blank", &["administrator".into()]).unwrap();
        assert_eq!(authenticate(&broker, Some(&basic("blank", "")), local), Err(ApiError::LoginFailed));
    }

    #[test]
    fn vhost_rules() {
        let broker = Broker::new(BrokerConfig::default());
        broker.add_vhost("v2", "", Vec::new()).unwrap();
        broker.access.add_user("m", "pw").unwrap();
        let m = User { name: "m".into(), tags: vec!["management".into()] };
        assert!(m.require_vhost(&broker, "v2").is_err());
        assert!(!m.sees_vhost(&broker, "v2"));
        assert!(m.require_vhost(&broker, "nope").is_ok(), "a missing vhost is a 404 later");
        broker.access.set_permissions(warren_broker::access::full_permissions("m", "v2")).unwrap();
        assert!(m.require_vhost(&broker, "v2").is_ok());
        let mon = User { name: "mon".into(), tags: vec!["monitoring".into()] };
        assert!(mon.sees_vhost(&broker, "v2"), "monitoring lists every vhost's objects");
        assert!(mon.require_vhost(&broker, "v2").is_err(), "but not per vhost without permissions");
        let admin = User { name: "admin".into(), tags: vec!["administrator".into()] };
        assert!(admin.require_vhost(&broker, "v2").is_ok());
    }
}
