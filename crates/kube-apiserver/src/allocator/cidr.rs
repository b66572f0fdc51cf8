//! IPv4 CIDR and port-range arithmetic for the service allocators. Offsets index the
//! allocatable values: IPs between the network and broadcast addresses (offset 0 is
//! the first usable IP), ports from the range's base.

use std::net::Ipv4Addr;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RangeParseError {
    #[error("invalid CIDR address: {0}")]
    InvalidCidr(String),
    #[error("only IPv4 service CIDRs are supported: {0}")]
    NotIpv4(String),
    #[error("the service CIDR {0} is too large; for 32-bit addresses the mask must be >= 12")]
    TooLarge(String),
    #[error("the service CIDR {0} is too small; it must hold at least 2 usable addresses")]
    TooSmall(String),
    #[error("invalid port range {0:?}: expected <from>-<to> or <from>+<count>")]
    InvalidPortRange(String),
}

/// An IPv4 network such as `10.254.0.0/16`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Cidr {
    network: u32,
    prefix: u8,
}

impl Ipv4Cidr {
    /// Parses `a.b.c.d/n`; host bits are masked off, as Go's `ParseCIDR` does.
    pub fn parse(s: &str) -> Result<Ipv4Cidr, RangeParseError> {
        let (addr, prefix) = s
            .trim()
            .split_once('/')
            .ok_or_else(|| RangeParseError::InvalidCidr(s.to_string()))?;
        let prefix: u8 = prefix
            .parse()
            .map_err(|_| RangeParseError::InvalidCidr(s.to_string()))?;
        if addr.contains(':') {
            return Err(RangeParseError::NotIpv4(s.to_string()));
        }
        let ip: Ipv4Addr = addr
            .parse()
            .map_err(|_| RangeParseError::InvalidCidr(s.to_string()))?;
        if prefix > 32 {
            return Err(RangeParseError::InvalidCidr(s.to_string()));
        }
        if prefix < 12 {
            return Err(RangeParseError::TooLarge(s.to_string()));
        }
        if prefix > 30 {
            return Err(RangeParseError::TooSmall(s.to_string()));
        }
        let mask = u32::MAX << (32 - prefix);
        Ok(Ipv4Cidr {
            network: u32::from(ip) & mask,
            prefix,
        })
    }

    /// Addresses in the block, network and broadcast included.
    pub fn size(&self) -> u64 {
        1u64 << (32 - self.prefix)
    }

    /// Allocatable addresses: all but the network and broadcast addresses.
    pub fn usable(&self) -> u64 {
        self.size() - 2
    }

    /// The offset of `ip` among the allocatable addresses, if it is one.
    pub fn offset_of(&self, ip: Ipv4Addr) -> Option<u64> {
        let v = u64::from(u32::from(ip));
        let first = u64::from(self.network) + 1;
        (v >= first && v < first + self.usable()).then(|| v - first)
    }

    pub fn ip_at(&self, offset: u64) -> Option<Ipv4Addr> {
        if offset >= self.usable() {
            return None;
        }
        u32::try_from(u64::from(self.network) + 1 + offset)
            .ok()
            .map(Ipv4Addr::from)
    }

    /// The first usable address (`.1`), reserved for the `kubernetes` Service.
    pub fn first(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.network + 1)
    }
}

impl std::fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", Ipv4Addr::from(self.network), self.prefix)
    }
}

/// A node port range such as `30000-32767` (inclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    base: u16,
    size: u32,
}

impl PortRange {
    /// Parses `30000-32767`, `30000+2767` or a single port, as upstream's `PortRange.Set`.
    pub fn parse(s: &str) -> Result<PortRange, RangeParseError> {
        let bad = || RangeParseError::InvalidPortRange(s.to_string());
        let s = s.trim();
        let (low, high) = if let Some((a, b)) = s.split_once('-') {
            let a: u16 = a.trim().parse().map_err(|_| bad())?;
            let b: u16 = b.trim().parse().map_err(|_| bad())?;
            (a, b)
        } else if let Some((a, n)) = s.split_once('+') {
            let a: u16 = a.trim().parse().map_err(|_| bad())?;
            let n: u16 = n.trim().parse().map_err(|_| bad())?;
            (a, a.checked_add(n).ok_or_else(bad)?)
        } else {
            let a: u16 = s.parse().map_err(|_| bad())?;
            (a, a)
        };
        if low == 0 || high < low {
            return Err(bad());
        }
        Ok(PortRange {
            base: low,
            size: u32::from(high - low) + 1,
        })
    }

    pub fn size(&self) -> u64 {
        u64::from(self.size)
    }

    pub fn offset_of(&self, port: i64) -> Option<u64> {
        let base = i64::from(self.base);
        (port >= base && port < base + i64::from(self.size)).then(|| (port - base) as u64)
    }

    pub fn port_at(&self, offset: u64) -> Option<u16> {
        (offset < self.size())
            .then(|| u16::try_from(u64::from(self.base) + offset).ok())
            .flatten()
    }
}

impl std::fmt::Display for PortRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.base, u32::from(self.base) + self.size - 1)
    }
}

/// Upstream's `calculateRangeOffset`: the low band of a range is left to explicit
/// requests, random picks prefer the rest. `min`/`max`/`step` are 16/256/16 for IPs
/// and 16/128/32 for ports.
pub fn static_band(size: u64, min: u64, max: u64, step: u64) -> u64 {
    if size < min {
        return 0;
    }
    (size / step).clamp(min, max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_offsets_skip_network_and_broadcast() {
        let c = Ipv4Cidr::parse("10.254.0.0/16").expect("valid");
        assert_eq!(c.to_string(), "10.254.0.0/16");
        assert_eq!(c.usable(), 65534);
        assert_eq!(c.first(), Ipv4Addr::new(10, 254, 0, 1));
        assert_eq!(
            c.offset_of(Ipv4Addr::new(10, 254, 0, 0)),
            None,
            "network address"
        );
        assert_eq!(
            c.offset_of(Ipv4Addr::new(10, 254, 255, 255)),
            None,
            "broadcast address"
        );
        assert_eq!(c.offset_of(Ipv4Addr::new(10, 254, 0, 1)), Some(0));
        assert_eq!(c.offset_of(Ipv4Addr::new(10, 254, 1, 0)), Some(255));
        assert_eq!(c.offset_of(Ipv4Addr::new(10, 254, 255, 254)), Some(65533));
        assert_eq!(c.offset_of(Ipv4Addr::new(10, 0, 0, 1)), None);
        assert_eq!(c.ip_at(65533), Some(Ipv4Addr::new(10, 254, 255, 254)));
        assert_eq!(c.ip_at(65534), None);

        let masked = Ipv4Cidr::parse("192.168.5.77/24").expect("valid");
        assert_eq!(masked.to_string(), "192.168.5.0/24");
        assert_eq!(masked.usable(), 254);
    }

    #[test]
    fn cidr_rejects_bad_input() {
        assert!(matches!(
            Ipv4Cidr::parse("10.254.0.0"),
            Err(RangeParseError::InvalidCidr(_))
        ));
        assert!(matches!(
            Ipv4Cidr::parse("fd00::/108"),
            Err(RangeParseError::NotIpv4(_))
        ));
        assert!(matches!(
            Ipv4Cidr::parse("10.0.0.0/8"),
            Err(RangeParseError::TooLarge(_))
        ));
        assert!(matches!(
            Ipv4Cidr::parse("10.0.0.0/31"),
            Err(RangeParseError::TooSmall(_))
        ));
        assert!(matches!(
            Ipv4Cidr::parse("300.0.0.0/24"),
            Err(RangeParseError::InvalidCidr(_))
        ));
    }

    #[test]
    fn port_ranges() {
        let r = PortRange::parse("30000-32767").expect("valid");
        assert_eq!(r.size(), 2768);
        assert_eq!(r.to_string(), "30000-32767");
        assert_eq!(r.offset_of(30000), Some(0));
        assert_eq!(r.offset_of(32767), Some(2767));
        assert_eq!(r.offset_of(32768), None);
        assert_eq!(r.offset_of(80), None);
        assert_eq!(r.port_at(2767), Some(32767));
        assert_eq!(
            PortRange::parse("30000+99").map(|r| r.to_string()),
            Ok("30000-30099".into())
        );
        assert!(PortRange::parse("32767-30000").is_err());
        assert!(PortRange::parse("abc").is_err());
    }

    #[test]
    fn static_bands_match_upstream() {
        assert_eq!(static_band(1 << 16, 16, 256, 16), 256);
        assert_eq!(static_band(256, 16, 256, 16), 16);
        assert_eq!(static_band(8, 16, 256, 16), 0);
        assert_eq!(static_band(2768, 16, 128, 32), 86);
    }
}
