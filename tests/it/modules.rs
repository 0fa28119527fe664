//! Module fixture tests: every module's plan, table-driven on recorded device facts
//! (`tests/fixtures/modules/<module>/<case>.yaml`): unchanged, changed, check mode, bad arguments.
