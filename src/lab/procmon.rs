//! Process-exec events from the kernel (the netlink proc connector), for the lab's `ps` hook.
//!
//! Owns one thing: a blocking listener that reports the pid of every `execve` on the machine as it happens, so
//! the supervisor can read a new process's arguments within microseconds instead of hoping a periodic sample
//! catches it (secrets-in-argv checks need short-lived processes too). Needs CAP_NET_ADMIN (root). It must not
//! know about devices: the caller filters by namespace.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const NETLINK_CONNECTOR: libc::c_int = 11;
const CN_IDX_PROC: u32 = 1;
const CN_VAL_PROC: u32 = 1;
const PROC_CN_MCAST_LISTEN: u32 = 1;
const PROC_EVENT_EXEC: u32 = 2;
const NLMSG_HDRLEN: usize = 16;
const CN_MSG_LEN: usize = 20;

/// A subscription to exec events.
#[derive(Debug)]
pub struct ExecEvents {
    fd: OwnedFd,
}

impl ExecEvents {
    /// Open the proc connector and subscribe to process events.
    pub fn subscribe() -> io::Result<ExecEvents> {
        // SAFETY: socket(2) returns a fresh fd or -1.
        let raw = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
                NETLINK_CONNECTOR,
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: raw is a fresh fd we own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: zeroed sockaddr_nl is a valid value; bind/send get valid pointers and lengths.
        unsafe {
            let mut sa: libc::sockaddr_nl = std::mem::zeroed();
            sa.nl_family = libc::AF_NETLINK as libc::sa_family_t;
            sa.nl_groups = CN_IDX_PROC;
            if libc::bind(
                fd.as_raw_fd(),
                &sa as *const libc::sockaddr_nl as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            ) != 0
            {
                return Err(io::Error::last_os_error());
            }
            let mut msg = Vec::with_capacity(NLMSG_HDRLEN + CN_MSG_LEN + 4);
            let total = (NLMSG_HDRLEN + CN_MSG_LEN + 4) as u32;
            msg.extend_from_slice(&total.to_ne_bytes());
            msg.extend_from_slice(&(libc::NLMSG_DONE as u16).to_ne_bytes());
            msg.extend_from_slice(&0u16.to_ne_bytes());
            msg.extend_from_slice(&0u32.to_ne_bytes());
            msg.extend_from_slice(&(libc::getpid() as u32).to_ne_bytes());
            msg.extend_from_slice(&CN_IDX_PROC.to_ne_bytes());
            msg.extend_from_slice(&CN_VAL_PROC.to_ne_bytes());
            msg.extend_from_slice(&0u32.to_ne_bytes()); // seq
            msg.extend_from_slice(&0u32.to_ne_bytes()); // ack
            msg.extend_from_slice(&4u16.to_ne_bytes()); // len
            msg.extend_from_slice(&0u16.to_ne_bytes()); // flags
            msg.extend_from_slice(&PROC_CN_MCAST_LISTEN.to_ne_bytes());
            if libc::send(
                fd.as_raw_fd(),
                msg.as_ptr() as *const libc::c_void,
                msg.len(),
                0,
            ) < 0
            {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(ExecEvents { fd })
    }

    /// Give up waiting in [`ExecEvents::next_execs`] after `d` (an error of kind WouldBlock/TimedOut).
    pub fn set_read_timeout(&self, d: std::time::Duration) -> io::Result<()> {
        let tv = libc::timeval {
            tv_sec: d.as_secs() as libc::time_t,
            tv_usec: d.subsec_micros() as libc::suseconds_t,
        };
        // SAFETY: setsockopt with a pointer to a local timeval and its size.
        let r = unsafe {
            libc::setsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                &tv as *const libc::timeval as *const libc::c_void,
                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
            )
        };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Block until the next batch of events; returns the pids that exec'ed.
    pub fn next_execs(&self) -> io::Result<Vec<i32>> {
        let mut buf = [0u8; 8192];
        // SAFETY: recv into a local buffer of the given length.
        let n = unsafe {
            libc::recv(
                self.fd.as_raw_fd(),
                buf.as_mut_ptr() as *mut libc::c_void,
                buf.len(),
                0,
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(parse(&buf[..n as usize]))
    }
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at + 4)
        .map(|s| u32::from_ne_bytes([s[0], s[1], s[2], s[3]]))
}

/// Parse netlink messages carrying `proc_event`s; returns exec'ing pids (thread group ids).
fn parse(mut b: &[u8]) -> Vec<i32> {
    let mut out = Vec::new();
    while b.len() >= NLMSG_HDRLEN {
        let Some(len) = u32_at(b, 0).map(|l| l as usize) else {
            break;
        };
        if len < NLMSG_HDRLEN || len > b.len() {
            break;
        }
        let m = &b[..len];
        // nlmsghdr (16) + cn_msg (20) + proc_event { what u32, cpu u32, timestamp u64, exec { pid, tgid } }
        let ev = NLMSG_HDRLEN + CN_MSG_LEN;
        if u32_at(m, ev) == Some(PROC_EVENT_EXEC) {
            if let Some(tgid) = u32_at(m, ev + 20) {
                out.push(tgid as i32);
            }
        }
        let adv = (len + 3) & !3;
        if adv >= b.len() {
            break;
        }
        b = &b[adv..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_an_exec_event() {
        let mut m = vec![0u8; NLMSG_HDRLEN + CN_MSG_LEN + 24];
        let len = m.len() as u32;
        m[0..4].copy_from_slice(&len.to_ne_bytes());
        let ev = NLMSG_HDRLEN + CN_MSG_LEN;
        m[ev..ev + 4].copy_from_slice(&PROC_EVENT_EXEC.to_ne_bytes());
        m[ev + 16..ev + 20].copy_from_slice(&4242u32.to_ne_bytes());
        m[ev + 20..ev + 24].copy_from_slice(&4242u32.to_ne_bytes());
        let mut two = m.clone();
        two.extend_from_slice(&m);
        assert_eq!(parse(&two), vec![4242, 4242]);
        let mut fork = m.clone();
        fork[ev..ev + 4].copy_from_slice(&1u32.to_ne_bytes());
        assert!(parse(&fork).is_empty());
    }

    #[test]
    fn sees_a_real_exec() {
        let ev = ExecEvents::subscribe().expect("proc connector (needs root)");
        ev.set_read_timeout(std::time::Duration::from_secs(10))
            .unwrap();
        let child = std::process::Command::new("/bin/true").spawn().unwrap();
        let pid = child.id() as i32;
        let mut child = child;
        child.wait().unwrap();
        // Other processes on the machine exec too: read until ours shows up (bounded).
        for _ in 0..10_000 {
            if ev.next_execs().unwrap().contains(&pid) {
                return;
            }
        }
        panic!("no exec event for pid {pid}");
    }
}
