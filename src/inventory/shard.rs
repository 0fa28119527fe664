//! `--shard K/N`: a stable partition of an inventory's hosts, so a fleet too large for one controller is run by
//! N controllers (a Kubernetes Indexed Job, a CI matrix), each taking shard K.
//!
//! A host's shard depends only on its inventory name and N: the first 8 bytes of SHA-256 of the name, big-endian,
//! modulo N. So the same host is in the same shard for the same N whatever the inventory's order, its other
//! hosts or the machine, and every host is in exactly one shard. K counts from 0 (Kubernetes'
//! `JOB_COMPLETION_INDEX` is used as is). It must not read the inventory: callers filter their host list.

use sha2::{Digest, Sha256};

/// The most shards accepted (a partition finer than this is a mistake, not a plan).
pub const MAX_SHARDS: u32 = 100_000;

/// Shard K of N (0 <= K < N).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// This shard, from 0.
    pub index: u32,
    /// How many shards.
    pub count: u32,
}

impl Shard {
    /// Whether `host` (an inventory name) belongs to this shard.
    pub fn contains(&self, host: &str) -> bool {
        shard_of(host, self.count) == self.index
    }
}

/// The shard (0..count) of `host` among `count` shards.
pub fn shard_of(host: &str, count: u32) -> u32 {
    let digest = Sha256::digest(host.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    (u64::from_be_bytes(first) % u64::from(count.max(1))) as u32
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl std::str::FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let usage = "write K/N: shard K (counting from 0) of N, e.g. 0/4 .. 3/4";
        let (k, n) = s
            .split_once('/')
            .ok_or_else(|| format!("`{s}` is not a shard: {usage}"))?;
        let k: u32 = k
            .trim()
            .parse()
            .map_err(|_| format!("`{s}`: K is not a whole number: {usage}"))?;
        let n: u32 = n
            .trim()
            .parse()
            .map_err(|_| format!("`{s}`: N is not a whole number: {usage}"))?;
        if n == 0 || n > MAX_SHARDS {
            return Err(format!("`{s}`: N must be from 1 to {MAX_SHARDS}"));
        }
        if k >= n {
            return Err(format!(
                "`{s}`: K must be less than N (shards count from 0: the last of {n} is {}/{n})",
                n - 1
            ));
        }
        Ok(Shard { index: k, count: n })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_host_is_in_exactly_one_shard_and_shards_are_even() {
        let hosts: Vec<String> = (0..4000).map(|i| format!("edge-{i:05}")).collect();
        let shards: Vec<Shard> = (0..4).map(|k| Shard { index: k, count: 4 }).collect();
        let mut sizes = [0usize; 4];
        for h in &hosts {
            let inside: Vec<&Shard> = shards.iter().filter(|s| s.contains(h)).collect();
            assert_eq!(inside.len(), 1, "{h}");
            sizes[inside[0].index as usize] += 1;
        }
        for s in sizes {
            assert!((850..=1150).contains(&s), "uneven shards: {sizes:?}");
        }
    }

    #[test]
    fn the_partition_is_stable_across_versions_and_machines() {
        // Pinned: changing the hash would move devices between controllers of a running deployment.
        let got: Vec<u32> = ["edge-001", "edge-002", "edge-003", "gw.site-a", "10.0.0.7"]
            .iter()
            .map(|h| shard_of(h, 4))
            .collect();
        let expected: Vec<u32> = ["edge-001", "edge-002", "edge-003", "gw.site-a", "10.0.0.7"]
            .iter()
            .map(|h| {
                let d = Sha256::digest(h.as_bytes());
                (u64::from_be_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]]) % 4) as u32
            })
            .collect();
        assert_eq!(got, expected);
        // And independent of the order or company of the other hosts: a function of the name alone.
        assert_eq!(shard_of("edge-001", 4), shard_of("edge-001", 4));
        assert_eq!(shard_of("anything", 1), 0);
    }

    #[test]
    fn shard_arguments_parse_or_say_what_to_write() {
        assert_eq!("2/4".parse::<Shard>(), Ok(Shard { index: 2, count: 4 }));
        assert_eq!("0/1".parse::<Shard>().unwrap().to_string(), "0/1");
        for (bad, says) in [
            ("4/4", "the last of 4 is 3/4"),
            ("1", "write K/N"),
            ("a/4", "K is not a whole number"),
            ("1/x", "N is not a whole number"),
            ("0/0", "N must be from 1"),
            ("-1/4", "K is not a whole number"),
            ("0/100001", "N must be from 1"),
        ] {
            let e = bad.parse::<Shard>().unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }
}
