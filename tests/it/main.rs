//! The one integration-test binary: behaviour tests against the real CLI, lab devices and OpenSSH.

mod playbook;
mod report;
mod support;
mod template;
