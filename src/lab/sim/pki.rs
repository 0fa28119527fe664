//! Certificate and private-key inspection for the simulated `iotedge check` (what certd and keyd would see).
//!
//! Owns PEM decoding, X.509 validity/public-key extraction (x509-parser) and private-key typing (RSA size, EC
//! curve) through a tiny DER reader for PKCS#8, PKCS#1 and SEC1 — independent of any crypto backend so that
//! weak keys (RSA-1024) that modern libraries refuse to load are still reported, as keyd's OpenSSL would. It
//! must not generate or modify keys.

use x509_parser::pem::Pem;

/// What the check needs from a certificate (the first one in the file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// notBefore, seconds since the epoch.
    pub not_before: i64,
    /// notAfter, seconds since the epoch.
    pub not_after: i64,
    /// The raw subjectPublicKey bits (PKCS#1 RSAPublicKey or the EC point).
    pub public_key: Vec<u8>,
    /// Whether basicConstraints says CA.
    pub is_ca: bool,
    /// How many certificates the file holds.
    pub chain_len: usize,
}

/// Parse the first certificate of a PEM file (a full chain is allowed).
pub fn parse_cert_pem(bytes: &[u8]) -> Result<CertInfo, String> {
    let mut first: Option<CertInfo> = None;
    let mut count = 0;
    for pem in Pem::iter_from_buffer(bytes) {
        let pem = pem.map_err(|e| format!("could not parse PEM: {e}"))?;
        if pem.label != "CERTIFICATE" {
            continue;
        }
        count += 1;
        if first.is_none() {
            let cert = pem
                .parse_x509()
                .map_err(|e| format!("could not parse certificate: {e}"))?;
            first = Some(CertInfo {
                not_before: cert.validity().not_before.timestamp(),
                not_after: cert.validity().not_after.timestamp(),
                public_key: cert.public_key().subject_public_key.data.to_vec(),
                is_ca: cert.is_ca(),
                chain_len: 0,
            });
        }
    }
    let mut info = first.ok_or_else(|| "no certificate found in PEM file".to_string())?;
    info.chain_len = count;
    Ok(info)
}

/// A private key's algorithm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyKind {
    /// RSA with this modulus size in bits.
    Rsa(u32),
    /// EC on this curve (`P-256`, `P-384`, `P-521`, or an OID) with this field size in bits.
    Ec(String, u32),
    /// Ed25519.
    Ed25519,
    /// Something else (the OID).
    Other(String),
}

/// What the check needs from a private key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    /// Algorithm and size.
    pub kind: KeyKind,
    /// The public key as it appears in a certificate's subjectPublicKey, when derivable without crypto:
    /// the RSAPublicKey DER for RSA, the embedded point for EC.
    pub public_key: Option<Vec<u8>>,
}

struct Der<'a> {
    b: &'a [u8],
}

impl<'a> Der<'a> {
    /// Read one TLV; returns (tag, contents).
    fn tlv(&mut self) -> Result<(u8, &'a [u8]), String> {
        let b = self.b;
        if b.len() < 2 {
            return Err("truncated DER".into());
        }
        let tag = b[0];
        let (len, hdr) = if b[1] < 0x80 {
            (b[1] as usize, 2)
        } else {
            let n = (b[1] & 0x7f) as usize;
            if n == 0 || n > 4 || b.len() < 2 + n {
                return Err("bad DER length".into());
            }
            let mut l = 0usize;
            for &x in &b[2..2 + n] {
                l = (l << 8) | x as usize;
            }
            (l, 2 + n)
        };
        if b.len() < hdr + len {
            return Err("truncated DER".into());
        }
        self.b = &b[hdr + len..];
        Ok((tag, &b[hdr..hdr + len]))
    }

    fn full_tlv(&mut self) -> Result<(u8, &'a [u8], &'a [u8]), String> {
        let start = self.b;
        let (tag, content) = self.tlv()?;
        let used = start.len() - self.b.len();
        Ok((tag, content, &start[..used]))
    }
}

fn oid_string(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return String::new();
    }
    let mut parts = vec![(bytes[0] / 40) as u64, (bytes[0] % 40) as u64];
    let mut v: u64 = 0;
    for &b in &bytes[1..] {
        v = (v << 7) | (b & 0x7f) as u64;
        if b & 0x80 == 0 {
            parts.push(v);
            v = 0;
        }
    }
    parts
        .iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join(".")
}

fn int_bits(i: &[u8]) -> u32 {
    let i = match i.iter().position(|&b| b != 0) {
        Some(p) => &i[p..],
        None => return 0,
    };
    (i.len() as u32 - 1) * 8 + (8 - i[0].leading_zeros())
}

fn curve(oid: &str) -> (String, u32) {
    match oid {
        "1.2.840.10045.3.1.7" => ("P-256".into(), 256),
        "1.3.132.0.34" => ("P-384".into(), 384),
        "1.3.132.0.35" => ("P-521".into(), 521),
        "1.3.132.0.10" => ("secp256k1".into(), 256),
        other => (other.to_string(), 0),
    }
}

/// An RSAPrivateKey (PKCS#1): modulus size and the matching RSAPublicKey DER.
fn rsa_private(der: &[u8]) -> Result<KeyInfo, String> {
    let (_, seq) = Der { b: der }.tlv()?;
    let mut d = Der { b: seq };
    let _version = d.tlv()?;
    let (_, _, n_tlv) = d.full_tlv()?;
    let (_, _, e_tlv) = d.full_tlv()?;
    let (_, n) = Der { b: n_tlv }.tlv()?;
    let mut body = n_tlv.to_vec();
    body.extend_from_slice(e_tlv);
    let mut public = vec![0x30];
    push_len(&mut public, body.len());
    public.extend(body);
    Ok(KeyInfo {
        kind: KeyKind::Rsa(int_bits(n)),
        public_key: Some(public),
    })
}

fn push_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes
            .iter()
            .position(|&b| b != 0)
            .unwrap_or(bytes.len() - 1);
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

/// An ECPrivateKey (SEC1), with the curve given from outside (PKCS#8) or inside ([0] parameters).
fn ec_private(der: &[u8], outer_curve: Option<String>) -> Result<KeyInfo, String> {
    let (_, seq) = Der { b: der }.tlv()?;
    let mut d = Der { b: seq };
    let _version = d.tlv()?;
    let _priv = d.tlv()?;
    let mut oid = outer_curve;
    let mut public = None;
    while !d.b.is_empty() {
        let (tag, content) = d.tlv()?;
        match tag {
            0xa0 => {
                let (_, o) = Der { b: content }.tlv()?;
                oid = Some(oid_string(o));
            }
            0xa1 => {
                let (_, bits) = Der { b: content }.tlv()?;
                // BIT STRING: first byte = unused bits.
                public = bits.get(1..).map(<[u8]>::to_vec);
            }
            _ => {}
        }
    }
    let (name, size) = curve(oid.as_deref().unwrap_or(""));
    Ok(KeyInfo {
        kind: KeyKind::Ec(name, size),
        public_key: public,
    })
}

/// Inspect a PEM private key: PKCS#8 (`PRIVATE KEY`), PKCS#1 (`RSA PRIVATE KEY`) or SEC1 (`EC PRIVATE KEY`).
pub fn parse_key_pem(bytes: &[u8]) -> Result<KeyInfo, String> {
    for pem in Pem::iter_from_buffer(bytes) {
        let pem = pem.map_err(|e| format!("could not parse PEM: {e}"))?;
        match pem.label.as_str() {
            "RSA PRIVATE KEY" => return rsa_private(&pem.contents),
            "EC PRIVATE KEY" => return ec_private(&pem.contents, None),
            "PRIVATE KEY" => {
                let (_, seq) = Der { b: &pem.contents }.tlv()?;
                let mut d = Der { b: seq };
                let _version = d.tlv()?;
                let (_, alg) = d.tlv()?;
                let (_, key) = d.tlv()?;
                let mut a = Der { b: alg };
                let (_, oid) = a.tlv()?;
                let oid = oid_string(oid);
                return match oid.as_str() {
                    "1.2.840.113549.1.1.1" | "1.2.840.113549.1.1.10" => rsa_private(key),
                    "1.2.840.10045.2.1" => {
                        let params = a.tlv().ok().map(|(_, p)| oid_string(p));
                        ec_private(key, params)
                    }
                    "1.3.101.112" => Ok(KeyInfo {
                        kind: KeyKind::Ed25519,
                        public_key: None,
                    }),
                    other => Ok(KeyInfo {
                        kind: KeyKind::Other(other.to_string()),
                        public_key: None,
                    }),
                };
            }
            "ENCRYPTED PRIVATE KEY" => {
                return Err("could not load private key: key is encrypted".into())
            }
            _ => continue,
        }
    }
    Err("no private key found in PEM file".into())
}

/// Does the private key belong to the certificate? Compares public keys; falls back to deriving the public key
/// with rcgen (aws-lc) for PKCS#8 keys that do not embed it.
pub fn key_matches_cert(key_pem: &str, key: &KeyInfo, cert: &CertInfo) -> Option<bool> {
    if let Some(p) = &key.public_key {
        return Some(p == &cert.public_key);
    }
    let kp = rcgen::KeyPair::from_pem(key_pem).ok()?;
    Some(kp.public_key_raw() == cert.public_key.as_slice())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ec_p256_keys_and_matching_certs() {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let params = rcgen::CertificateParams::new(vec!["edge".into()]).unwrap();
        let cert = params.self_signed(&key).unwrap();
        let info = parse_key_pem(key.serialize_pem().as_bytes()).unwrap();
        assert_eq!(info.kind, KeyKind::Ec("P-256".into(), 256));
        let c = parse_cert_pem(cert.pem().as_bytes()).unwrap();
        assert!(c.not_after > c.not_before);
        assert_eq!(
            key_matches_cert(&key.serialize_pem(), &info, &c),
            Some(true)
        );
        let other = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let oinfo = parse_key_pem(other.serialize_pem().as_bytes()).unwrap();
        assert_eq!(
            key_matches_cert(&other.serialize_pem(), &oinfo, &c),
            Some(false)
        );
    }

    #[test]
    fn p384_is_reported_as_such() {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
        let info = parse_key_pem(key.serialize_pem().as_bytes()).unwrap();
        assert_eq!(info.kind, KeyKind::Ec("P-384".into(), 384));
    }

    #[test]
    fn der_helpers() {
        assert_eq!(
            oid_string(&[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01]),
            "1.2.840.10045.2.1"
        );
        assert_eq!(int_bits(&[0x00, 0x80, 0x00]), 16);
        assert_eq!(int_bits(&[0x01]), 1);
        assert!(parse_key_pem(b"nothing here").is_err());
    }
}
