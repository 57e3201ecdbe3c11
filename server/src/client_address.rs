//! Who a connection really comes from. Behind a reverse proxy every TCP peer
//! is the proxy; the client's address is in `Forwarded` (RFC 7239) or
//! `X-Forwarded-For`, which anyone can also forge. So those headers are read
//! only when the TCP peer is a configured trusted proxy, and only as far
//! back as the chain of trusted proxies goes: the first untrusted hop from
//! the right is the client.

use std::net::IpAddr;

use actix_web::http::header::HeaderMap;
use ipnet::IpNet;

/// The networks whose forwarding headers are believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies {
    networks: Vec<IpNet>,
}

impl TrustedProxies {
    /// Trusts proxies in `networks` (none: forwarding headers are ignored).
    pub fn new(networks: &[IpNet]) -> Self {
        Self { networks: networks.to_vec() }
    }

    fn trusts(&self, address: IpAddr) -> bool {
        let address = canonical(address);
        self.networks.iter().any(|network| network.contains(&address))
    }

    /// The client's address: the TCP peer, or, when that is a trusted proxy,
    /// the nearest untrusted address of the forwarding chain.
    pub fn client_address(&self, peer: Option<IpAddr>, headers: &HeaderMap) -> Option<IpAddr> {
        let mut client = canonical(peer?);
        if !self.trusts(client) {
            return Some(client);
        }
        for hop in forwarding_chain(headers).into_iter().rev() {
            match hop {
                // A hop we cannot read ends what we can believe.
                None => break,
                Some(address) => client = canonical(address),
            }
            if !self.trusts(client) {
                break;
            }
        }
        Some(client)
    }
}

/// IPv4 clients of a dual-stack socket appear as `::ffff:a.b.c.d`.
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
        IpAddr::V4(_) => address,
    }
}

/// The addresses of the forwarding chain, nearest the client first: from
/// `Forwarded` if present, else from `X-Forwarded-For`. `None` marks a hop
/// that is not an address (`unknown`, an obfuscated name, garbage).
fn forwarding_chain(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let values = |name: &str| -> Vec<String> {
        headers.get_all(name).filter_map(|v| v.to_str().ok()).map(str::to_owned).collect()
    };
    let forwarded = values("forwarded");
    if !forwarded.is_empty() {
        return forwarded
            .iter()
            .flat_map(|value| value.split(','))
            .map(|element| {
                element.split(';').find_map(|pair| {
                    let (key, value) = pair.trim().split_once('=')?;
                    key.trim().eq_ignore_ascii_case("for").then(|| parse_node(value.trim().trim_matches('"')))?
                })
            })
            .collect();
    }
    values("x-forwarded-for").iter().flat_map(|value| value.split(',')).map(|hop| parse_node(hop.trim())).collect()
}

/// An address as proxies write it: `a.b.c.d`, `a.b.c.d:port`, `::1`, `[::1]`, `[::1]:port`.
fn parse_node(node: &str) -> Option<IpAddr> {
    if let Ok(address) = node.parse() {
        return Some(address);
    }
    if let Some(rest) = node.strip_prefix('[') {
        return rest.split_once(']').and_then(|(address, _)| address.parse().ok());
    }
    node.rsplit_once(':').and_then(|(address, port)| port.parse::<u16>().ok().and(address.parse().ok()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{HeaderName, HeaderValue};

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(HeaderName::from_static(name), HeaderValue::from_static(value));
        }
        map
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    fn proxies() -> TrustedProxies {
        TrustedProxies::new(&["10.0.0.0/8".parse().expect("net"), "::1/128".parse().expect("net")])
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_claims() {
        let forged = headers(&[("x-forwarded-for", "1.2.3.4"), ("forwarded", "for=5.6.7.8")]);
        assert_eq!(proxies().client_address(Some(ip("203.0.113.9")), &forged), Some(ip("203.0.113.9")));
        assert_eq!(TrustedProxies::default().client_address(Some(ip("10.0.0.1")), &forged), Some(ip("10.0.0.1")));
    }

    #[test]
    fn a_trusted_proxy_names_the_client_and_forged_hops_before_it_are_ignored() {
        // The client forged "1.2.3.4"; the proxy appended the address it saw.
        let chain = headers(&[("x-forwarded-for", "1.2.3.4, 198.51.100.7")]);
        assert_eq!(proxies().client_address(Some(ip("10.1.2.3")), &chain), Some(ip("198.51.100.7")));
        // Two trusted proxies in a row.
        let chain = headers(&[("x-forwarded-for", "198.51.100.7, 10.9.9.9")]);
        assert_eq!(proxies().client_address(Some(ip("10.1.2.3")), &chain), Some(ip("198.51.100.7")));
    }

    #[test]
    fn forwarded_wins_and_its_forms_parse() {
        let chain =
            headers(&[("forwarded", "for=\"[2001:db8::17]:4711\";proto=https"), ("x-forwarded-for", "1.2.3.4")]);
        assert_eq!(proxies().client_address(Some(ip("::1")), &chain), Some(ip("2001:db8::17")));
        let chain = headers(&[("forwarded", "for=192.0.2.60:8000, for=10.0.0.2")]);
        assert_eq!(proxies().client_address(Some(ip("10.0.0.1")), &chain), Some(ip("192.0.2.60")));
    }

    #[test]
    fn an_unreadable_hop_stops_at_the_last_trusted_address() {
        let chain = headers(&[("forwarded", "for=unknown")]);
        assert_eq!(proxies().client_address(Some(ip("10.0.0.1")), &chain), Some(ip("10.0.0.1")));
        let mapped = IpAddr::V6("::ffff:10.0.0.1".parse().expect("ip"));
        let chain = headers(&[("x-forwarded-for", "198.51.100.7")]);
        assert_eq!(proxies().client_address(Some(mapped), &chain), Some(ip("198.51.100.7")));
    }
}
