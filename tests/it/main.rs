//! The one integration-test binary: behaviour tests against the real CLI, lab devices and OpenSSH.

mod lab;
mod support;
