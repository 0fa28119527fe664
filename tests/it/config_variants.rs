//! The IoT Edge 1.5 super config, variant by variant: for each file of the truth table
//! (`tests/fixtures/iotedge/config-variants.json`, every provisioning method x every Edge CA shape x mutations,
//! each with the verdict and message a 1.5 device gives), the lab's `iotedge config apply` and edgefleet's own
//! validator must reach the device's verdict, and the lab must print the device's message.
