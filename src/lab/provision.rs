//! Everything `lab up` writes before any process starts: keys, PKI, device roots, inventory.
//!
//! Owns the lab's client key and per-device SSH host keys (generated through `embedded`, the lab's only russh user), the
//! lab age identity, the lab root CA and each device's Edge CA / DPS identity certificate (rcgen, P-256) with their
//! keys age-encrypted, the age-encrypted per-device secrets (`host_vars/NAME/secrets.yml.age`), each device's
//! state root (users, sudoers, homes, authorized_keys, see /work/notes/device-contract.md), the `bin/` wrappers
//! that run the simulator (and the device's `date`, which the clock-skew fault shifts), the per-device sshd
//! configuration, and `inventory.yml` / `known_hosts`.
//! Device files that belong to a device user (not root) are not chowned here but listed in [`DeviceOut::owners`]:
//! `lab up` gives them their owners, directly as root or inside the unprivileged lab's user namespace (`userns`).
//! It must not start processes, and it never writes a private key or a secret in clear except the lab's own
//! client key and age identity (mode 0600) and the SSH host keys (mode 0600), which a real device also has.

use std::fmt::Write as _;
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};

use age::secrecy::ExposeSecret;
use rand::RngCore;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256,
};

use super::error::LabError;
use super::layout::{DeviceSpec, LabSpec, Paths};

/// The simulated programs installed on every device (wrappers in `bin/`).
pub const SIM_PROGRAMS: [&str; 8] = [
    "iotedge",
    "docker",
    "systemctl",
    "journalctl",
    "dpkg-query",
    "curl",
    "dpkg",
    "apt-mark",
];
/// Hub host name in the lab's connection strings.
pub const HUB: &str = "lab-hub.azure-devices.net";
/// DPS ID scope used by the lab.
pub const ID_SCOPE: &str = "0ne00EDGELAB";
/// Uid/gid of the `admin` user on every device.
pub const ADMIN_UID: u32 = 1000;

/// Secrets and keys shared by every device of one lab.
pub struct LabKeys {
    /// `ssh-ed25519 AAAA... edgefleet-lab` public line of the client key.
    pub client_pub: String,
    age_recipient: age::x25519::Recipient,
    root: CertifiedIssuer<'static, KeyPair>,
}

fn pki_err(e: impl std::fmt::Display) -> LabError {
    LabError::Pki(e.to_string())
}

fn write_file(path: &Path, data: &[u8], mode: u32) -> Result<(), LabError> {
    let r = (|| {
        let mut f = fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(path)?;
        f.write_all(data)?;
        fs::set_permissions(path, fs::Permissions::from_mode(mode))
    })();
    r.map_err(|e| LabError::io(path, e))
}

fn mkdir(path: &Path, mode: u32) -> Result<(), LabError> {
    fs::create_dir_all(path).map_err(|e| LabError::io(path, e))?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(|e| LabError::io(path, e))
}

/// A device file and the owner and group it must have (ids as the device sees them).
pub type Owner = (PathBuf, u32, u32);

/// Encrypt `data` to the lab's age identity, ASCII-armored.
pub fn age_encrypt(recipient: &age::x25519::Recipient, data: &[u8]) -> Result<Vec<u8>, LabError> {
    let enc = age::Encryptor::with_recipients(std::iter::once(recipient as &dyn age::Recipient))
        .map_err(pki_err)?;
    let mut out = Vec::new();
    let armor = age::armor::ArmoredWriter::wrap_output(&mut out, age::armor::Format::AsciiArmor)
        .map_err(pki_err)?;
    let mut w = enc.wrap_output(armor).map_err(pki_err)?;
    w.write_all(data).map_err(pki_err)?;
    w.finish().and_then(|a| a.finish()).map_err(pki_err)?;
    Ok(out)
}

fn validity(p: &mut CertificateParams, days: i64) {
    let now = time::OffsetDateTime::now_utc();
    p.not_before = now - time::Duration::hours(1);
    p.not_after = now + time::Duration::days(days);
}

/// Create the lab-wide keys: client key, age identity, root CA. Writes `client_ed25519{,.pub}`, `lab.agekey`,
/// `.age-recipients` and `pki/root-ca.cert.pem`.
pub fn lab_keys(paths: &Paths) -> Result<LabKeys, LabError> {
    let (client_priv, client_pub) = super::embedded::ed25519_keypair("edgefleet-lab-client")?;
    write_file(&paths.client_key(), client_priv.as_bytes(), 0o600)?;
    write_file(
        &paths.client_key().with_extension("pub"),
        format!("{client_pub}\n").as_bytes(),
        0o644,
    )?;

    let id = age::x25519::Identity::generate();
    let recipient = id.to_public();
    let created = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let text = format!(
        "# created: {created}\n# public key: {recipient}\n{}\n",
        id.to_string().expose_secret()
    );
    write_file(&paths.age_identity(), text.as_bytes(), 0o600)?;
    write_file(
        &paths.dir.join(".age-recipients"),
        format!("{recipient}\n").as_bytes(),
        0o644,
    )?;

    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(pki_err)?;
    let mut p = CertificateParams::default();
    p.distinguished_name
        .push(DnType::CommonName, "edgefleet lab root CA");
    p.distinguished_name
        .push(DnType::OrganizationName, "edgefleet lab");
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    validity(&mut p, 3650);
    let root = CertifiedIssuer::self_signed(p, key).map_err(pki_err)?;
    mkdir(&paths.pki(), 0o755)?;
    write_file(
        &paths.pki().join("root-ca.cert.pem"),
        root.as_ref().pem().as_bytes(),
        0o644,
    )?;
    Ok(LabKeys {
        client_pub,
        age_recipient: recipient,
        root,
    })
}

/// What provisioning produced for one device (for inventory and known_hosts).
pub struct DeviceOut {
    /// The device.
    pub spec: DeviceSpec,
    /// Its host key's public line (`ssh-ed25519 AAAA...`).
    pub host_pub: String,
    /// Its alternate host key's public line (presented by the wrong-host-key fault).
    pub alt_host_pub: String,
    /// Files of the device's root that belong to another user than root.
    pub owners: Vec<Owner>,
}

/// Paths of a device's PKI files.
pub fn edge_ca_cert(paths: &Paths, name: &str) -> PathBuf {
    paths.pki().join(name).join("edge-ca.cert.pem")
}
/// Age-encrypted Edge CA key.
pub fn edge_ca_key(paths: &Paths, name: &str) -> PathBuf {
    paths.pki().join(name).join("edge-ca.key.pem.age")
}
/// DPS identity certificate (chain).
pub fn identity_cert(paths: &Paths, name: &str) -> PathBuf {
    paths.pki().join(name).join("identity.cert.pem")
}
/// Age-encrypted DPS identity key.
pub fn identity_key(paths: &Paths, name: &str) -> PathBuf {
    paths.pki().join(name).join("identity.key.pem.age")
}

/// Sign `p` (valid for a year, with an authority key identifier) with the lab root; write the chain (leaf + root)
/// to `cert_path` and the key, age-encrypted to the lab identity, to `key_path`.
fn sign_and_write(
    mut p: CertificateParams,
    key: &KeyPair,
    keys: &LabKeys,
    cert_path: &Path,
    key_path: &Path,
) -> Result<(), LabError> {
    p.use_authority_key_identifier_extension = true;
    validity(&mut p, 365);
    let cert = p.signed_by(key, &keys.root).map_err(pki_err)?;
    let chain = format!("{}{}", cert.pem(), keys.root.as_ref().pem());
    write_file(cert_path, chain.as_bytes(), 0o644)?;
    write_file(
        key_path,
        &age_encrypt(&keys.age_recipient, key.serialize_pem().as_bytes())?,
        0o644,
    )
}

fn device_pki(paths: &Paths, keys: &LabKeys, d: &DeviceSpec) -> Result<(), LabError> {
    let dir = paths.pki().join(&d.name);
    mkdir(&dir, 0o755)?;

    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(pki_err)?;
    let mut p = CertificateParams::default();
    p.distinguished_name.push(
        DnType::CommonName,
        format!("edgefleet lab Edge CA {}", d.name),
    );
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    sign_and_write(
        p,
        &key,
        keys,
        &edge_ca_cert(paths, &d.name),
        &edge_ca_key(paths, &d.name),
    )?;

    if d.provisioning == "dps" {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(pki_err)?;
        let mut p = CertificateParams::default();
        p.distinguished_name
            .push(DnType::CommonName, d.name.clone());
        p.is_ca = IsCa::ExplicitNoCa;
        p.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyAgreement,
        ];
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        sign_and_write(
            p,
            &key,
            keys,
            &identity_cert(paths, &d.name),
            &identity_key(paths, &d.name),
        )?;
    } else {
        let mut sak = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut sak);
        use base64::Engine as _;
        let sak = base64::engine::general_purpose::STANDARD.encode(sak);
        let cs = format!("HostName={HUB};DeviceId={};SharedAccessKey={sak}", d.name);
        let yaml = format!(
            "# Secrets of lab device {} (age-encrypted to the lab identity).\niotedge_connection_string: {}\n",
            d.name,
            serde_json::Value::String(cs)
        );
        let hv = paths.host_vars().join(&d.name);
        mkdir(&hv, 0o755)?;
        write_file(
            &hv.join("secrets.yml.age"),
            &age_encrypt(&keys.age_recipient, yaml.as_bytes())?,
            0o644,
        )?;
    }
    Ok(())
}

const PASSWD: &str = "root:x:0:0:root:/root:/bin/bash
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
bin:x:2:2:bin:/bin:/usr/sbin/nologin
sys:x:3:3:sys:/dev:/usr/sbin/nologin
sync:x:4:65534:sync:/bin:/bin/sync
man:x:6:12:man:/var/cache/man:/usr/sbin/nologin
_apt:x:42:65534::/nonexistent:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
sshd:x:101:65534::/run/sshd:/usr/sbin/nologin
admin:x:1000:1000:admin,,,:/home/admin:/bin/bash
aziotks:x:990:990::/home/aziotks:/sbin/nologin
aziotcs:x:991:991::/home/aziotcs:/sbin/nologin
aziotid:x:992:992::/home/aziotid:/sbin/nologin
aziottpm:x:993:993::/home/aziottpm:/sbin/nologin
iotedge:x:994:994::/var/lib/aziot/edged:/sbin/nologin
";

const GROUP: &str = "root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
adm:x:4:admin
tty:x:5:
disk:x:6:
man:x:12:
sudo:x:27:admin
shadow:x:42:
users:x:100:admin
nogroup:x:65534:
admin:x:1000:
aziotks:x:990:aziotcs,aziotid,iotedge
aziotcs:x:991:aziotid,iotedge
aziotid:x:992:iotedge
aziottpm:x:993:aziotid,iotedge
iotedge:x:994:
docker:x:995:iotedge,admin
";

const ROOT_BASHRC: &str = "# ~/.bashrc: executed by bash(1) for non-login shells.

# Note: PS1 and umask are already set in /etc/profile. You should not
# need this unless you want different defaults for root.
# PS1='${debian_chroot:+($debian_chroot)}\\h:\\w\\$ '
# umask 022

# You may uncomment the following lines if you want `ls' to be colorized:
# export LS_OPTIONS='--color=auto'
# eval \"$(dircolors)\"
# alias ls='ls $LS_OPTIONS'
";

const ROOT_PROFILE: &str = "# ~/.profile: executed by Bourne-compatible login shells.

if [ \"$BASH\" ]; then
  if [ -f ~/.bashrc ]; then
    . ~/.bashrc
  fi
fi

mesg n 2> /dev/null || true
";

const USER_BASHRC: &str = "# ~/.bashrc: executed by bash(1) for non-login shells.

# If not running interactively, don't do anything
case $- in
    *i*) ;;
      *) return;;
esac

HISTCONTROL=ignoreboth
shopt -s histappend
HISTSIZE=1000
HISTFILESIZE=2000
shopt -s checkwinsize
PS1='${debian_chroot:+($debian_chroot)}\\u@\\h:\\w\\$ '
";

const USER_PROFILE: &str = "# ~/.profile: executed by the command interpreter for login shells.

if [ -n \"$BASH_VERSION\" ]; then
    if [ -f \"$HOME/.bashrc\" ]; then
        . \"$HOME/.bashrc\"
    fi
fi

if [ -d \"$HOME/bin\" ] ; then
    PATH=\"$HOME/bin:$PATH\"
fi
";

fn shadow() -> String {
    let days = time::OffsetDateTime::now_utc().unix_timestamp() / 86400;
    PASSWD
        .lines()
        .filter_map(|l| l.split(':').next())
        .map(|u| format!("{u}:*:{days}:0:99999:7:::\n"))
        .collect()
}

/// Create one device's state root (see the device contract).
fn device_root(
    paths: &Paths,
    spec: &LabSpec,
    d: &DeviceSpec,
    client_pub: &str,
) -> Result<Vec<Owner>, LabError> {
    let dev = paths.device(&d.name);
    let root = paths.device_root(&d.name);
    mkdir(&dev, 0o755)?;
    mkdir(&root, 0o755)?;
    mkdir(&paths.device_ns(&d.name), 0o700)?;
    let etc = root.join("etc");
    mkdir(&etc, 0o755)?;
    for sub in ["keyd", "certd", "identityd", "tpmd", "edged"] {
        mkdir(&etc.join("aziot").join(sub).join("config.d"), 0o755)?;
    }
    mkdir(&etc.join("docker"), 0o755)?;
    mkdir(&etc.join("sudoers.d"), 0o755)?;
    write_file(&etc.join("passwd"), PASSWD.as_bytes(), 0o644)?;
    write_file(&etc.join("group"), GROUP.as_bytes(), 0o644)?;
    write_file(&etc.join("shadow"), shadow().as_bytes(), 0o640)?;
    let mut owners = vec![(etc.join("shadow"), 0, 42)];
    write_file(
        &etc.join("hostname"),
        format!("{}\n", d.name).as_bytes(),
        0o644,
    )?;
    write_file(
        &etc.join("hosts"),
        format!(
            "127.0.0.1\tlocalhost\n127.0.1.1\t{}\n\n::1\tlocalhost ip6-localhost ip6-loopback\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n",
            d.name
        )
        .as_bytes(),
        0o644,
    )?;
    write_file(
        &etc.join("sudoers.d/90-admin"),
        b"# Written by edgefleet lab: the admin user may become root without a password.\nadmin ALL=(ALL) NOPASSWD:ALL\n",
        0o440,
    )?;

    mkdir(&root.join("srv"), 0o755)?;
    let var = root.join("var");
    for (p, m) in [
        ("aziot", 0o755),
        ("lib/aziot", 0o755),
        ("secrets", 0o755),
        ("lib/sudo", 0o700),
        ("log", 0o755),
        ("cache", 0o755),
        ("spool", 0o755),
        ("mail", 0o775),
        ("tmp", 0o1777),
    ] {
        mkdir(&var.join(p), m)?;
    }
    for (l, t) in [("run", "/run"), ("lock", "/run/lock")] {
        let p = var.join(l);
        if fs::symlink_metadata(&p).is_err() {
            symlink(t, &p).map_err(|e| LabError::io(&p, e))?;
        }
    }
    super::sim::init_device_state(&root).map_err(|e| LabError::io(&root, e))?;
    super::sim::init_device_options(&root, spec.bare, spec.airgapped)
        .map_err(|e| LabError::io(&root, e))?;

    let auth = format!("{client_pub}\n");
    let login_root = spec.user == "root";
    let rh = root.join("root");
    mkdir(&rh, 0o700)?;
    write_file(&rh.join(".bashrc"), ROOT_BASHRC.as_bytes(), 0o644)?;
    write_file(&rh.join(".profile"), ROOT_PROFILE.as_bytes(), 0o644)?;
    mkdir(&rh.join(".ssh"), 0o700)?;
    if login_root {
        write_file(&rh.join(".ssh/authorized_keys"), auth.as_bytes(), 0o600)?;
    }
    let home = root.join("home");
    mkdir(&home, 0o755)?;
    let ah = home.join("admin");
    mkdir(&ah, 0o755)?;
    write_file(&ah.join(".bashrc"), USER_BASHRC.as_bytes(), 0o644)?;
    write_file(&ah.join(".profile"), USER_PROFILE.as_bytes(), 0o644)?;
    mkdir(&ah.join(".ssh"), 0o700)?;
    let mut owned = vec![
        ah.clone(),
        ah.join(".bashrc"),
        ah.join(".profile"),
        ah.join(".ssh"),
    ];
    if !login_root {
        write_file(&ah.join(".ssh/authorized_keys"), auth.as_bytes(), 0o600)?;
        owned.push(ah.join(".ssh/authorized_keys"));
    }
    owners.extend(owned.into_iter().map(|p| (p, ADMIN_UID, ADMIN_UID)));
    Ok(owners)
}

/// The sshd configuration of one device (openssh backend).
pub fn sshd_config(
    paths: &Paths,
    d: &DeviceSpec,
    listen: std::net::SocketAddr,
    alt_key: bool,
) -> String {
    let ssh = paths.device_ssh(&d.name);
    let key = if alt_key {
        ssh.join("ssh_host_ed25519_key.alt")
    } else {
        ssh.join("ssh_host_ed25519_key")
    };
    format!(
        "# sshd configuration of lab device {name} (generated by edgefleet lab; Debian defaults otherwise).
ListenAddress {listen}
HostKey {key}
PidFile {pid}
PubkeyAuthentication yes
AuthorizedKeysFile .ssh/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM no
UseDNS no
PrintMotd no
PrintLastLog no
AcceptEnv LANG LC_*
Subsystem sftp /usr/lib/openssh/sftp-server
",
        name = d.name,
        key = key.display(),
        pid = ssh.join("sshd.pid").display(),
    )
}

fn host_keys(paths: &Paths, d: &DeviceSpec) -> Result<(String, String), LabError> {
    let ssh = paths.device_ssh(&d.name);
    mkdir(&ssh, 0o700)?;
    let (k, p) = super::embedded::ed25519_keypair(&format!("root@{}", d.name))?;
    write_file(&ssh.join("ssh_host_ed25519_key"), k.as_bytes(), 0o600)?;
    write_file(
        &ssh.join("ssh_host_ed25519_key.pub"),
        format!("{p}\n").as_bytes(),
        0o644,
    )?;
    let (ka, pa) = super::embedded::ed25519_keypair(&format!("root@{}", d.name))?;
    write_file(&ssh.join("ssh_host_ed25519_key.alt"), ka.as_bytes(), 0o600)?;
    write_file(
        &ssh.join("ssh_host_ed25519_key.alt.pub"),
        format!("{pa}\n").as_bytes(),
        0o644,
    )?;
    Ok((p, pa))
}

/// Give every listed file its owner and group, as root (an unprivileged lab does it in its user namespace).
pub fn set_owners(owners: &[Owner]) -> Result<(), LabError> {
    for (path, uid, gid) in owners {
        std::os::unix::fs::lchown(path, Some(*uid), Some(*gid))
            .map_err(|e| LabError::io(path, e))?;
    }
    Ok(())
}

/// Provision one device completely (except [`DeviceOut::owners`]).
pub fn device(
    paths: &Paths,
    spec: &LabSpec,
    keys: &LabKeys,
    d: &DeviceSpec,
) -> Result<DeviceOut, LabError> {
    let owners = device_root(paths, spec, d, &keys.client_pub)?;
    device_pki(paths, keys, d)?;
    let (host_pub, alt_host_pub) = host_keys(paths, d)?;
    Ok(DeviceOut {
        spec: d.clone(),
        host_pub,
        alt_host_pub,
        owners,
    })
}

/// Bastion mode: the jump host's keys and sshd configuration under `bastion/`. Returns its known_hosts entry.
pub fn bastion(paths: &Paths, spec: &LabSpec, keys: &LabKeys) -> Result<DeviceOut, LabError> {
    let dir = paths.bastion();
    mkdir(&dir, 0o700)?;
    let addr = super::layout::bastion_addr(spec.slot);
    let (k, p) = super::embedded::ed25519_keypair("root@edgefleet-lab-bastion")?;
    write_file(&dir.join("ssh_host_ed25519_key"), k.as_bytes(), 0o600)?;
    write_file(
        &dir.join("authorized_keys"),
        format!("{}\n", keys.client_pub).as_bytes(),
        0o600,
    )?;
    let cfg = format!(
        "# The lab's bastion: runs inside the devices' private network namespace; the host reaches it through the
# lab supervisor's forwarder on the same address. It only forwards (ssh -J / -W).
ListenAddress {addr}:22
HostKey {key}
PidFile {pid}
AuthorizedKeysFile {auth}
StrictModes no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM no
UseDNS no
PrintMotd no
AllowTcpForwarding yes
X11Forwarding no
MaxStartups 200:30:400
MaxSessions 1000
",
        key = dir.join("ssh_host_ed25519_key").display(),
        pid = dir.join("sshd.pid").display(),
        auth = dir.join("authorized_keys").display(),
    );
    write_file(&dir.join("sshd_config"), cfg.as_bytes(), 0o600)?;
    Ok(DeviceOut {
        spec: DeviceSpec {
            name: "bastion".into(),
            addr,
            port: 22,
            provisioning: String::new(),
        },
        host_pub: p.clone(),
        alt_host_pub: p,
        owners: Vec::new(),
    })
}

/// Write `ssh_config`: the plain OpenSSH client's settings for this lab (`ssh -F` is passed on to `-J` jumps,
/// unlike `-o` options).
pub fn ssh_config(paths: &Paths, spec: &LabSpec) -> Result<(), LabError> {
    let text = format!(
        "# OpenSSH client configuration for the edgefleet lab in {dir}: ssh -F {me} ADDRESS
Host *
    User {user}
    IdentityFile {key}
    IdentitiesOnly yes
    UserKnownHostsFile {kh}
    StrictHostKeyChecking yes
    BatchMode yes
",
        dir = paths.dir.display(),
        me = paths.ssh_config().display(),
        user = spec.user,
        key = paths.client_key().display(),
        kh = paths.known_hosts().display(),
    );
    write_file(&paths.ssh_config(), text.as_bytes(), 0o644)
}

/// Shell-quote a path for a wrapper script.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// The device's `date`: the real one, shifted by the `clock-skew` fault's offset (seconds) while it is set; with
/// an explicit date (`-d`, `-r`, `-s`) it is the real one unchanged.
const DATE_WRAPPER: &str = r#"#!/bin/sh
# edgefleet lab: the device clock (the clock-skew fault shifts it by the seconds in this file).
f=/var/lib/edgefleet-lab/faults/clock-skew
if [ -r "$f" ] && off=$(cat "$f") && [ -n "$off" ]; then
  case " $* " in *" -d"*|*" --date"*|*" -r"*|*" --reference"*|*" -s"*|*" --set"*) exec /bin/date "$@" ;; esac
  exec /bin/date -d "@$(( $(/bin/date +%s) + off ))" "$@"
fi
exec /bin/date "$@"
"#;

/// Write `bin/` with one wrapper per simulated program, and the device clock (`date`).
pub fn wrappers(paths: &Paths, exe: &Path) -> Result<(), LabError> {
    let bin = paths.bin();
    mkdir(&bin, 0o755)?;
    for prog in SIM_PROGRAMS {
        let text = format!(
            "#!/bin/sh\nexec {} __sim {prog} \"$@\"\n",
            sh_quote(&exe.to_string_lossy())
        );
        write_file(&bin.join(prog), text.as_bytes(), 0o755)?;
    }
    write_file(&bin.join("date"), DATE_WRAPPER.as_bytes(), 0o755)?;
    Ok(())
}

/// Site group of device index `i`: `site_a` .. `site_z`, `site_aa`, ... (50 devices each).
pub fn site_of(i: usize) -> String {
    let mut n = i / 50;
    let mut s = String::new();
    loop {
        s.insert(0, (b'a' + (n % 26) as u8) as char);
        if n < 26 {
            break;
        }
        n = n / 26 - 1;
    }
    format!("site_{s}")
}

fn q(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

/// Render `inventory.yml` (Ansible YAML inventory).
pub fn inventory(paths: &Paths, spec: &LabSpec) -> String {
    let key = paths.client_key();
    let jump = spec
        .bastion
        .then(|| format!("root@{}", super::layout::bastion_addr(spec.slot)));
    let common = match &jump {
        None => format!(
            "-o UserKnownHostsFile={} -o StrictHostKeyChecking=yes",
            paths.known_hosts().display()
        ),
        // `-J` jumps do not inherit `-o` options, but they do inherit `-F`.
        Some(j) => format!("-F {} -J {j}", paths.ssh_config().display()),
    };
    let become_ = spec.user == "admin";
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# edgefleet lab inventory: {} {} devices logging in as {}.\n# Secrets are in host_vars/NAME/secrets.yml.age (age identity: {}).",
        spec.devices.len(),
        spec.backend,
        spec.user,
        paths.age_identity().display()
    );
    out.push_str("all:\n  vars:\n");
    let _ = writeln!(out, "    iotedge_hub_hostname: {}", q(HUB));
    // The shipped roles' settings for a lab: explicit DNS (the checklist asks for it) and the lab's own
    // registry name; the devices pull nothing, the simulator records the image.
    out.push_str("    docker_dns: [\"10.0.0.53\", \"10.0.0.54\"]\n");
    let _ = writeln!(
        out,
        "    edge_ca_trust_bundle: {}",
        q(&paths.pki().join("root-ca.cert.pem").to_string_lossy())
    );
    out.push_str("  children:\n");
    let mut sites: Vec<(String, Vec<usize>)> = Vec::new();
    for (i, _) in spec.devices.iter().enumerate() {
        let s = site_of(i);
        match sites.last_mut() {
            Some((n, v)) if *n == s => v.push(i),
            _ => sites.push((s, vec![i])),
        }
    }
    for (site, idx) in &sites {
        let _ = writeln!(out, "    {site}:\n      hosts:");
        for &i in idx {
            let d = &spec.devices[i];
            let _ = writeln!(out, "        {}:", d.name);
            let _ = writeln!(out, "          ansible_host: {}", d.addr);
            let _ = writeln!(out, "          ansible_port: {}", d.port);
            let _ = writeln!(out, "          ansible_user: {}", spec.user);
            let _ = writeln!(
                out,
                "          ansible_ssh_private_key_file: {}",
                q(&key.to_string_lossy())
            );
            let _ = writeln!(out, "          ansible_ssh_common_args: {}", q(&common));
            if let Some(j) = &jump {
                let _ = writeln!(out, "          ansible_ssh_jump: {}", q(j));
            }
            let _ = writeln!(out, "          ansible_become: {become_}");
            let _ = writeln!(out, "          iotedge_device_id: {}", q(&d.name));
            let _ = writeln!(out, "          iotedge_provisioning: {}", d.provisioning);
            let _ = writeln!(
                out,
                "          edge_ca_cert: {}",
                q(&edge_ca_cert(paths, &d.name).to_string_lossy())
            );
            let _ = writeln!(
                out,
                "          edge_ca_key: {}",
                q(&edge_ca_key(paths, &d.name).to_string_lossy())
            );
            if d.provisioning == "dps" {
                let _ = writeln!(out, "          iotedge_dps_id_scope: {}", q(ID_SCOPE));
                let _ = writeln!(out, "          iotedge_dps_registration_id: {}", q(&d.name));
                let _ = writeln!(
                    out,
                    "          edge_ca_identity_cert: {}",
                    q(&identity_cert(paths, &d.name).to_string_lossy())
                );
                let _ = writeln!(
                    out,
                    "          edge_ca_identity_key: {}",
                    q(&identity_key(paths, &d.name).to_string_lossy())
                );
            }
        }
    }
    for prov in ["manual", "dps"] {
        let _ = writeln!(out, "    {prov}:\n      hosts:");
        for d in spec.devices.iter().filter(|d| d.provisioning == prov) {
            let _ = writeln!(out, "        {}: {{}}", d.name);
        }
    }
    out
}

/// Render `known_hosts`.
pub fn known_hosts(devs: &[DeviceOut]) -> String {
    let mut s = String::new();
    for d in devs {
        let host = if d.spec.port == 22 {
            d.spec.addr.to_string()
        } else {
            format!("[{}]:{}", d.spec.addr, d.spec.port)
        };
        // Drop the key comment: known_hosts lines are `host type base64`.
        let key: Vec<&str> = d.host_pub.split_whitespace().take(2).collect();
        let _ = writeln!(s, "{host} {}", key.join(" "));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sites_have_fifty_devices_and_roll_over() {
        assert_eq!(site_of(0), "site_a");
        assert_eq!(site_of(49), "site_a");
        assert_eq!(site_of(50), "site_b");
        assert_eq!(site_of(25 * 50), "site_z");
        assert_eq!(site_of(26 * 50), "site_aa");
        assert_eq!(site_of(27 * 50), "site_ab");
    }

    #[test]
    fn shadow_lists_every_user_unlocked() {
        let s = shadow();
        assert_eq!(s.lines().count(), PASSWD.lines().count());
        for l in s.lines() {
            let f: Vec<&str> = l.split(':').collect();
            assert_eq!(f[1], "*", "{l}");
        }
    }

    #[test]
    fn passwd_service_ids_are_distinct_and_in_range() {
        let mut uids = std::collections::HashSet::new();
        for l in PASSWD.lines() {
            let f: Vec<&str> = l.split(':').collect();
            assert!(uids.insert(f[2].to_string()), "duplicate uid in {l}");
            if f[0].starts_with("aziot") || f[0] == "iotedge" {
                let uid: u32 = f[2].parse().unwrap();
                assert!((900..1000).contains(&uid));
            }
        }
    }

    #[test]
    fn age_encryption_roundtrips_to_the_lab_identity() {
        let id = age::x25519::Identity::generate();
        let ct = age_encrypt(&id.to_public(), b"secret: 1\n").unwrap();
        assert!(ct.starts_with(b"-----BEGIN AGE ENCRYPTED FILE-----"));
        let pt = age::decrypt(&id, &ct).unwrap();
        assert_eq!(pt, b"secret: 1\n");
    }
}
