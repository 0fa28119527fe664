//! The one integration-test binary: behaviour tests against the real CLI, lab devices and OpenSSH.

mod bundle;
mod canary;
mod certs;
mod compat;
mod config_variants;
mod differential;
mod docs;
mod executor;
mod fleet;
mod inventory;
mod iotedge_preflight;
mod journal;
mod lab;
mod modules;
mod nonroot;
mod playbook;
mod report;
mod sim;
mod ssh;
mod support;
mod template;
mod tools;
mod vault;
mod xfer;
