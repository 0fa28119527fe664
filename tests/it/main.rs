//! The one integration-test binary: behaviour tests against the real CLI, lab devices and OpenSSH.

mod playbook;
mod sim;
mod ssh;
mod support;
mod template;
