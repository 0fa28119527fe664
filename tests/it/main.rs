//! The one integration-test binary: behaviour tests against the real CLI, lab devices and OpenSSH.

mod support;
mod vault;
