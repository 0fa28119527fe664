//! The lab: a simulated fleet of IoT Edge devices on loopback, for tests, demos and benchmarks.
//!
//! Owns bringing devices up and down (namespaces, SSH servers, addresses), fault injection, and the simulated
//! device programs (`sim`). It must not be needed by the rest of edgefleet to talk to real devices.

pub mod sim;
