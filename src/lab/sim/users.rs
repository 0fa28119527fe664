//! The device's accounts (`/etc/passwd`, `/etc/group`) and Unix permission evaluation.
//!
//! Owns "can user X read this path?" exactly as the kernel decides it from mode bits, owner and groups,
//! including search permission on every parent directory. It reads the device's own account files (never the
//! host's) so the answer matches what `aziotcs`/`aziotks` would get on the device. It must not change any file.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::state::Env;

/// One `/etc/passwd` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Login name.
    pub name: String,
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Home directory.
    pub home: String,
}

/// One `/etc/group` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// Group name.
    pub name: String,
    /// Group id.
    pub gid: u32,
    /// Supplementary members.
    pub members: Vec<String>,
}

/// The device's account database.
#[derive(Debug, Clone, Default)]
pub struct Accounts {
    /// Users in file order.
    pub users: Vec<User>,
    /// Groups in file order.
    pub groups: Vec<Group>,
}

impl Accounts {
    /// Load the device's `/etc/passwd` and `/etc/group` (missing files give an empty database).
    pub fn load(env: &Env) -> Accounts {
        let passwd = fs::read_to_string(env.path("/etc/passwd")).unwrap_or_default();
        let group = fs::read_to_string(env.path("/etc/group")).unwrap_or_default();
        Accounts::parse(&passwd, &group)
    }

    /// Parse account files.
    pub fn parse(passwd: &str, group: &str) -> Accounts {
        let users = passwd
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .filter_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                if f.len() < 4 {
                    return None;
                }
                Some(User {
                    name: f[0].to_string(),
                    uid: f[2].parse().ok()?,
                    gid: f[3].parse().ok()?,
                    home: f.get(5).copied().unwrap_or("/").to_string(),
                })
            })
            .collect();
        let groups = group
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .filter_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                if f.len() < 3 {
                    return None;
                }
                Some(Group {
                    name: f[0].to_string(),
                    gid: f[2].parse().ok()?,
                    members: f
                        .get(3)
                        .map(|m| {
                            m.split(',')
                                .filter(|s| !s.is_empty())
                                .map(str::to_string)
                                .collect()
                        })
                        .unwrap_or_default(),
                })
            })
            .collect();
        Accounts { users, groups }
    }

    /// Look a user up by name.
    pub fn user(&self, name: &str) -> Option<&User> {
        self.users.iter().find(|u| u.name == name)
    }

    /// Look a user up by uid.
    pub fn by_uid(&self, uid: u32) -> Option<&User> {
        self.users.iter().find(|u| u.uid == uid)
    }

    /// All group ids of a user: the primary group plus every group listing it as a member.
    pub fn gids_of(&self, user: &User) -> Vec<u32> {
        let mut v = vec![user.gid];
        for g in &self.groups {
            if g.members.iter().any(|m| m == &user.name) && !v.contains(&g.gid) {
                v.push(g.gid);
            }
        }
        v
    }

    /// A credential (uid + groups) for a uid, as the kernel would see that user.
    pub fn cred_for_uid(&self, uid: u32) -> Cred {
        match self.by_uid(uid) {
            Some(u) => Cred {
                uid,
                gids: self.gids_of(u),
            },
            None => Cred {
                uid,
                gids: Vec::new(),
            },
        }
    }

    /// Whether the user `name` is a member (primary or supplementary) of group `group`.
    pub fn in_group(&self, name: &str, group: &str) -> bool {
        let Some(g) = self.groups.iter().find(|g| g.name == group) else {
            return false;
        };
        if g.members.iter().any(|m| m == name) {
            return true;
        }
        self.user(name).map(|u| u.gid == g.gid).unwrap_or(false)
    }
}

/// A process credential for permission checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cred {
    /// User id.
    pub uid: u32,
    /// Group ids.
    pub gids: Vec<u32>,
}

/// Why a path is not accessible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    /// The path (or a parent) does not exist.
    Missing(String),
    /// A parent directory lacks search (x) permission for the user.
    NoSearch(String),
    /// The file itself lacks read permission for the user.
    NoRead(String),
}

impl std::fmt::Display for Denied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Denied::Missing(p) => write!(f, "{p}: No such file or directory (os error 2)"),
            Denied::NoSearch(p) => write!(
                f,
                "directory {p} is not searchable (missing x permission): Permission denied (os error 13)"
            ),
            Denied::NoRead(p) => write!(f, "{p}: Permission denied (os error 13)"),
        }
    }
}

/// The permission bits (rwx, 0..=7) that apply to `cred` for a file with this metadata.
fn class_bits(meta: &fs::Metadata, cred: &Cred) -> u32 {
    let mode = meta.mode();
    if meta.uid() == cred.uid {
        (mode >> 6) & 7
    } else if cred.gids.contains(&meta.gid()) {
        (mode >> 3) & 7
    } else {
        mode & 7
    }
}

/// Can `cred` read the device file `device_path` (search on every parent directory, read on the file)?
///
/// Root (uid 0) may read anything that exists. When the environment is confined under a test root, the root
/// directory itself stands for `/` and is not checked (its host permissions are the test's, not the device's).
pub fn check_readable(env: &Env, device_path: &str, cred: &Cred) -> Result<(), Denied> {
    let target = env.path(device_path);
    let meta = match fs::metadata(&target) {
        Ok(m) => m,
        Err(_) => return Err(Denied::Missing(device_path.to_string())),
    };
    if cred.uid == 0 {
        return Ok(());
    }
    // Parents, from the top down.
    let mut prefix = String::new();
    let comps: Vec<&str> = device_path.split('/').filter(|c| !c.is_empty()).collect();
    let start_at_root = !env.confined;
    if start_at_root {
        if let Ok(m) = fs::metadata(Path::new("/")) {
            if class_bits(&m, cred) & 1 == 0 {
                return Err(Denied::NoSearch("/".into()));
            }
        }
    }
    for c in comps.iter().take(comps.len().saturating_sub(1)) {
        prefix.push('/');
        prefix.push_str(c);
        let m = fs::metadata(env.path(&prefix)).map_err(|_| Denied::Missing(prefix.clone()))?;
        if class_bits(&m, cred) & 1 == 0 {
            return Err(Denied::NoSearch(prefix.clone()));
        }
    }
    if class_bits(&meta, cred) & 4 == 0 {
        return Err(Denied::NoRead(device_path.to_string()));
    }
    Ok(())
}

/// The default account files for a lab device (Debian base accounts plus the IoT Edge service users).
pub const DEFAULT_PASSWD: &str = "root:x:0:0:root:/root:/bin/bash
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
bin:x:2:2:bin:/bin:/usr/sbin/nologin
sys:x:3:3:sys:/dev:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
sshd:x:100:65534::/run/sshd:/usr/sbin/nologin
admin:x:1000:1000:admin,,,:/home/admin:/bin/bash
aziotks:x:990:990::/var/lib/aziot/keyd:/usr/sbin/nologin
aziotcs:x:991:991::/var/lib/aziot/certd:/usr/sbin/nologin
aziotid:x:992:992::/var/lib/aziot/identityd:/usr/sbin/nologin
aziottpm:x:993:993::/var/lib/aziot/tpmd:/usr/sbin/nologin
iotedge:x:994:994::/var/lib/aziot/edged:/usr/sbin/nologin
";

/// See [`DEFAULT_PASSWD`]. The service users are cross-members as the aziot packages set them up.
pub const DEFAULT_GROUP: &str = "root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
adm:x:4:admin
sudo:x:27:admin
nogroup:x:65534:
admin:x:1000:
aziotks:x:990:aziotcs,aziotid,iotedge
aziotcs:x:991:aziotid,iotedge
aziotid:x:992:iotedge
aziottpm:x:993:aziotid
iotedge:x:994:
docker:x:995:iotedge
";

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn parses_accounts_and_groups() {
        let a = Accounts::parse(DEFAULT_PASSWD, DEFAULT_GROUP);
        let cs = a.user("aziotcs").unwrap();
        assert_eq!(cs.uid, 991);
        let gids = a.gids_of(cs);
        assert!(gids.contains(&991) && gids.contains(&990));
        assert!(a.in_group("iotedge", "docker"));
        assert!(!a.in_group("admin", "docker"));
    }

    #[test]
    fn readability_follows_mode_bits_and_parents() {
        let dir = tempfile::tempdir().unwrap();
        let env = Env::for_root(dir.path());
        let certs = dir.path().join("var/aziot/certs");
        fs::create_dir_all(&certs).unwrap();
        let f = certs.join("ca.pem");
        fs::write(&f, "x").unwrap();
        fs::set_permissions(&f, fs::Permissions::from_mode(0o644)).unwrap();
        fs::set_permissions(&certs, fs::Permissions::from_mode(0o755)).unwrap();
        let other = Cred {
            uid: 4242,
            gids: vec![4242],
        };
        assert_eq!(
            check_readable(&env, "/var/aziot/certs/ca.pem", &other),
            Ok(())
        );
        fs::set_permissions(&certs, fs::Permissions::from_mode(0o700)).unwrap();
        assert_eq!(
            check_readable(&env, "/var/aziot/certs/ca.pem", &other),
            Err(Denied::NoSearch("/var/aziot/certs".into()))
        );
        fs::set_permissions(&certs, fs::Permissions::from_mode(0o755)).unwrap();
        fs::set_permissions(&f, fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(
            check_readable(&env, "/var/aziot/certs/ca.pem", &other),
            Err(Denied::NoRead("/var/aziot/certs/ca.pem".into()))
        );
        let root = Cred {
            uid: 0,
            gids: vec![0],
        };
        assert_eq!(
            check_readable(&env, "/var/aziot/certs/ca.pem", &root),
            Ok(())
        );
        assert!(matches!(
            check_readable(&env, "/var/aziot/certs/nope.pem", &root),
            Err(Denied::Missing(_))
        ));
    }
}
