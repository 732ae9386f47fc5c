//! The client's address, as the throttle counts it (DESIGN.md: "the client address comes from
//! the socket unless the operator names trusted proxies").
//!
//! Host adapters hand the core the socket peer (native: the TCP peer; Spin: `spin-client-addr`;
//! Cloudflare: `CF-Connecting-IP`, set by Cloudflare's edge) and the operator's
//! `trusted_proxies`. Only when the peer is one of those is a forwarding header read:
//! `Forwarded` (RFC 7239 §4, its `for=` parameters) and `X-Forwarded-For`, walked from the
//! right (the entry the trusted peer appended) past further trusted hops to the first address
//! that is not a trusted proxy. Everything left of that was written by the client and is
//! ignored, so a client cannot pick the address it is counted under.
//!
//! A proxy appends to one of the two headers; the other reaches us as the client sent it. So
//! when both are present and name different clients, neither is believed and the trusted peer
//! itself is counted: a forged header can then only move its sender onto the proxy's shared
//! counter, never onto an address of its choosing.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use http::HeaderMap;

use crate::Request;
use crate::ports::Config;

/// The header every host adapter sets to the client's address (after dropping any copy the
/// client sent).
pub const CLIENT_ADDR_HEADER: &str = "x-edgeid-client-addr";

/// At most this many trusted hops are walked; a longer chain counts as the last one reached.
const MAX_HOPS: usize = 32;
/// At most this many entries in `trusted_proxies`.
const MAX_TRUSTED: usize = 256;

/// An address block: RFC 4632 (IPv4) or RFC 4291 §2.3 (IPv6) prefix notation, or one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    len: u8,
}

impl Cidr {
    /// `10.0.0.0/8`, `fd00::/8`, `192.0.2.7` (one address). Host bits are masked off.
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let s = s.trim();
        let (addr, len) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let ip: IpAddr = addr
            .parse()
            .map_err(|_| format!("{s:?} is not an IP address or CIDR block"))?;
        let ip = canonical(ip);
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let len = match len {
            None => max,
            Some(l) => match l.parse::<u8>() {
                Ok(n) if n <= max => n,
                _ => return Err(format!("{s:?}: the prefix length must be 0 to {max}")),
            },
        };
        Ok(Cidr {
            net: mask(ip, len),
            len,
        })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        ip.is_ipv4() == self.net.is_ipv4() && mask(ip, self.len) == self.net
    }
}

fn mask(ip: IpAddr, len: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            let m = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(bits & m))
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let m = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(bits & m))
        }
    }
}

/// An IPv4-mapped IPv6 address (`::ffff:192.0.2.1`, what a dual-stack socket reports for an
/// IPv4 peer) is that IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The operator's `trusted_proxies` setting: a list of CIDR blocks separated by commas or
/// white space. Empty (the default): no proxy is trusted and the socket peer is the client.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<Cidr>);

impl TrustedProxies {
    pub fn parse(list: &str) -> Result<TrustedProxies, String> {
        let blocks = list
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|s| !s.is_empty())
            .map(Cidr::parse)
            .collect::<Result<Vec<_>, _>>()?;
        if blocks.len() > MAX_TRUSTED {
            return Err(format!("at most {MAX_TRUSTED} trusted proxies"));
        }
        Ok(TrustedProxies(blocks))
    }

    /// The setting from the host's configuration. An invalid value trusts nobody (logged):
    /// counting a proxy's address is the safe mistake, believing forged headers is not. The
    /// native host refuses to start with one instead.
    pub fn from_config(config: &impl Config) -> TrustedProxies {
        let raw = config
            .var(crate::config::var::TRUSTED_PROXIES)
            .unwrap_or_default();
        TrustedProxies::parse(&raw).unwrap_or_else(|e| {
            crate::error::log_error(
                crate::ErrorCode::ServerError,
                &format!("variable 'trusted_proxies' ignored: {e}"),
            );
            TrustedProxies::default()
        })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|c| c.contains(ip))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The client's address: the socket `peer`, unless it is a trusted proxy; then what the
/// forwarding headers say, walked from the right (module docs). `None` when the host knows no
/// peer address.
pub fn client_ip(
    peer: Option<IpAddr>,
    headers: &HeaderMap,
    trusted: &TrustedProxies,
) -> Option<IpAddr> {
    let peer = canonical(peer?);
    if !trusted.contains(peer) {
        return Some(peer);
    }
    let walk = |chain: Vec<Option<IpAddr>>| {
        let mut current = peer;
        for hop in chain.into_iter().rev().take(MAX_HOPS) {
            match hop.map(canonical) {
                // `unknown`, an obfuscated node or garbage: the hop that wrote it is the last
                // address known.
                None => return current,
                Some(ip) if !trusted.contains(ip) => return ip,
                Some(ip) => current = ip,
            }
        }
        current
    };
    let xff = headers
        .contains_key("x-forwarded-for")
        .then(|| walk(x_forwarded_for(headers)));
    let forwarded = headers
        .contains_key(http::header::FORWARDED)
        .then(|| walk(forwarded_for(headers)));
    Some(match (xff, forwarded) {
        (Some(a), Some(b)) if a != b => peer,
        (Some(a), _) => a,
        (None, Some(b)) => b,
        (None, None) => peer,
    })
}

/// `X-Forwarded-For: client, proxy1, proxy2` (all field lines, in order).
fn x_forwarded_for(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    headers
        .get_all("x-forwarded-for")
        .iter()
        .flat_map(|v| {
            v.to_str()
                .map_or_else(|_| vec![None], |s| s.split(',').map(node).collect())
        })
        .collect()
}

/// RFC 7239 §4: `Forwarded: for=192.0.2.60;proto=http, for="[2001:db8::17]:4711"` — the
/// `for` node of each forwarded-element, in order. An element without `for` is unknown.
fn forwarded_for(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let mut out = Vec::new();
    for value in headers.get_all(http::header::FORWARDED) {
        let Ok(value) = value.to_str() else {
            out.push(None);
            continue;
        };
        for element in split_unquoted(value, ',') {
            let mut node_for = None;
            for pair in split_unquoted(element, ';') {
                if let Some((k, v)) = pair.split_once('=')
                    && k.trim().eq_ignore_ascii_case("for")
                {
                    node_for = node(&unquote(v.trim()));
                }
            }
            out.push(node_for);
        }
    }
    out
}

/// Splits on `sep` outside RFC 9110 §5.6.4 quoted strings.
fn split_unquoted(s: &str, sep: char) -> Vec<&str> {
    let (mut parts, mut start, mut quoted, mut escaped) = (Vec::new(), 0, false, false);
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            c if c == sep && !quoted => {
                parts.push(&s[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

fn unquote(v: &str) -> String {
    match v.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
        Some(inner) => {
            let mut out = String::with_capacity(inner.len());
            let mut escaped = false;
            for c in inner.chars() {
                if !escaped && c == '\\' {
                    escaped = true;
                } else {
                    out.push(c);
                    escaped = false;
                }
            }
            out
        }
        None => v.to_owned(),
    }
}

/// RFC 7239 §6 node: `192.0.2.43`, `192.0.2.43:47011`, `[2001:db8::1]`, `[2001:db8::1]:4711`
/// (and a bare IPv6 address, as some proxies write in `X-Forwarded-For`). `unknown` and
/// obfuscated identifiers (`_hidden`) are `None`.
fn node(raw: &str) -> Option<IpAddr> {
    let raw = raw.trim();
    if let Some(rest) = raw.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        if !(after.is_empty() || after.starts_with(':')) {
            return None;
        }
        return inside.parse::<Ipv6Addr>().ok().map(IpAddr::V6);
    }
    if let Ok(ip) = raw.parse::<IpAddr>() {
        return Some(ip);
    }
    let (host, _port) = raw.split_once(':')?;
    host.parse::<Ipv4Addr>().ok().map(IpAddr::V4)
}

/// Parses what a host knows of the peer: an IP address, or a socket address whose port is
/// dropped.
fn parse_peer(raw: &str) -> Option<IpAddr> {
    let raw = raw.trim();
    raw.parse::<std::net::SocketAddr>()
        .map(|s| s.ip())
        .or_else(|_| raw.parse::<IpAddr>())
        .ok()
}

/// Records the client's address for the core (see [`client_ip`]), replacing whatever the
/// client sent under the same name. `peer` is the host's socket peer (an IP address or a
/// socket address).
pub fn set_client_addr(req: &mut Request, peer: Option<&str>, trusted: &TrustedProxies) {
    req.headers_mut().remove(CLIENT_ADDR_HEADER);
    let ip = client_ip(peer.and_then(parse_peer), req.headers(), trusted);
    if let Some(v) = ip.and_then(|ip| http::HeaderValue::from_str(&ip.to_string()).ok()) {
        req.headers_mut().insert(CLIENT_ADDR_HEADER, v);
    }
}

/// What the native and Spin adapters call with their socket peer: [`set_client_addr`] with the
/// operator's `trusted_proxies`, read only when the request carries a forwarding header (the
/// list cannot change the answer otherwise, so most requests read no variable).
pub fn record_client_addr(req: &mut Request, peer: Option<&str>, config: &impl Config) {
    let forwarded = req.headers().contains_key("x-forwarded-for")
        || req.headers().contains_key(http::header::FORWARDED);
    let trusted = if forwarded {
        TrustedProxies::from_config(config)
    } else {
        TrustedProxies::default()
    };
    set_client_addr(req, peer, &trusted);
}

/// The client's address as the host adapter recorded it, `unknown` when it recorded none.
pub fn client_addr(req: &Request) -> String {
    req.headers()
        .get(CLIENT_ADDR_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 64)
        .unwrap_or("unknown")
        .to_owned()
}

/// The address a per-address counter is keyed by: an IPv4 address itself, an IPv6 address by
/// its /64 (RFC 4291 §2.5.4: one subnet, which one customer commonly gets whole, so rotating
/// through it must not buy fresh counters). Anything else is counted as it is.
pub fn counted(addr: &str) -> String {
    match addr.parse::<IpAddr>().map(canonical) {
        Ok(IpAddr::V6(v6)) => format!("{}/64", mask(IpAddr::V6(v6), 64)),
        Ok(v4) => v4.to_string(),
        Err(_) => addr.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                http::HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn cidr_blocks_mask_host_bits_and_match_mapped_addresses() {
        let c = Cidr::parse("10.1.2.3/8").unwrap();
        assert!(c.contains("10.200.0.1".parse().unwrap()));
        assert!(c.contains("::ffff:10.9.9.9".parse().unwrap()));
        assert!(!c.contains("11.0.0.1".parse().unwrap()));
        assert!(
            Cidr::parse("0.0.0.0/0")
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
        let v6 = Cidr::parse("fd00::/8").unwrap();
        assert!(v6.contains("fd12::1".parse().unwrap()));
        assert!(!v6.contains("10.0.0.1".parse().unwrap()));
        assert!(
            Cidr::parse("::/0")
                .unwrap()
                .contains("2001:db8::1".parse().unwrap())
        );
        assert!(Cidr::parse("10.0.0.0/33").is_err());
        assert!(Cidr::parse("proxy.internal").is_err());
        assert_eq!(
            TrustedProxies::parse(" 10.0.0.0/8,192.168.0.0/16  fd00::/8 ,")
                .unwrap()
                .0
                .len(),
            3
        );
        assert!(TrustedProxies::parse("").unwrap().is_empty());
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let h = headers(&[
            ("x-forwarded-for", "198.51.100.1"),
            ("forwarded", "for=198.51.100.2"),
        ]);
        let none = TrustedProxies::default();
        assert_eq!(client_ip(ip("203.0.113.9"), &h, &none), ip("203.0.113.9"));
        let other = TrustedProxies::parse("10.0.0.0/8").unwrap();
        assert_eq!(client_ip(ip("203.0.113.9"), &h, &other), ip("203.0.113.9"));
        assert_eq!(client_ip(None, &h, &other), None);
    }

    #[test]
    fn a_trusted_peer_is_walked_from_the_right_past_trusted_hops() {
        let t = TrustedProxies::parse("10.0.0.0/8").unwrap();
        // The client forged the leftmost entry; 10.0.0.5 is another trusted proxy.
        let h = headers(&[("x-forwarded-for", "6.6.6.6, 198.51.100.7, 10.0.0.5")]);
        assert_eq!(client_ip(ip("10.0.0.1"), &h, &t), ip("198.51.100.7"));
        // Two field lines are one list (RFC 9110 §5.3).
        let h = headers(&[
            ("x-forwarded-for", "6.6.6.6"),
            ("x-forwarded-for", "198.51.100.7"),
        ]);
        assert_eq!(client_ip(ip("10.0.0.1"), &h, &t), ip("198.51.100.7"));
        // Only trusted hops: the leftmost.
        let h = headers(&[("x-forwarded-for", "10.9.9.9, 10.0.0.5")]);
        assert_eq!(client_ip(ip("10.0.0.1"), &h, &t), ip("10.9.9.9"));
        // No header: the proxy itself.
        assert_eq!(
            client_ip(ip("10.0.0.1"), &HeaderMap::new(), &t),
            ip("10.0.0.1")
        );
        // Garbage next to a trusted hop: that hop is the last address known.
        let h = headers(&[("x-forwarded-for", "6.6.6.6, not-an-ip, 10.0.0.5")]);
        assert_eq!(client_ip(ip("10.0.0.1"), &h, &t), ip("10.0.0.5"));
        // Ports and brackets.
        let h = headers(&[("x-forwarded-for", "[2001:db8::7]:443")]);
        assert_eq!(client_ip(ip("10.0.0.1"), &h, &t), ip("2001:db8::7"));
        let h = headers(&[("x-forwarded-for", "198.51.100.7:5555")]);
        assert_eq!(client_ip(ip("10.0.0.1"), &h, &t), ip("198.51.100.7"));
    }

    #[test]
    fn rfc7239_forwarded_elements_quoted_ipv6_and_unknown_nodes() {
        let t = TrustedProxies::parse("10.0.0.0/8, 2001:db8:ffff::/48").unwrap();
        // RFC 7239 §4 and §7.1 examples.
        let h = headers(&[(
            "forwarded",
            "for=\"_gazonk\", For=\"[2001:db8:cafe::17]:4711\";proto=https, for=192.0.2.60;proto=http;by=203.0.113.43",
        )]);
        assert_eq!(client_ip(ip("10.0.0.1"), &h, &t), ip("192.0.2.60"));
        let h = headers(&[(
            "forwarded",
            "for=192.0.2.43, for=\"[2001:db8:cafe::17]\";by=x",
        )]);
        assert_eq!(client_ip(ip("10.0.0.1"), &h, &t), ip("2001:db8:cafe::17"));
        // `unknown` right of a trusted hop: the trusted hop.
        let h = headers(&[("forwarded", "for=192.0.2.43, for=unknown")]);
        assert_eq!(client_ip(ip("10.0.0.1"), &h, &t), ip("10.0.0.1"));
        // A quoted comma does not split an element; an element without `for` is unknown.
        let h = headers(&[("forwarded", "for=192.0.2.43;ext=\"a,b\", proto=https")]);
        assert_eq!(client_ip(ip("10.0.0.1"), &h, &t), ip("10.0.0.1"));
        let h = headers(&[("forwarded", "for=192.0.2.43;ext=\"a,b\"")]);
        assert_eq!(client_ip(ip("10.0.0.1"), &h, &t), ip("192.0.2.43"));
        // A trusted IPv6 proxy hop is skipped like any other.
        let h = headers(&[("forwarded", "for=192.0.2.43, for=\"[2001:db8:ffff::2]\"")]);
        assert_eq!(client_ip(ip("10.0.0.1"), &h, &t), ip("192.0.2.43"));
    }

    #[test]
    fn two_headers_that_disagree_count_the_proxy() {
        let t = TrustedProxies::parse("10.0.0.0/8").unwrap();
        // The proxy appends to X-Forwarded-For; the client forged `Forwarded`.
        let h = headers(&[
            ("x-forwarded-for", "198.51.100.7"),
            ("forwarded", "for=6.6.6.6"),
        ]);
        assert_eq!(client_ip(ip("10.0.0.1"), &h, &t), ip("10.0.0.1"));
        // A proxy that writes both, agreeing.
        let h = headers(&[
            ("x-forwarded-for", "6.6.6.6, 198.51.100.7"),
            ("forwarded", "for=198.51.100.7"),
        ]);
        assert_eq!(client_ip(ip("10.0.0.1"), &h, &t), ip("198.51.100.7"));
    }

    #[test]
    fn long_chains_stop_after_the_hop_limit() {
        let t = TrustedProxies::parse("10.0.0.0/8").unwrap();
        let mut chain = vec!["198.51.100.7".to_owned()];
        chain.extend((0..100).map(|i| format!("10.0.{}.{}", i / 250, i % 250 + 1)));
        let h = headers(&[("x-forwarded-for", &chain.join(", "))]);
        let got = client_ip(ip("10.0.0.1"), &h, &t).unwrap();
        assert!(
            t.contains(got),
            "a trusted hop, not the forged far end: {got}"
        );
    }

    #[test]
    fn the_recorded_address_replaces_a_forged_one_and_drops_the_port() {
        let mut req = http::Request::builder()
            .header(CLIENT_ADDR_HEADER, "6.6.6.6")
            .header("x-forwarded-for", "6.6.6.7")
            .body(Vec::new())
            .unwrap();
        let none = TrustedProxies::default();
        set_client_addr(&mut req, Some("[::1]:4711"), &none);
        assert_eq!(client_addr(&req), "::1");
        set_client_addr(&mut req, Some("[::ffff:203.0.113.9]:80"), &none);
        assert_eq!(client_addr(&req), "203.0.113.9");
        set_client_addr(&mut req, Some("garbage"), &none);
        assert_eq!(client_addr(&req), "unknown");
        let t = TrustedProxies::parse("127.0.0.1").unwrap();
        set_client_addr(&mut req, Some("127.0.0.1:9999"), &t);
        assert_eq!(client_addr(&req), "6.6.6.7");
    }

    #[test]
    fn ipv6_addresses_count_per_64() {
        assert_eq!(counted("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(
            counted("2001:db8:1:2:ffff:ffff:ffff:ffff"),
            "2001:db8:1:2::/64"
        );
        assert_ne!(counted("2001:db8:1:3::1"), counted("2001:db8:1:2::1"));
        assert_eq!(counted("203.0.113.9"), "203.0.113.9");
        assert_eq!(counted("::ffff:203.0.113.9"), "203.0.113.9");
        assert_eq!(counted("unknown"), "unknown");
    }
}
