//! Edge CA certificate checks, done on the controller before any device is contacted.
//!
//! Owns the production rules for an Edge CA: PEM chain in leaf-to-root order with every link's signature
//! verified, the leaf is a CA (basicConstraints CA:TRUE and keyUsage keyCertSign), the private key matches the
//! leaf, RSA >= 2048 or EC P-256, not expired and at least `min_days_left` to go, and a common name that differs
//! from the device's hostname and id. Real X.509 parsing (x509-parser); pure, no I/O. Never prints key material.

use x509_parser::prelude::*;

/// What we learned about a valid Edge CA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeCaInfo {
    /// Leaf common name.
    pub common_name: String,
    /// Days until the leaf expires.
    pub days_left: i64,
    /// Certificates in the chain.
    pub chain_len: usize,
    /// "EC P-256" or "RSA 2048" etc.
    pub key_type: String,
}

/// Parse every certificate in a PEM bundle (DER bytes, in file order).
pub fn pem_certs(pem: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let mut out = Vec::new();
    for item in Pem::iter_from_buffer(pem) {
        let item = item.map_err(|e| format!("not valid PEM: {e}"))?;
        if item.label == "CERTIFICATE" {
            out.push(item.contents);
        }
    }
    if out.is_empty() {
        return Err("no CERTIFICATE block found".into());
    }
    Ok(out)
}

fn key_type(cert: &X509Certificate<'_>) -> Result<String, String> {
    let spki = cert.public_key();
    match spki.parsed() {
        Ok(x509_parser::public_key::PublicKey::RSA(rsa)) => {
            let bits = rsa.key_size();
            if bits < 2048 {
                return Err(format!(
                    "the key is RSA {bits}: use RSA 2048 or larger, or EC P-256"
                ));
            }
            Ok(format!("RSA {bits}"))
        }
        Ok(x509_parser::public_key::PublicKey::EC(_)) => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|o| o.to_id_string())
                .unwrap_or_default();
            if curve == "1.2.840.10045.3.1.7" {
                Ok("EC P-256".into())
            } else {
                Err(format!(
                    "the key is EC on curve {curve}: IoT Edge supports EC P-256 (or RSA >= 2048)"
                ))
            }
        }
        Ok(_) => Err("the key type is not supported: use EC P-256 or RSA >= 2048".into()),
        Err(e) => Err(format!("cannot read the certificate's public key: {e}")),
    }
}

/// Check an Edge CA chain and its private key. `names` are the device hostname and id (the CN must differ).
pub fn check_edge_ca(
    chain_pem: &[u8],
    key_pem: &[u8],
    min_days_left: i64,
    names: &[&str],
) -> Result<EdgeCaInfo, Vec<String>> {
    let ders = pem_certs(chain_pem).map_err(|e| vec![format!("certificate: {e}")])?;
    let mut certs = Vec::new();
    for (i, d) in ders.iter().enumerate() {
        match parse_x509_certificate(d) {
            Ok((_, c)) => certs.push(c),
            Err(e) => {
                return Err(vec![format!(
                    "certificate #{} in the chain does not parse: {e}",
                    i + 1
                )])
            }
        }
    }
    let mut problems = Vec::new();
    let leaf = &certs[0];
    // Chain order and signatures.
    for i in 0..certs.len() {
        let c = &certs[i];
        let issuer = if i + 1 < certs.len() {
            if c.issuer() != certs[i + 1].subject() {
                problems.push(format!(
                    "the chain is not in leaf-to-root order: certificate #{} was issued by `{}`, but #{} is `{}`",
                    i + 1,
                    c.issuer(),
                    i + 2,
                    certs[i + 1].subject()
                ));
                break;
            }
            Some(&certs[i + 1])
        } else if c.issuer() == c.subject() {
            Some(c)
        } else {
            None
        };
        if let Some(iss) = issuer {
            if c.verify_signature(Some(iss.public_key())).is_err() {
                problems.push(format!(
                    "certificate #{} (`{}`) is not signed by `{}`",
                    i + 1,
                    c.subject(),
                    iss.subject()
                ));
            }
        }
    }
    // The leaf must be a CA that can sign certificates.
    let is_ca = matches!(leaf.basic_constraints(), Ok(Some(bc)) if bc.value.ca);
    if !is_ca {
        problems.push(
            "the Edge CA certificate is not a CA (basicConstraints CA:TRUE is missing)".into(),
        );
    }
    let can_sign = matches!(leaf.key_usage(), Ok(Some(ku)) if ku.value.key_cert_sign());
    if !can_sign {
        problems.push(
            "the Edge CA certificate cannot sign certificates (keyUsage keyCertSign is missing)"
                .into(),
        );
    }
    let kt = match key_type(leaf) {
        Ok(k) => k,
        Err(e) => {
            problems.push(e);
            String::new()
        }
    };
    // Validity.
    let now = ASN1Time::now();
    let not_after = leaf.validity().not_after;
    let days_left = (not_after.timestamp() - now.timestamp()).div_euclid(86_400);
    if leaf.validity().not_before > now {
        problems.push(format!(
            "the Edge CA certificate is not valid yet (from {})",
            leaf.validity().not_before
        ));
    }
    if not_after < now {
        problems.push(format!("the Edge CA certificate expired on {not_after}"));
    } else if days_left < min_days_left {
        problems.push(format!(
            "the Edge CA certificate expires in {days_left} days ({not_after}), less than min_days_left = {min_days_left}; renew it before deploying"
        ));
    }
    for (i, c) in certs.iter().enumerate().skip(1) {
        if c.validity().not_after < now {
            problems.push(format!(
                "certificate #{} in the chain (`{}`) has expired",
                i + 1,
                c.subject()
            ));
        }
    }
    // Common name.
    let cn = leaf
        .subject()
        .iter_common_name()
        .next()
        .and_then(|a| a.as_str().ok())
        .unwrap_or_default()
        .to_string();
    for n in names {
        if !n.is_empty() && cn.eq_ignore_ascii_case(n) {
            problems.push(format!(
                "the Edge CA's common name `{cn}` equals the device's hostname or id: IoT Edge requires them to differ"
            ));
        }
    }
    // The key must match the leaf.
    match key_matches(key_pem, leaf.public_key().raw) {
        Ok(true) => {}
        Ok(false) => problems.push(
            "the private key does not belong to the Edge CA certificate (public keys differ)"
                .into(),
        ),
        Err(e) => problems.push(e),
    }
    if problems.is_empty() {
        Ok(EdgeCaInfo {
            common_name: cn,
            days_left,
            chain_len: certs.len(),
            key_type: kt,
        })
    } else {
        Err(problems)
    }
}

/// Check a device identity certificate and its key: parses, not expired, key matches.
pub fn check_identity(cert_pem: &[u8], key_pem: &[u8]) -> Result<(), String> {
    let ders = pem_certs(cert_pem)?;
    let (_, leaf) = parse_x509_certificate(&ders[0]).map_err(|e| format!("does not parse: {e}"))?;
    if leaf.validity().not_after < ASN1Time::now() {
        return Err(format!("expired on {}", leaf.validity().not_after));
    }
    match key_matches(key_pem, leaf.public_key().raw)? {
        true => Ok(()),
        false => Err("the private key does not belong to the certificate".into()),
    }
}

/// Does the private key (PEM: PKCS#8, SEC1 or PKCS#1) have the public key `spki_der`?
pub fn key_matches(key_pem: &[u8], spki_der: &[u8]) -> Result<bool, String> {
    use rcgen::PublicKeyData;
    let text =
        std::str::from_utf8(key_pem).map_err(|_| "the private key is not PEM text".to_string())?;
    if text.contains("ENCRYPTED PRIVATE KEY") {
        return Err("the private key is passphrase-protected; IoT Edge needs an unencrypted key file (protect it with age instead)".into());
    }
    let kp = rcgen::KeyPair::from_pem(text).map_err(|_| "the private key cannot be read (expected an unencrypted PEM key: PKCS#8, SEC1 or PKCS#1)".to_string())?;
    Ok(kp.subject_public_key_info() == spki_der)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    };

    struct Made {
        chain: String,
        key: String,
    }

    fn make(ca: bool, days: i64, cn: &str) -> Made {
        let root_key = KeyPair::generate().unwrap();
        let mut rp = CertificateParams::new(Vec::<String>::new()).unwrap();
        rp.distinguished_name.push(DnType::CommonName, "test root");
        rp.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        rp.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let root = rp.self_signed(&root_key).unwrap();
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(DnType::CommonName, cn);
        if ca {
            p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
            p.key_usages = vec![
                KeyUsagePurpose::KeyCertSign,
                KeyUsagePurpose::DigitalSignature,
            ];
        }
        let now = ::time::OffsetDateTime::now_utc();
        p.not_before = now - ::time::Duration::days(1);
        p.not_after = now + ::time::Duration::days(days);
        let issuer = Issuer::new(rp, root_key);
        let leaf = p.signed_by(&key, &issuer).unwrap();
        Made {
            chain: format!("{}{}", leaf.pem(), root.pem()),
            key: key.serialize_pem(),
        }
    }

    #[test]
    fn a_good_edge_ca_passes() {
        let m = make(true, 365, "Edge CA site A");
        let info = check_edge_ca(m.chain.as_bytes(), m.key.as_bytes(), 30, &["edge-001"]).unwrap();
        assert_eq!(info.chain_len, 2);
        assert_eq!(info.key_type, "EC P-256");
        assert!(info.days_left >= 364);
    }

    #[test]
    fn each_rule_is_enforced() {
        let m = make(false, 365, "edge-001");
        let e = check_edge_ca(m.chain.as_bytes(), m.key.as_bytes(), 30, &["edge-001"]).unwrap_err();
        let all = e.join("\n");
        assert!(all.contains("not a CA"), "{all}");
        assert!(all.contains("keyCertSign"), "{all}");
        assert!(all.contains("common name"), "{all}");

        let m = make(true, 10, "Edge CA");
        let e = check_edge_ca(m.chain.as_bytes(), m.key.as_bytes(), 30, &[]).unwrap_err();
        assert!(e[0].contains("less than min_days_left"), "{e:?}");

        let m = make(true, -2, "Edge CA");
        let e = check_edge_ca(m.chain.as_bytes(), m.key.as_bytes(), 30, &[]).unwrap_err();
        assert!(e.iter().any(|p| p.contains("expired")), "{e:?}");

        let a = make(true, 365, "Edge CA");
        let b = make(true, 365, "Edge CA");
        let e = check_edge_ca(a.chain.as_bytes(), b.key.as_bytes(), 30, &[]).unwrap_err();
        assert!(e.iter().any(|p| p.contains("does not belong")), "{e:?}");

        // Root first: wrong order.
        let certs: Vec<&str> = a
            .chain
            .split_inclusive("-----END CERTIFICATE-----\n")
            .collect();
        let reversed = format!("{}{}", certs[1], certs[0]);
        let e = check_edge_ca(reversed.as_bytes(), a.key.as_bytes(), 30, &[]).unwrap_err();
        assert!(e.iter().any(|p| p.contains("leaf-to-root")), "{e:?}");

        let e = check_edge_ca(b"junk", a.key.as_bytes(), 30, &[]).unwrap_err();
        assert!(e[0].contains("certificate"), "{e:?}");
    }
}
