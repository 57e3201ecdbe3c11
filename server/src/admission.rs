//! Who may open a socket: the Origin allow-list and the connection caps.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use crate::metrics::RefusalReason;

/// The origin of `trunk serve`, the development setup in the README.
const DEV_ORIGINS: [&str; 2] = ["http://127.0.0.1:8081", "http://localhost:8081"];

/// Which web pages may open sockets: the server's own origin (its public
/// origin when configured, else the one the request's `Host` names), any
/// configured ones, and `trunk serve`'s in development. Requests without
/// `Origin` (non-browser clients) are allowed: the check exists to stop other
/// sites' pages from riding on a visitor's browser.
#[derive(Debug, Clone, Default)]
pub struct OriginPolicy {
    public: Option<String>,
    extra: Vec<String>,
}

fn normalized(origin: &str) -> String {
    origin.trim().trim_end_matches('/').to_ascii_lowercase()
}

impl OriginPolicy {
    /// The server's own origin is `public` if given (behind a proxy that
    /// rewrites `Host`), else taken from `Host`; `extra` origins (as
    /// `scheme://host[:port]`) are allowed too, and `trunk serve`'s if `dev`.
    pub fn new(public: Option<&str>, extra: &[String], dev: bool) -> Self {
        let mut extra: Vec<String> = extra.iter().map(|origin| normalized(origin)).collect();
        if dev {
            extra.extend(DEV_ORIGINS.iter().map(|origin| (*origin).to_owned()));
        }
        Self { public: public.map(normalized), extra }
    }

    /// Whether a request with this `Origin` header, sent to this `Host`, may upgrade.
    pub fn allows(&self, origin: Option<&str>, host: Option<&str>) -> bool {
        let Some(origin) = origin else { return true };
        let origin = normalized(origin);
        let same_origin = match &self.public {
            Some(public) => origin == *public,
            None => host.is_some_and(|host| {
                let host = host.to_ascii_lowercase();
                origin == format!("http://{host}") || origin == format!("https://{host}")
            }),
        };
        same_origin || self.extra.contains(&origin)
    }
}

/// Counts open sockets, in all and per IP address.
#[derive(Debug)]
pub struct ConnectionLimiter {
    max_total: usize,
    max_per_ip: usize,
    open: Mutex<(usize, HashMap<IpAddr, usize>)>,
}

/// One admitted connection; frees its place when dropped.
#[derive(Debug)]
pub struct ConnectionPermit {
    limiter: Arc<ConnectionLimiter>,
    ip: Option<IpAddr>,
}

impl ConnectionLimiter {
    /// At most `max_total` sockets, and `max_per_ip` from one address.
    pub fn new(max_total: usize, max_per_ip: usize) -> Arc<Self> {
        Arc::new(Self { max_total, max_per_ip, open: Mutex::new((0, HashMap::new())) })
    }

    /// Takes a place for a connection from `ip`, or says why not.
    pub fn admit(self: &Arc<Self>, ip: Option<IpAddr>) -> Result<ConnectionPermit, RefusalReason> {
        let mut open = self.open.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let (total, per_ip) = &mut *open;
        if *total >= self.max_total {
            return Err(RefusalReason::ServerFull);
        }
        if let Some(ip) = ip {
            let count = per_ip.entry(ip).or_insert(0);
            if *count >= self.max_per_ip {
                return Err(RefusalReason::IpLimit);
            }
            *count += 1;
        }
        *total += 1;
        Ok(ConnectionPermit { limiter: self.clone(), ip })
    }
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        let mut open = self.limiter.open.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let (total, per_ip) = &mut *open;
        *total = total.saturating_sub(1);
        if let Some(ip) = self.ip
            && let Some(count) = per_ip.get_mut(&ip)
        {
            *count -= 1;
            if *count == 0 {
                per_ip.remove(&ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_origin_and_configured_origins_are_allowed() {
        let policy = OriginPolicy::new(None, &["https://Chat.Example.org/".to_owned()], false);
        assert!(policy.allows(None, Some("127.0.0.1:8080")), "non-browser clients");
        assert!(policy.allows(Some("http://127.0.0.1:8080"), Some("127.0.0.1:8080")));
        assert!(policy.allows(Some("https://chat.example.org"), Some("10.0.0.1:8080")));
        assert!(!policy.allows(Some("http://localhost:8081"), Some("127.0.0.1:8080")), "trunk serve only with --dev");
        assert!(!policy.allows(Some("https://evil.example"), Some("127.0.0.1:8080")));
        assert!(!policy.allows(Some("null"), Some("127.0.0.1:8080")));
    }

    #[test]
    fn trunk_serve_is_allowed_in_development() {
        let policy = OriginPolicy::new(None, &[], true);
        assert!(policy.allows(Some("http://localhost:8081"), Some("127.0.0.1:8080")));
        assert!(policy.allows(Some("http://127.0.0.1:8081"), Some("127.0.0.1:8080")));
    }

    #[test]
    fn a_public_origin_replaces_the_host_comparison() {
        let policy = OriginPolicy::new(Some("https://chat.example.org/"), &[], false);
        // The proxy rewrote Host to the upstream's address.
        assert!(policy.allows(Some("https://chat.example.org"), Some("127.0.0.1:8080")));
        // A page whose origin merely matches the (rewritten) Host is not the chat.
        assert!(!policy.allows(Some("http://127.0.0.1:8080"), Some("127.0.0.1:8080")));
    }

    #[test]
    fn caps_count_per_ip_and_in_all_and_free_on_drop() {
        let limiter = ConnectionLimiter::new(3, 2);
        let a: IpAddr = "127.0.0.1".parse().expect("ip");
        let b: IpAddr = "127.0.0.2".parse().expect("ip");
        let first = limiter.admit(Some(a)).expect("first");
        let _second = limiter.admit(Some(a)).expect("second");
        assert_eq!(limiter.admit(Some(a)).err(), Some(RefusalReason::IpLimit));
        let _third = limiter.admit(Some(b)).expect("other ip");
        assert_eq!(limiter.admit(Some(b)).err(), Some(RefusalReason::ServerFull));
        drop(first);
        assert!(limiter.admit(Some(a)).is_ok(), "a place was freed");
    }
}
