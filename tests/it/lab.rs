//! The device lab, end to end: real namespaces, real sshd / the embedded russh server, the plain OpenSSH client,
//! real sudo, real age and X.509. Every test brings up its own lab in a temp dir and tears it down (Drop).

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use edgefleet::lab::supervisor::SLOW_INNER_PORT;
use edgefleet::lab::{FaultKind, LabBackend, LabUser};
use edgefleet::lab::{Lab, LabConfig};

use crate::support;

fn up(dir: &Path, n: usize, backend: LabBackend, user: LabUser) -> Lab {
    let mut cfg = LabConfig::new(dir.join("lab"), n);
    cfg.backend = backend;
    cfg.user = user;
    cfg.exe = Some(support::bin());
    match Lab::up(&cfg) {
        Ok(l) => l,
        Err(e) => panic!("lab up failed: {e}"),
    }
}

/// The plain OpenSSH client, connecting the way the generated inventory says: its host, port, user, key and
/// common args (the lab's known_hosts, strict host key checking).
pub(crate) fn ssh_cmd(lab: &Lab, device: &str) -> Command {
    let text = std::fs::read_to_string(lab.inventory_path()).unwrap();
    let inv: serde_json::Value =
        edgefleet::yaml::parse_value(&text, &lab.inventory_path()).unwrap();
    let host = inv["all"]["children"]
        .as_object()
        .unwrap()
        .values()
        .find_map(|g| {
            g["hosts"]
                .get(device)
                .filter(|h| h.get("ansible_host").is_some())
        })
        .unwrap_or_else(|| panic!("{device} not in the inventory"))
        .clone();
    let s = |k: &str| match &host[k] {
        serde_json::Value::String(s) => s.clone(),
        v => v.to_string(),
    };
    let mut c = Command::new("ssh");
    c.arg("-F")
        .arg("/dev/null")
        .arg("-i")
        .arg(s("ansible_ssh_private_key_file"));
    for a in s("ansible_ssh_common_args").split_whitespace() {
        c.arg(a);
    }
    c.args([
        "-o",
        "BatchMode=yes",
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "ConnectTimeout=10",
    ])
    .arg("-p")
    .arg(s("ansible_port"))
    .arg(format!("{}@{}", s("ansible_user"), s("ansible_host")));
    c
}

pub(crate) fn ssh(lab: &Lab, device: &str, cmd: &str) -> Output {
    ssh_cmd(lab, device)
        .arg(cmd)
        .stdin(Stdio::null())
        .output()
        .expect("run ssh")
}

fn ok_stdout(o: &Output) -> String {
    assert!(
        o.status.success(),
        "status {:?}\nstdout: {}\nstderr: {}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).trim_end().to_string()
}

fn addr(lab: &Lab, device: &str) -> SocketAddr {
    let d = lab
        .devices()
        .into_iter()
        .find(|d| d.name == device)
        .expect("device");
    SocketAddr::new(d.address.into(), d.port)
}

fn banner(a: SocketAddr, wait: Duration) -> std::io::Result<String> {
    let s = TcpStream::connect_timeout(&a, Duration::from_secs(5))?;
    s.set_read_timeout(Some(wait))?;
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line)?;
    Ok(line)
}

/// Each device: its own hostname, its own /etc/aziot, the simulator wrappers on PATH, exec semantics.
fn check_devices(lab: &Lab) {
    let devs = lab.devices();
    for d in &devs {
        // Seed a per-device file through the device's state root on the host.
        std::fs::write(
            d.root.join("etc/aziot/config.toml"),
            format!("hostname = \"{}\"\n", d.name),
        )
        .unwrap();
    }
    for d in &devs {
        let out = ok_stdout(&ssh(
            lab,
            &d.name,
            "hostname; cat /etc/hostname; cat /etc/aziot/config.toml; command -v iotedge; id -un",
        ));
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], d.name);
        assert_eq!(lines[1], d.name);
        assert_eq!(lines[2], format!("hostname = \"{}\"", d.name));
        assert_eq!(lines[3], "/usr/local/bin/iotedge");
        assert_eq!(lines[4], lab.user());
    }
    // The host's own view is untouched.
    let host_name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert!(devs.iter().all(|d| d.name != host_name.trim()));
    if let Ok(host_cfg) = std::fs::read_to_string("/etc/aziot/config.toml") {
        assert!(!host_cfg.contains("edge-0"));
    }
    // The wrapper is found and executed, and it execs edgefleet's simulator entry point.
    let o = ssh(lab, &devs[0].name, "sh -x /usr/local/bin/iotedge version");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&format!(
            "exec {} __sim iotedge version",
            support::bin().display()
        )),
        "{err}"
    );
    assert!(
        !err.contains("not found") && !err.contains("Permission denied"),
        "{err}"
    );
}

fn check_exec_semantics(lab: &Lab, device: &str) {
    // Exit status, stdout and stderr kept apart.
    let o = ssh(lab, device, "echo out; echo err >&2; exit 7");
    assert_eq!(o.status.code(), Some(7));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "out\n");
    assert_eq!(String::from_utf8_lossy(&o.stderr), "err\n");
    // stdin streamed to the command, EOF delivered, 1 MiB intact.
    let data: Vec<u8> = (0..(1u32 << 20)).map(|i| (i * 7 + i / 251) as u8).collect();
    let mut child = ssh_cmd(lab, device)
        .arg("cat; echo done >&2")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let w = {
        let data = data.clone();
        std::thread::spawn(move || {
            stdin.write_all(&data).unwrap();
        })
    };
    let mut out = Vec::new();
    child.stdout.take().unwrap().read_to_end(&mut out).unwrap();
    w.join().unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success());
    assert_eq!(out.len(), data.len());
    assert!(out == data, "stdin round trip corrupted");
    assert_eq!(String::from_utf8_lossy(&o.stderr), "done\n");
    // A command killed by a signal: OpenSSH's client exits 255 on exit-signal.
    let o = ssh(lab, device, "kill -TERM $$");
    assert_eq!(o.status.code(), Some(255), "{o:?}");
    // Login environment like sshd's.
    let out = ok_stdout(&ssh(
        lab,
        device,
        "echo $HOME $SHELL; pwd; echo $SSH_CONNECTION",
    ));
    let lines: Vec<&str> = out.lines().collect();
    let home = if lab.user() == "root" {
        "/root"
    } else {
        "/home/admin"
    };
    assert_eq!(lines[0], format!("{home} /bin/bash"));
    assert_eq!(lines[1], home);
    assert!(
        lines[2].ends_with(&format!("{} 22", addr(lab, device).ip())),
        "{}",
        lines[2]
    );
}

#[test]
fn embedded_devices_are_private_ssh_hosts() {
    let tmp = tempfile::tempdir().unwrap();
    let lab = up(tmp.path(), 3, LabBackend::Embedded, LabUser::Root);
    check_devices(&lab);
    check_exec_semantics(&lab, "edge-002");
    // Tests can reach into a device without SSH.
    let o = lab
        .run_on("edge-003", "hostname; cat /etc/aziot/config.toml")
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "edge-003\nhostname = \"edge-003\"\n"
    );
    // Looking at a device changes nothing on it: no apply, no restart.
    let c = lab.counters("edge-001").unwrap();
    for k in ["config_apply", "docker_restart", "service_restart"] {
        assert_eq!(c.get(k).copied().unwrap_or(0), 0, "{k}: {c:?}");
    }
    lab.down().unwrap();
}

#[test]
fn openssh_devices_are_private_ssh_hosts() {
    let tmp = tempfile::tempdir().unwrap();
    let lab = up(tmp.path(), 3, LabBackend::Openssh, LabUser::Root);
    check_devices(&lab);
    check_exec_semantics(&lab, "edge-001");
    // It really is OpenSSH: SFTP works.
    let d = lab.devices()[0].clone();
    let local = tmp.path().join("hostname.copy");
    let o = Command::new("sftp")
        .arg("-F")
        .arg("/dev/null")
        .arg("-i")
        .arg(lab.client_key_path())
        .arg("-o")
        .arg(format!(
            "UserKnownHostsFile={}",
            lab.known_hosts_path().display()
        ))
        .arg("-o")
        .arg("StrictHostKeyChecking=yes")
        .arg("-o")
        .arg("BatchMode=yes")
        .arg("-b")
        .arg("-")
        .arg(format!("root@{}", d.address))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin
                .take()
                .unwrap()
                .write_all(format!("get /etc/hostname {}\n", local.display()).as_bytes())?;
            c.wait_with_output()
        })
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    assert_eq!(std::fs::read_to_string(&local).unwrap(), "edge-001\n");
    lab.down().unwrap();
}

#[test]
fn admin_devices_become_root_with_real_sudo() {
    for backend in [LabBackend::Embedded, LabBackend::Openssh] {
        let tmp = tempfile::tempdir().unwrap();
        let lab = up(tmp.path(), 2, backend, LabUser::Admin);
        for d in lab.devices() {
            let out = ok_stdout(&ssh(
                &lab,
                &d.name,
                "id -un; id -u; sudo -n id -u; sudo -n cat /etc/shadow | grep -c '^admin:'",
            ));
            assert_eq!(out, "admin\n1000\n0\n1", "{backend:?}");
        }
        // root cannot log in with the lab key on an admin lab.
        let o = Command::new("ssh")
            .args([
                "-F",
                "/dev/null",
                "-o",
                "BatchMode=yes",
                "-o",
                "IdentitiesOnly=yes",
                "-i",
            ])
            .arg(lab.client_key_path())
            .arg("-o")
            .arg(format!(
                "UserKnownHostsFile={}",
                lab.known_hosts_path().display()
            ))
            .arg(format!("root@{}", lab.devices()[0].address))
            .arg("true")
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(255), "{backend:?}");
        assert!(String::from_utf8_lossy(&o.stderr).contains("Permission denied"));
        lab.down().unwrap();
    }
}

fn check_network_faults(lab: &Lab) {
    // unreachable: nothing listens.
    lab.fault("edge-001", FaultKind::Unreachable, None).unwrap();
    let e = TcpStream::connect_timeout(&addr(lab, "edge-001"), Duration::from_secs(5)).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused);
    assert!(!ssh(lab, "edge-001", "true").status.success());
    lab.fault("edge-001", FaultKind::None, None).unwrap();
    assert_eq!(ok_stdout(&ssh(lab, "edge-001", "hostname")), "edge-001");

    // black hole: TCP connects, no SSH banner ever comes.
    lab.fault("edge-002", FaultKind::BlackHole, None).unwrap();
    let e = banner(addr(lab, "edge-002"), Duration::from_millis(1500)).unwrap_err();
    assert!(
        matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
        "{e}"
    );
    lab.fault("edge-002", FaultKind::None, None).unwrap();
    assert!(banner(addr(lab, "edge-002"), Duration::from_secs(10))
        .unwrap()
        .starts_with("SSH-2.0-"));

    // slow link: the device's SSH server moves behind a relay that delays every byte by half the added round
    // trip. The server itself now answers on the relay's inner port (nothing listened there before), the relay
    // on the device's address and port, and SSH works through it.
    let inner = SocketAddr::new(addr(lab, "edge-003").ip(), SLOW_INNER_PORT);
    let e = TcpStream::connect_timeout(&inner, Duration::from_secs(5)).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused);
    lab.fault("edge-003", FaultKind::SlowLink, Some(600))
        .unwrap();
    assert!(banner(inner, Duration::from_secs(30))
        .unwrap()
        .starts_with("SSH-2.0-"));
    assert!(banner(addr(lab, "edge-003"), Duration::from_secs(30))
        .unwrap()
        .starts_with("SSH-2.0-"));
    let status = lab.status().unwrap();
    let st = status.iter().find(|d| d.device.name == "edge-003").unwrap();
    assert_eq!(st.faults, vec!["slow-link(600ms)".to_string()]);
    assert_eq!(ok_stdout(&ssh(lab, "edge-003", "hostname")), "edge-003");
    lab.fault("edge-003", FaultKind::None, None).unwrap();

    // wrong host key: strict checking refuses the device; clearing restores it.
    lab.fault("edge-004", FaultKind::WrongHostKey, None)
        .unwrap();
    let o = ssh(lab, "edge-004", "true");
    assert_eq!(o.status.code(), Some(255));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("REMOTE HOST IDENTIFICATION HAS CHANGED"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    lab.fault("edge-004", FaultKind::None, None).unwrap();
    assert_eq!(ok_stdout(&ssh(lab, "edge-004", "hostname")), "edge-004");

    // reboot: an established session drops, the device refuses connections, then comes back with its files.
    let mut long = ssh_cmd(lab, "edge-005")
        .arg("echo started; sleep 60; echo finished")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(long.stdout.as_mut().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert_eq!(first, "started\n");
    std::fs::write(
        lab.device_root("edge-005").join("etc/aziot/config.toml"),
        "kept\n",
    )
    .unwrap();
    lab.fault("edge-005", FaultKind::Reboot, Some(5000))
        .unwrap();
    let e = TcpStream::connect_timeout(&addr(lab, "edge-005"), Duration::from_secs(5)).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused);
    let st = long.wait_with_output().unwrap();
    assert_eq!(st.status.code(), Some(255), "{st:?}");
    assert!(!String::from_utf8_lossy(&st.stdout).contains("finished"));
    lab.wait_up("edge-005", Duration::from_secs(60)).unwrap();
    assert_eq!(
        ok_stdout(&ssh(
            lab,
            "edge-005",
            "hostname; cat /etc/aziot/config.toml"
        )),
        "edge-005\nkept"
    );
}

#[test]
fn network_faults_embedded() {
    let tmp = tempfile::tempdir().unwrap();
    let lab = up(tmp.path(), 5, LabBackend::Embedded, LabUser::Root);
    check_network_faults(&lab);
    lab.down().unwrap();
}

#[test]
fn network_faults_openssh() {
    let tmp = tempfile::tempdir().unwrap();
    let lab = up(tmp.path(), 5, LabBackend::Openssh, LabUser::Root);
    check_network_faults(&lab);
    lab.down().unwrap();
}

#[test]
fn device_faults_change_what_the_device_does() {
    let tmp = tempfile::tempdir().unwrap();
    let lab = up(tmp.path(), 2, LabBackend::Embedded, LabUser::Admin);
    let faults = "/var/lib/edgefleet-lab/faults";

    // apply-fails and check-error are simulator fault files inside the device.
    lab.fault("edge-001", FaultKind::ApplyFails, None).unwrap();
    lab.fault("edge-001", FaultKind::CheckError, None).unwrap();
    let out = ok_stdout(&ssh(&lab, "edge-001", &format!("ls {faults}")));
    assert_eq!(out, "apply-fails\ncheck-error");
    assert!(lab
        .device_root("edge-001")
        .join("var/lib/edgefleet-lab/faults/apply-fails")
        .exists());
    let o = ssh(
        &lab,
        "edge-002",
        &format!("ls {faults} 2>/dev/null | wc -l"),
    );
    assert_eq!(ok_stdout(&o), "0", "faults are per device");

    // disk full: existing files stay readable, every write under /etc/aziot and /etc/docker fails with ENOSPC,
    // the rest of /etc still works.
    std::fs::write(
        lab.device_root("edge-001").join("etc/aziot/config.toml"),
        "old\n",
    )
    .unwrap();
    lab.fault("edge-001", FaultKind::DiskFull, None).unwrap();
    let o = ssh(
        &lab,
        "edge-001",
        "cat /etc/aziot/config.toml; \
         echo new | sudo tee /etc/aziot/config.toml.tmp >/dev/null; echo rc=$?; \
         echo '{}' | sudo tee /etc/docker/daemon.json >/dev/null; echo rc=$?; \
         echo ok | sudo tee /etc/edgefleet-test >/dev/null; echo rc=$?",
    );
    let out = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(out, "old\nrc=1\nrc=1\nrc=0\n", "{err}");
    assert_eq!(err.matches("No space left on device").count(), 2, "{err}");
    let status = lab.status().unwrap();
    assert!(
        status[0].faults.contains(&"disk-full".to_string()),
        "{:?}",
        status[0].faults
    );

    lab.fault("edge-001", FaultKind::None, None).unwrap();
    let out = ok_stdout(&ssh(
        &lab,
        "edge-001",
        &format!("echo new | sudo tee /etc/aziot/config.toml >/dev/null && cat /etc/aziot/config.toml; ls {faults} | wc -l"),
    ));
    assert_eq!(out, "new\n0");
    assert_eq!(
        std::fs::read_to_string(lab.device_root("edge-001").join("etc/aziot/config.toml")).unwrap(),
        "new\n"
    );
    assert!(lab.status().unwrap()[0].faults.is_empty());
    lab.down().unwrap();
}

#[test]
fn inventory_keys_and_pki_are_complete_and_keep_secrets_encrypted() {
    let tmp = tempfile::tempdir().unwrap();
    let lab = up(tmp.path(), 4, LabBackend::Embedded, LabUser::Admin);
    let inv_text = std::fs::read_to_string(lab.inventory_path()).unwrap();
    assert!(!inv_text.contains("SharedAccessKey"), "no secret in clear");
    let inv: serde_json::Value =
        edgefleet::yaml::parse_value(&inv_text, &lab.inventory_path()).unwrap();
    let site = &inv["all"]["children"]["site_a"]["hosts"];
    assert_eq!(site.as_object().unwrap().len(), 4);
    let h = &site["edge-002"];
    assert_eq!(h["ansible_host"], lab.devices()[1].address.to_string());
    assert_eq!(h["ansible_port"], 22);
    assert_eq!(h["ansible_user"], "admin");
    assert_eq!(h["ansible_become"], true);
    assert_eq!(h["iotedge_provisioning"], "dps");
    assert_eq!(site["edge-001"]["iotedge_provisioning"], "manual");
    assert_eq!(
        h["ansible_ssh_private_key_file"],
        lab.client_key_path().display().to_string()
    );
    assert!(h["ansible_ssh_common_args"]
        .as_str()
        .unwrap()
        .contains("StrictHostKeyChecking=yes"));
    let manual = inv["all"]["children"]["manual"]["hosts"]
        .as_object()
        .unwrap();
    let dps = inv["all"]["children"]["dps"]["hosts"].as_object().unwrap();
    assert_eq!((manual.len(), dps.len()), (2, 2));

    // known_hosts: one line per device, and it is what the devices present (checked by ssh above in other
    // tests); here: it names every address.
    let kh = std::fs::read_to_string(lab.known_hosts_path()).unwrap();
    for d in lab.devices() {
        assert!(kh
            .lines()
            .any(|l| l.starts_with(&format!("{} ssh-ed25519 ", d.address))));
    }

    // Secrets decrypt with the lab's age identity.
    let id_text = std::fs::read_to_string(lab.age_identity_path()).unwrap();
    let id: age::x25519::Identity = id_text
        .lines()
        .find(|l| l.starts_with("AGE-SECRET-KEY-"))
        .unwrap()
        .parse()
        .unwrap();
    let dir = lab.inventory_path().parent().unwrap().to_path_buf();
    let ct = std::fs::read(dir.join("host_vars/edge-001/secrets.yml.age")).unwrap();
    let pt = String::from_utf8(age::decrypt(&id, &ct).unwrap()).unwrap();
    assert!(
        pt.contains("HostName=lab-hub.azure-devices.net;DeviceId=edge-001;SharedAccessKey="),
        "{pt}"
    );

    // Edge CA: CA:TRUE pathlen 0, keyCertSign, signed by the lab root; key age-encrypted.
    let pem = std::fs::read(h["edge_ca_cert"].as_str().unwrap()).unwrap();
    let certs: Vec<_> = x509_parser::pem::Pem::iter_from_buffer(&pem)
        .map(|p| p.unwrap())
        .collect();
    assert_eq!(certs.len(), 2, "leaf + root");
    let edge = certs[0].parse_x509().unwrap();
    let root = certs[1].parse_x509().unwrap();
    assert_eq!(
        edge.subject()
            .iter_common_name()
            .next()
            .unwrap()
            .as_str()
            .unwrap(),
        "edgefleet lab Edge CA edge-002"
    );
    let bc = edge.basic_constraints().unwrap().unwrap().value;
    assert!(bc.ca);
    assert_eq!(bc.path_len_constraint, Some(0));
    let ku = edge.key_usage().unwrap().unwrap().value;
    assert!(ku.key_cert_sign() && ku.digital_signature());
    assert!(edge.verify_signature(Some(root.public_key())).is_ok());
    use x509_parser::extensions::ParsedExtension;
    let ski = edge.extensions().iter().any(|e| {
        matches!(
            e.parsed_extension(),
            ParsedExtension::SubjectKeyIdentifier(_)
        )
    });
    let aki = edge.extensions().iter().any(|e| {
        matches!(
            e.parsed_extension(),
            ParsedExtension::AuthorityKeyIdentifier(_)
        )
    });
    assert!(ski && aki, "SKI {ski} AKI {aki}");
    assert_eq!(
        edge.public_key().algorithm.algorithm.to_id_string(),
        "1.2.840.10045.2.1",
        "EC key"
    );
    let key_ct = std::fs::read(h["edge_ca_key"].as_str().unwrap()).unwrap();
    assert!(key_ct.starts_with(b"-----BEGIN AGE ENCRYPTED FILE-----"));
    let key = String::from_utf8(age::decrypt(&id, &key_ct).unwrap()).unwrap();
    assert!(key.contains("PRIVATE KEY"));
    // DPS identity certificate for a dps device.
    assert!(Path::new(h["edge_ca_identity_cert"].as_str().unwrap()).exists());
    lab.down().unwrap();
}

/// Live processes inside the lab's devices: in one of its mount namespaces *and* carrying its marker (a freed
/// namespace's inode number can be reused by another lab running in parallel).
fn ns_inodes_alive(inodes: &(HashSet<u64>, String)) -> Vec<i32> {
    edgefleet::lab::ns::lab_pids(&inodes.0, &inodes.1)
}

/// Runs `edgefleet lab down` for a lab started through the CLI when the test ends, even if it panicked.
struct DownOnDrop(Vec<String>);

impl Drop for DownOnDrop {
    fn drop(&mut self) {
        let _ = Command::new(&self.0[0]).args(&self.0[1..]).output();
    }
}

/// A live process (a zombie waiting for init to reap it is not running).
fn running(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => !s[s.rfind(')').unwrap() + 1..].trim_start().starts_with('Z'),
        Err(_) => false,
    }
}

fn procs_mentioning(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(c) = std::fs::read(e.path().join("cmdline")) {
            let c = String::from_utf8_lossy(&c).replace('\0', " ");
            if c.contains(s) {
                out.push(format!("{}: {c}", e.file_name().to_string_lossy()));
            }
        }
    }
    out
}

/// Every interface address on the host (getifaddrs), sorted.
fn ip_addrs() -> Vec<String> {
    let mut out = Vec::new();
    let mut ifap: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills a list we walk read-only and free once.
    unsafe {
        assert_eq!(libc::getifaddrs(&mut ifap), 0);
        let mut p = ifap;
        while !p.is_null() {
            let a = (*p).ifa_addr;
            let name = std::ffi::CStr::from_ptr((*p).ifa_name).to_string_lossy();
            if !a.is_null() && (*a).sa_family as i32 == libc::AF_INET {
                let sin = &*(a as *const libc::sockaddr_in);
                let ip = std::net::Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
                out.push(format!("{name} {ip}"));
            } else if !a.is_null() && (*a).sa_family as i32 == libc::AF_INET6 {
                let sin6 = &*(a as *const libc::sockaddr_in6);
                out.push(format!(
                    "{name} {}",
                    std::net::Ipv6Addr::from(sin6.sin6_addr.s6_addr)
                ));
            }
            p = (*p).ifa_next;
        }
        libc::freeifaddrs(ifap);
    }
    out.sort();
    out
}

#[test]
fn cli_up_status_fault_down_leaves_nothing_behind() {
    for backend in ["embedded", "openssh"] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("lab");
        let addrs_before = ip_addrs();
        let o = support::edgefleet()
            .args(["lab", "up", "--devices", "3", "--backend", backend, "--dir"])
            .arg(&dir)
            .output()
            .unwrap();
        let _guard = DownOnDrop(vec![
            support::bin().display().to_string(),
            "lab".into(),
            "down".into(),
            "--dir".into(),
            dir.display().to_string(),
        ]);
        assert!(o.status.success(), "{o:?}");
        assert!(String::from_utf8_lossy(&o.stdout).contains("lab up: 3 devices"));
        let lab = Lab::open(&dir).unwrap();
        let inodes: (HashSet<u64>, String) =
            (lab.namespace_inodes().into_iter().collect(), lab.marker());
        let sup = lab.supervisor_pid();
        assert_eq!(inodes.0.len(), 3);
        assert!(!ns_inodes_alive(&inodes).is_empty());

        // A session in flight when the lab goes down.
        let mut long = ssh_cmd(&lab, "edge-002")
            .arg("echo started; sleep 120")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut first = String::new();
        BufReader::new(long.stdout.as_mut().unwrap())
            .read_line(&mut first)
            .unwrap();
        assert_eq!(first, "started\n");

        let o = support::edgefleet()
            .args(["lab", "fault", "edge-003", "black-hole", "--dir"])
            .arg(&dir)
            .output()
            .unwrap();
        assert!(o.status.success(), "{o:?}");
        let o = support::edgefleet()
            .args(["lab", "status", "--dir"])
            .arg(&dir)
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(o.status.success(), "{o:?}");
        assert!(out.contains("3 devices, 2 up"), "{out}");
        assert!(
            out.lines().any(|l| l.starts_with("edge-003")
                && l.contains("down")
                && l.contains("black-hole")),
            "{out}"
        );
        let o = support::edgefleet()
            .args(["lab", "fault", "edge-404", "reboot", "--dir"])
            .arg(&dir)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(5));
        assert!(String::from_utf8_lossy(&o.stderr).contains("no device named \"edge-404\""));

        let o = support::edgefleet()
            .args(["lab", "down", "--dir"])
            .arg(&dir)
            .output()
            .unwrap();
        assert!(o.status.success(), "{o:?}");
        let _ = long.wait();

        assert!(
            ns_inodes_alive(&inodes).is_empty(),
            "processes left in device namespaces"
        );
        assert!(!running(sup), "supervisor still there");
        let left = procs_mentioning(&dir.display().to_string());
        assert!(left.is_empty(), "{left:?}");
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(
            !mounts.contains(&dir.display().to_string()),
            "host mounts left"
        );
        assert_eq!(ip_addrs(), addrs_before, "addresses changed");
        for d in lab.devices() {
            let e = TcpStream::connect_timeout(
                &SocketAddr::new(d.address.into(), 22),
                Duration::from_secs(2),
            )
            .unwrap_err();
            assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused, "{backend}");
        }
        assert!(Lab::open(&dir).is_err());
    }
}

#[test]
fn down_cleans_up_after_a_killed_supervisor() {
    let tmp = tempfile::tempdir().unwrap();
    let lab = up(tmp.path(), 2, LabBackend::Openssh, LabUser::Root);
    let inodes: (HashSet<u64>, String) =
        (lab.namespace_inodes().into_iter().collect(), lab.marker());
    let dir = lab.dir().to_path_buf();
    // A session whose processes outlive sshd's listener.
    let mut long = ssh_cmd(&lab, "edge-001")
        .arg("echo started; sleep 120")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(long.stdout.as_mut().unwrap())
        .read_line(&mut first)
        .unwrap();
    // SAFETY: SIGKILL to the supervisor we started.
    unsafe { libc::kill(lab.supervisor_pid(), libc::SIGKILL) };
    lab.detach();
    let o = support::edgefleet()
        .args(["lab", "down", "--dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    let _ = long.wait();
    assert!(ns_inodes_alive(&inodes).is_empty());
}

#[test]
fn ps_capture_records_each_devices_own_processes() {
    let tmp = tempfile::tempdir().unwrap();
    let lab = up(tmp.path(), 2, LabBackend::Embedded, LabUser::Root);
    // With /proc sampled only every 60 s, a process started after enabling is caught by its exec event.
    lab.ps_capture(true, Some(60_000)).unwrap();
    ok_stdout(&ssh(&lab, "edge-001", "sleep 0.41; true"));
    let one = lab.ps_log("edge-001").unwrap();
    assert!(one.contains("sleep 0.41"), "{one}");
    lab.ps_capture(true, Some(20)).unwrap();
    ok_stdout(&ssh(&lab, "edge-001", "sleep 2.31; true"));
    ok_stdout(&ssh(&lab, "edge-002", "sleep 2.32; true"));
    lab.ps_capture(false, None).unwrap();
    let one = lab.ps_log("edge-001").unwrap();
    let two = lab.ps_log("edge-002").unwrap();
    assert!(one.contains("sleep 2.31"), "{one}");
    assert!(!one.contains("sleep 2.32"), "{one}");
    assert!(two.contains("sleep 2.32"), "{two}");
    // The namespace holder is a device process too; lines are `<unix_ms> <pid> <args>`.
    let l = one.lines().find(|l| l.contains("sleep 2.31")).unwrap();
    let f: Vec<&str> = l.splitn(3, ' ').collect();
    assert!(
        f[0].parse::<u128>().is_ok() && f[1].parse::<i32>().is_ok(),
        "{l}"
    );
    lab.down().unwrap();
}

#[test]
fn bastion_mode_devices_are_reachable_only_through_the_jump_host() {
    for backend in [LabBackend::Embedded, LabBackend::Openssh] {
        let tmp = tempfile::tempdir().unwrap();
        let mut cfg = LabConfig::new(tmp.path().join("lab"), 2);
        cfg.backend = backend;
        cfg.bastion = true;
        cfg.exe = Some(support::bin());
        let lab = Lab::up(&cfg).unwrap();
        let bastion = lab.bastion().expect("bastion address");
        let inv = std::fs::read_to_string(lab.inventory_path()).unwrap();
        assert!(
            inv.contains(&format!("ansible_ssh_jump: \"root@{}\"", bastion.ip())),
            "{inv}"
        );
        for d in lab.devices() {
            // Nothing answers on the device address from the host...
            let e = TcpStream::connect_timeout(
                &SocketAddr::new(d.address.into(), 22),
                Duration::from_secs(2),
            )
            .unwrap_err();
            assert_eq!(
                e.kind(),
                std::io::ErrorKind::ConnectionRefused,
                "{backend:?}"
            );
            // ...but the device answers through the bastion, with strict host key checking on both hops.
            let o = Command::new("ssh")
                .arg("-F")
                .arg(lab.ssh_config_path())
                .arg("-J")
                .arg(format!("root@{}", bastion.ip()))
                .arg(d.address.to_string())
                .arg("hostname")
                .stdin(Stdio::null())
                .output()
                .unwrap();
            assert_eq!(ok_stdout(&o), d.name, "{backend:?}");
        }
        // Status probes from the devices' network.
        let st = lab.status().unwrap();
        assert!(st.iter().all(|s| s.up), "{st:?}");
        // Faults still work on the private network.
        lab.fault("edge-001", FaultKind::WrongHostKey, None)
            .unwrap();
        let o = Command::new("ssh")
            .arg("-F")
            .arg(lab.ssh_config_path())
            .arg("-J")
            .arg(format!("root@{}", bastion.ip()))
            .arg(lab.devices()[0].address.to_string())
            .arg("true")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(255));
        let inodes: (HashSet<u64>, String) =
            (lab.namespace_inodes().into_iter().collect(), lab.marker());
        let dir = lab.dir().display().to_string();
        assert!(
            !procs_mentioning(&format!("{dir}/bastion")).is_empty(),
            "bastion sshd runs"
        );
        lab.down().unwrap();
        assert!(ns_inodes_alive(&inodes).is_empty());
        let left = procs_mentioning(&dir);
        assert!(left.is_empty(), "{left:?}");
        let e = TcpStream::connect_timeout(&bastion, Duration::from_secs(2)).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused);
    }
}

#[test]
fn a_hundred_embedded_devices_come_up_and_answer() {
    let tmp = tempfile::tempdir().unwrap();
    let lab = up(tmp.path(), 100, LabBackend::Embedded, LabUser::Root);
    let st = lab.status().unwrap();
    assert_eq!(st.len(), 100);
    let down: Vec<&str> = st
        .iter()
        .filter(|s| !s.up)
        .map(|s| s.device.name.as_str())
        .collect();
    assert!(down.is_empty(), "{down:?}");
    let names: HashSet<String> = st.iter().map(|s| s.device.name.clone()).collect();
    assert_eq!(names.len(), 100);
    let addrs: HashSet<_> = st.iter().map(|s| s.device.address).collect();
    assert_eq!(addrs.len(), 100);
    assert_eq!(ok_stdout(&ssh(&lab, "edge-100", "hostname")), "edge-100");
    let inv = std::fs::read_to_string(lab.inventory_path()).unwrap();
    let inv: serde_json::Value = edgefleet::yaml::parse_value(&inv, &lab.inventory_path()).unwrap();
    let kids = inv["all"]["children"].as_object().unwrap();
    assert_eq!(kids["site_a"]["hosts"].as_object().unwrap().len(), 50);
    assert_eq!(kids["site_b"]["hosts"].as_object().unwrap().len(), 50);
    let inodes: (HashSet<u64>, String) =
        (lab.namespace_inodes().into_iter().collect(), lab.marker());
    lab.down().unwrap();
    assert!(ns_inodes_alive(&inodes).is_empty());
}

// An ordinary user's lab (user namespace, subordinate ids): tests/it/nonroot.rs.
