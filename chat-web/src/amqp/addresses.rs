//! `Addresses`: the broker nodes of `--amqp-url`, a comma-separated list as RabbitMQ's clients
//! take one (`amqp://u:p@rabbit1:5672/%2f,amqp://u:p@rabbit2:5672/%2f`, or after the first URL
//! bare `host:port` items that borrow its scheme, credentials and vhost), and `Rotation`, where
//! a front end tries them from: the node after the one it last used, so a front end whose
//! node went away moves on to the next instead of waiting for it.

use std::sync::atomic::{AtomicUsize, Ordering};

/// A bad `--amqp-url` list.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AddressError {
    #[error("no AMQP address given")]
    Empty,
    #[error("the first AMQP address must be a full URL (amqp://user:pass@host:port/vhost), got {0:?}")]
    FirstNotUrl(String),
    #[error("empty item in the AMQP address list")]
    EmptyItem,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Addresses {
    urls: Vec<String>,
}

impl Addresses {
    pub fn parse(list: &str) -> Result<Addresses, AddressError> {
        let mut items = list.split(',').map(str::trim);
        let first = items.next().filter(|s| !s.is_empty()).ok_or(AddressError::Empty)?;
        let Some((scheme, rest)) = first.split_once("://") else {
            return Err(AddressError::FirstNotUrl(first.to_owned()));
        };
        // scheme://[userinfo@]host[:port][/vhost][?query]
        let (authority, path) = rest.find(['/', '?']).map_or((rest, ""), |i| rest.split_at(i));
        let userinfo = authority.rsplit_once('@').map(|(u, _)| u);
        let mut urls = vec![first.to_owned()];
        for item in items {
            if item.is_empty() {
                return Err(AddressError::EmptyItem);
            }
            if item.contains("://") {
                urls.push(item.to_owned());
            } else {
                let at = userinfo.map(|u| format!("{u}@")).unwrap_or_default();
                urls.push(format!("{scheme}://{at}{item}{path}"));
            }
        }
        Ok(Addresses { urls })
    }

    pub fn len(&self) -> usize {
        self.urls.len()
    }

    pub fn is_empty(&self) -> bool {
        self.urls.is_empty()
    }

    /// The addresses in the order to try them: index and URL, from `first` on, wrapping.
    pub fn from(&self, first: usize) -> impl Iterator<Item = (usize, &str)> {
        let n = self.urls.len();
        (0..n).map(move |k| {
            let i = (first + k) % n.max(1);
            (i, self.urls[i].as_str())
        })
    }

    /// `url` without its password, for logs.
    pub fn redacted(url: &str) -> String {
        match (url.split_once("://"), url.rfind('@')) {
            (Some((scheme, rest)), Some(_)) => {
                let (userinfo, host) = rest.rsplit_once('@').unwrap_or(("", rest));
                let user = userinfo.split(':').next().unwrap_or_default();
                format!("{scheme}://{user}@{host}")
            }
            _ => url.to_owned(),
        }
    }
}

/// Where a front end starts trying the addresses: kept across reconnects.
#[derive(Debug, Default)]
pub struct Rotation {
    next: AtomicUsize,
}

impl Rotation {
    pub fn first(&self) -> usize {
        self.next.load(Ordering::Relaxed)
    }

    /// Connected to address `index`: after losing it, try the one after it first.
    pub fn connected(&self, index: usize, of: usize) {
        self.next.store((index + 1) % of.max(1), Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_url_is_a_list_of_one() {
        let a = Addresses::parse("amqp://u:p@h:5672/%2f").unwrap();
        assert_eq!(a.from(0).collect::<Vec<_>>(), [(0, "amqp://u:p@h:5672/%2f")]);
        assert_eq!(a.from(3).count(), 1);
    }

    #[test]
    fn bare_hosts_borrow_scheme_credentials_and_vhost() {
        let a = Addresses::parse("amqps://u:p@h1:5671/chat?heartbeat=5, h2:5671 ,amqp://x:y@h3/%2f").unwrap();
        let urls: Vec<_> = a.from(1).map(|(_, u)| u.to_owned()).collect();
        assert_eq!(
            urls,
            ["amqps://u:p@h2:5671/chat?heartbeat=5", "amqp://x:y@h3/%2f", "amqps://u:p@h1:5671/chat?heartbeat=5"]
        );
        let a = Addresses::parse("amqp://h1,h2:1").unwrap();
        assert_eq!(a.from(1).next(), Some((1, "amqp://h2:1")));
    }

    #[test]
    fn bad_lists() {
        assert_eq!(Addresses::parse(""), Err(AddressError::Empty));
        assert_eq!(Addresses::parse("h1:5672"), Err(AddressError::FirstNotUrl("h1:5672".into())));
        assert_eq!(Addresses::parse("amqp://h1,,h2"), Err(AddressError::EmptyItem));
    }

    #[test]
    fn rotation_moves_past_the_node_in_use() {
        let r = Rotation::default();
        assert_eq!(r.first(), 0);
        r.connected(2, 3);
        assert_eq!(r.first(), 0);
        r.connected(0, 3);
        assert_eq!(r.first(), 1);
        assert_eq!(Addresses::redacted("amqp://u:secret@h:1/%2f"), "amqp://u@h:1/%2f");
    }
}
