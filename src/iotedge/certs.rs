//! Edge CA certificates on the controller: checking them before any device is contacted, reading expiry for
//! `certs report`, and signing new ones for `certs issue`.
//!
//! Owns the production rules for an Edge CA: PEM chain in leaf-to-root order with every link's signature
//! verified, the leaf is a CA (basicConstraints CA:TRUE and keyUsage keyCertSign), the private key matches the
//! leaf, RSA >= 2048 or EC P-256, not expired and at least `min_days_left` to go, and a common name that differs
//! from the device's hostname and id. Issuing ([`IssuingCa`]) refuses an issuing CA that is not a CA (or whose
//! pathLenConstraint forbids a sub-CA), is expired or not valid yet, would expire before the new certificate,
//! or whose key does not match; what it signs is CA:TRUE pathlen:0 (critical), keyUsage digitalSignature +
//! keyCertSign (critical), with subject and authority key identifiers. Real X.509 parsing (x509-parser),
//! signing with rcgen; pure, no I/O (callers pass the clock). Never prints key material.

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

/// Default validity of an Edge CA `certs issue` signs, in days.
pub const DEFAULT_VALIDITY_DAYS: i64 = 365;
/// Default renewal threshold of `certs issue`, in days left.
pub const DEFAULT_RENEW_BEFORE_DAYS: i64 = 30;
/// Default warning threshold of `certs report`, in days left.
pub const DEFAULT_WARN_DAYS: i64 = 30;
/// Default critical threshold of `certs report`, in days left (`iotedge check` warns at 7).
pub const DEFAULT_CRITICAL_DAYS: i64 = 7;

/// Seconds in a day.
const DAY: i64 = 86_400;

/// Whole days from `now` to `not_after` (both seconds since the epoch), rounded down: negative once expired.
pub fn days_left(not_after: i64, now: i64) -> i64 {
    (not_after - now).div_euclid(DAY)
}

/// `2027-01-02T03:04:05Z` for seconds since the epoch.
pub fn rfc3339(secs: i64) -> String {
    ::time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| {
            t.format(&::time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| secs.to_string())
}

/// One certificate of a PEM file and when it expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertExpiry {
    /// The subject's common name (the whole subject when it has none).
    pub subject: String,
    /// notAfter, seconds since the epoch.
    pub not_after: i64,
    /// notBefore, seconds since the epoch.
    pub not_before: i64,
    /// basicConstraints CA:TRUE?
    pub is_ca: bool,
}

fn subject_name(c: &X509Certificate<'_>) -> String {
    c.subject()
        .iter_common_name()
        .next()
        .and_then(|a| a.as_str().ok())
        .map(str::to_string)
        .unwrap_or_else(|| c.subject().to_string())
}

/// Every certificate of a PEM file (a chain or a bundle) with its validity, in file order.
pub fn pem_expiries(pem: &[u8]) -> Result<Vec<CertExpiry>, String> {
    let mut out = Vec::new();
    for (i, der) in pem_certs(pem)?.iter().enumerate() {
        let (_, c) = parse_x509_certificate(der)
            .map_err(|e| format!("certificate #{} does not parse: {e}", i + 1))?;
        out.push(CertExpiry {
            subject: subject_name(&c),
            not_after: c.validity().not_after.timestamp(),
            not_before: c.validity().not_before.timestamp(),
            is_ca: c.is_ca(),
        });
    }
    Ok(out)
}

/// The certificate of a PEM file that expires first (a chain is only as good as its shortest link; a bundle
/// loses that CA), with its place in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EarliestExpiry {
    /// 0-based index in the file.
    pub index: usize,
    /// Certificates in the file.
    pub count: usize,
    /// The certificate.
    pub cert: CertExpiry,
}

/// [`EarliestExpiry`] of a PEM file (what `certs report` and the maintenance playbook judge a file by).
pub fn earliest_expiry(pem: &[u8]) -> Result<EarliestExpiry, String> {
    let certs = pem_expiries(pem)?;
    let count = certs.len();
    certs
        .into_iter()
        .enumerate()
        .min_by_key(|(_, c)| c.not_after)
        .map(|(index, cert)| EarliestExpiry { index, count, cert })
        .ok_or_else(|| "no CERTIFICATE block found".to_string())
}

/// A device clock further off than this is reported (TLS to IoT Hub and certificate checks go wrong).
pub const MAX_CLOCK_SKEW_SECS: i64 = 300;

/// What to say about a device clock `device` when the controller's is `controller` (seconds since the epoch):
/// None within [`MAX_CLOCK_SKEW_SECS`]. Days left are always counted from the controller's clock, so a device
/// whose clock is years off is reported, never renewed over and over.
pub fn clock_skew(device: i64, controller: i64) -> Option<String> {
    let off = device - controller;
    if off.abs() <= MAX_CLOCK_SKEW_SECS {
        return None;
    }
    let (n, unit) = if off.abs() >= DAY {
        (off.abs() / DAY, "days")
    } else {
        (off.abs() / 60, "minutes")
    };
    Some(format!(
        "the device clock is {n} {unit} {} (device {}, controller {}): days left are counted from the controller's clock; fix NTP on the device",
        if off > 0 { "ahead" } else { "behind" },
        rfc3339(device),
        rfc3339(controller)
    ))
}

/// The key of a new Edge CA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EdgeCaKey {
    /// EC on P-256, signed with ECDSA SHA-256 (the default: small, fast, what IoT Edge documents first).
    EcP256,
    /// RSA with this many bits (2048, 3072 or 4096), PKCS#1 v1.5 SHA-256.
    Rsa(u32),
}

impl EdgeCaKey {
    /// Parse `ec-p256`, `rsa-2048`, `rsa-3072`, `rsa-4096`.
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "ec-p256" => Ok(EdgeCaKey::EcP256),
            "rsa-2048" => Ok(EdgeCaKey::Rsa(2048)),
            "rsa-3072" => Ok(EdgeCaKey::Rsa(3072)),
            "rsa-4096" => Ok(EdgeCaKey::Rsa(4096)),
            other => Err(format!(
                "unknown key type `{other}`: use ec-p256, rsa-2048, rsa-3072 or rsa-4096 (IoT Edge takes EC P-256 or RSA >= 2048)"
            )),
        }
    }

    fn generate(self) -> Result<rcgen::KeyPair, String> {
        let r = match self {
            EdgeCaKey::EcP256 => rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256),
            EdgeCaKey::Rsa(bits) => {
                let size = match bits {
                    2048 => rcgen::RsaKeySize::_2048,
                    3072 => rcgen::RsaKeySize::_3072,
                    4096 => rcgen::RsaKeySize::_4096,
                    _ => return Err(format!("RSA {bits} is not offered: use 2048, 3072 or 4096")),
                };
                rcgen::KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, size)
            }
        };
        r.map_err(|e| format!("cannot generate the key: {e}"))
    }
}

/// The operator's issuing CA, checked and ready to sign Edge CAs.
pub struct IssuingCa {
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    /// The issuing CA's PEM file as given (its certificate first, then any chain above it): appended to every
    /// Edge CA so devices get the full chain.
    chain_pem: String,
    /// Its common name.
    pub common_name: String,
    /// Its notAfter, seconds since the epoch.
    pub not_after: i64,
}

impl std::fmt::Debug for IssuingCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuingCa")
            .field("common_name", &self.common_name)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

/// Which of the issuing CA's two files a problem is about, so that the error can name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaFile {
    /// The certificate (or the chain above it).
    Cert,
    /// The private key.
    Key,
}

/// Check the issuing CA (`cert_pem`: its certificate first, optionally followed by the chain above it;
/// `key_pem`: its unencrypted private key, already decrypted in memory) at time `now`. Every problem is returned,
/// each saying what to do.
pub fn issuing_ca(cert_pem: &[u8], key_pem: &[u8], now: i64) -> Result<IssuingCa, Vec<String>> {
    issuing_ca_checked(cert_pem, key_pem, now).map_err(|v| v.into_iter().map(|(_, m)| m).collect())
}

/// [`issuing_ca`], each problem with the file it is about.
pub fn issuing_ca_checked(
    cert_pem: &[u8],
    key_pem: &[u8],
    now: i64,
) -> Result<IssuingCa, Vec<(CaFile, String)>> {
    let cert_err = |m: String| vec![(CaFile::Cert, m)];
    let ders = pem_certs(cert_pem).map_err(cert_err)?;
    let (_, ca) = parse_x509_certificate(&ders[0])
        .map_err(|e| cert_err(format!("the first certificate does not parse: {e}")))?;
    let cn = subject_name(&ca);
    let mut problems: Vec<(CaFile, String)> = Vec::new();
    match ca.basic_constraints() {
        Ok(Some(bc)) if bc.value.ca => {
            if bc.value.path_len_constraint == Some(0) {
                problems.push((CaFile::Cert, format!(
                    "`{cn}` has pathLenConstraint 0, so it may not sign another CA and an Edge CA is one: use the CA above it, or an issuing CA with pathlen >= 1 (or none)"
                )));
            }
        }
        _ => problems.push((CaFile::Cert, format!(
            "`{cn}` is not a CA (basicConstraints CA:TRUE is missing): give the certificate of the CA that signs your Edge CAs, not a device or Edge CA certificate"
        ))),
    }
    if let Ok(Some(ku)) = ca.key_usage() {
        if !ku.value.key_cert_sign() {
            problems.push((CaFile::Cert, format!(
                "`{cn}` may not sign certificates (its keyUsage lacks keyCertSign): use a CA certificate with keyCertSign"
            )));
        }
    }
    let nb = ca.validity().not_before.timestamp();
    let na = ca.validity().not_after.timestamp();
    if na <= now {
        problems.push((
            CaFile::Cert,
            format!(
            "`{cn}` expired on {}: renew the issuing CA first (Edge CAs it signs would be refused)",
            rfc3339(na)
        ),
        ));
    } else if nb > now {
        problems.push((
            CaFile::Cert,
            format!(
                "`{cn}` is not valid until {}: check this machine's clock, or wait",
                rfc3339(nb)
            ),
        ));
    }
    let key_text = match std::str::from_utf8(key_pem) {
        Ok(t) => t,
        Err(_) => {
            problems.push((CaFile::Key, "the issuing CA's key is not PEM text".into()));
            return Err(problems);
        }
    };
    match key_matches(key_pem, ca.public_key().raw) {
        Ok(true) => {}
        Ok(false) => {
            problems.push((CaFile::Key, format!(
                "the key does not belong to `{cn}` (their public keys differ): give the private key of this CA certificate"
            )));
            return Err(problems);
        }
        Err(e) => {
            problems.push((CaFile::Key, e));
            return Err(problems);
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let key = rcgen::KeyPair::from_pem(key_text).map_err(|e| {
        vec![(
            CaFile::Key,
            format!("the issuing CA's key cannot be used to sign: {e}"),
        )]
    })?;
    let issuer = rcgen::Issuer::from_ca_cert_der(&ders[0].clone().into(), key)
        .map_err(|e| cert_err(format!("`{cn}` cannot be used as an issuer: {e}")))?;
    let mut chain_pem = String::new();
    for d in &ders {
        chain_pem.push_str(&pem_encode(d));
    }
    Ok(IssuingCa {
        issuer,
        chain_pem,
        common_name: cn,
        not_after: na,
    })
}

fn pem_encode(der: &[u8]) -> String {
    use base64::Engine as _;
    let b = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for chunk in b.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

/// What to sign.
#[derive(Debug, Clone)]
pub struct EdgeCaRequest<'a> {
    /// The subject common name.
    pub common_name: &'a str,
    /// The device's hostname and id: the common name must differ from both.
    pub names: &'a [&'a str],
    /// The key to generate.
    pub key: EdgeCaKey,
    /// Validity in days from `now`.
    pub days: i64,
    /// Seconds since the epoch.
    pub now: i64,
}

/// A newly signed Edge CA.
pub struct IssuedEdgeCa {
    /// The Edge CA certificate followed by the issuing CA's chain (leaf to root), PEM.
    pub chain_pem: String,
    /// The new private key, PKCS#8 PEM; wiped from memory on drop.
    pub key_pem: age::secrecy::zeroize::Zeroizing<String>,
    /// notAfter, seconds since the epoch.
    pub not_after: i64,
}

impl std::fmt::Debug for IssuedEdgeCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedEdgeCa")
            .field("not_after", &self.not_after)
            .field("key_pem", &"<secret>")
            .finish_non_exhaustive()
    }
}

impl IssuingCa {
    /// Sign a new Edge CA: fresh key, CA:TRUE pathlen:0 and keyUsage digitalSignature + keyCertSign (both
    /// critical), subject and authority key identifiers, a random 128-bit serial, valid from an hour before `now`
    /// (devices with a slightly slow clock accept it) for `days` days, never beyond the issuing CA.
    pub fn issue(&self, req: &EdgeCaRequest<'_>) -> Result<IssuedEdgeCa, String> {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyUsagePurpose};
        if req.common_name.trim().is_empty() {
            return Err("the Edge CA's common name is empty".into());
        }
        if let Some(n) = req
            .names
            .iter()
            .find(|n| !n.is_empty() && n.eq_ignore_ascii_case(req.common_name))
        {
            return Err(format!(
                "the common name `{}` equals the device's hostname or id `{n}`: IoT Edge requires them to differ",
                req.common_name
            ));
        }
        if req.days < 1 {
            return Err(format!("a validity of {} days is not a validity", req.days));
        }
        let not_after = req.now + req.days * DAY;
        if not_after > self.not_after {
            return Err(format!(
                "the issuing CA `{}` expires on {} ({} days from now), before an Edge CA valid for {} days would: ask for at most {} days, or renew the issuing CA",
                self.common_name,
                rfc3339(self.not_after),
                days_left(self.not_after, req.now),
                req.days,
                days_left(self.not_after, req.now)
            ));
        }
        let key = req.key.generate()?;
        let mut p = CertificateParams::default();
        p.distinguished_name
            .push(DnType::CommonName, req.common_name);
        p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        p.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyCertSign,
        ];
        p.use_authority_key_identifier_extension = true;
        let mut serial = [0u8; 16];
        rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut serial);
        serial[0] &= 0x7f;
        serial[0] |= 0x01;
        p.serial_number = Some(rcgen::SerialNumber::from_slice(&serial));
        let ts = |s: i64| {
            ::time::OffsetDateTime::from_unix_timestamp(s)
                .map_err(|e| format!("time out of range: {e}"))
        };
        p.not_before = ts(req.now - 3600)?;
        p.not_after = ts(not_after)?;
        let cert = p
            .signed_by(&key, &self.issuer)
            .map_err(|e| format!("signing failed: {e}"))?;
        Ok(IssuedEdgeCa {
            chain_pem: format!("{}{}", cert.pem(), self.chain_pem),
            key_pem: age::secrecy::zeroize::Zeroizing::new(key.serialize_pem()),
            not_after,
        })
    }
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

    struct Ca {
        cert: String,
        key: String,
    }

    fn ca_with(ca: Option<u8>, days: i64, ku: bool) -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name
            .push(DnType::CommonName, "ops issuing CA");
        p.is_ca = match ca {
            None => IsCa::ExplicitNoCa,
            Some(255) => IsCa::Ca(BasicConstraints::Unconstrained),
            Some(n) => IsCa::Ca(BasicConstraints::Constrained(n)),
        };
        if ku {
            p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        } else {
            p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        }
        let now = ::time::OffsetDateTime::now_utc();
        p.not_before = now - ::time::Duration::days(400);
        p.not_after = now + ::time::Duration::days(days);
        let c = p.self_signed(&key).unwrap();
        Ca {
            cert: c.pem(),
            key: key.serialize_pem(),
        }
    }

    fn now() -> i64 {
        ::time::OffsetDateTime::now_utc().unix_timestamp()
    }

    #[test]
    fn an_issued_edge_ca_meets_every_iot_edge_rule() {
        let ca = ca_with(Some(255), 3650, true);
        let issuer = issuing_ca(ca.cert.as_bytes(), ca.key.as_bytes(), now()).unwrap();
        for key in [EdgeCaKey::EcP256, EdgeCaKey::Rsa(2048)] {
            let req = EdgeCaRequest {
                common_name: "edge-001 Edge CA",
                names: &["edge-001", "edge-001"],
                key,
                days: 365,
                now: now(),
            };
            let out = issuer.issue(&req).unwrap();
            // The existing pre-flight check accepts it (chain order, signatures, CA, key match, names).
            let info = check_edge_ca(
                out.chain_pem.as_bytes(),
                out.key_pem.as_bytes(),
                300,
                &["edge-001"],
            )
            .unwrap();
            assert_eq!(info.chain_len, 2);
            assert!((363..=365).contains(&info.days_left), "{info:?}");
            assert_eq!(
                info.key_type,
                if key == EdgeCaKey::EcP256 {
                    "EC P-256"
                } else {
                    "RSA 2048"
                }
            );
            let ders = pem_certs(out.chain_pem.as_bytes()).unwrap();
            let (_, leaf) = parse_x509_certificate(&ders[0]).unwrap();
            let (_, root) = parse_x509_certificate(&ders[1]).unwrap();
            let bc = leaf.basic_constraints().unwrap().unwrap();
            assert!(bc.critical && bc.value.ca);
            assert_eq!(bc.value.path_len_constraint, Some(0));
            let ku = leaf.key_usage().unwrap().unwrap();
            assert!(ku.critical && ku.value.key_cert_sign() && ku.value.digital_signature());
            let ski = |c: &X509Certificate<'_>| {
                c.extensions()
                    .iter()
                    .find_map(|e| match e.parsed_extension() {
                        ParsedExtension::SubjectKeyIdentifier(k) => Some(k.0.to_vec()),
                        _ => None,
                    })
            };
            let aki = leaf
                .extensions()
                .iter()
                .find_map(|e| match e.parsed_extension() {
                    ParsedExtension::AuthorityKeyIdentifier(a) => {
                        a.key_identifier.as_ref().map(|k| k.0.to_vec())
                    }
                    _ => None,
                })
                .expect("AKI");
            assert!(ski(&leaf).is_some(), "SKI");
            assert_eq!(Some(aki), ski(&root), "AKI names the issuing CA's key");
            assert_eq!(leaf.issuer(), root.subject());
            assert_eq!(out.not_after, leaf.validity().not_after.timestamp());
        }
    }

    #[test]
    fn a_bad_issuing_ca_is_refused_with_what_to_do() {
        let t = now();
        let not_ca = ca_with(None, 3650, true);
        let e = issuing_ca(not_ca.cert.as_bytes(), not_ca.key.as_bytes(), t).unwrap_err();
        assert!(e[0].contains("is not a CA"), "{e:?}");

        let expired = ca_with(Some(255), -3, true);
        let e = issuing_ca(expired.cert.as_bytes(), expired.key.as_bytes(), t).unwrap_err();
        assert!(
            e[0].contains("expired on") && e[0].contains("renew"),
            "{e:?}"
        );

        let other = ca_with(Some(255), 3650, true);
        let good = ca_with(Some(255), 3650, true);
        let e = issuing_ca(good.cert.as_bytes(), other.key.as_bytes(), t).unwrap_err();
        assert!(e[0].contains("does not belong"), "{e:?}");

        let leafish = ca_with(Some(0), 3650, true);
        let e = issuing_ca(leafish.cert.as_bytes(), leafish.key.as_bytes(), t).unwrap_err();
        assert!(e[0].contains("pathLenConstraint 0"), "{e:?}");

        let no_sign = ca_with(Some(255), 3650, false);
        let e = issuing_ca(no_sign.cert.as_bytes(), no_sign.key.as_bytes(), t).unwrap_err();
        assert!(e[0].contains("keyCertSign"), "{e:?}");

        let e = issuing_ca(b"junk", good.key.as_bytes(), t).unwrap_err();
        assert!(e[0].contains("no CERTIFICATE"), "{e:?}");

        // Issuing CA that ends before the new Edge CA would; a CN equal to the device id.
        let short = ca_with(Some(255), 100, true);
        let i = issuing_ca(short.cert.as_bytes(), short.key.as_bytes(), t).unwrap();
        let mut req = EdgeCaRequest {
            common_name: "edge-001 Edge CA",
            names: &["edge-001"],
            key: EdgeCaKey::EcP256,
            days: 365,
            now: t,
        };
        let e = i.issue(&req).unwrap_err();
        assert!(
            e.contains("ask for at most 99 days") || e.contains("ask for at most 100 days"),
            "{e}"
        );
        req.days = 30;
        req.common_name = "EDGE-001";
        let e = i.issue(&req).unwrap_err();
        assert!(e.contains("IoT Edge requires them to differ"), "{e}");
    }

    #[test]
    fn expiries_are_read_for_every_certificate_of_a_file() {
        let m = make(true, 10, "Edge CA");
        let e = pem_expiries(m.chain.as_bytes()).unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].subject, "Edge CA");
        assert_eq!(e[1].subject, "test root");
        assert!(e.iter().all(|c| c.is_ca));
        let t = now();
        assert!((9..=10).contains(&days_left(e[0].not_after, t)));
        assert_eq!(days_left(t - 1, t), -1);
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert!(EdgeCaKey::parse("rsa-1024")
            .unwrap_err()
            .contains("RSA >= 2048"));
    }
}
