//! Blocks: `block`, `rescue`, `always`, with `ansible_failed_task` and `ansible_failed_result` (the failing
//! task's whole result) for the rescue and the host's error record restored when a rescue succeeds.

use serde_json::json;

use super::host::{Flow, HostRun};
use crate::playbook::Task;

impl HostRun {
    /// Run a block; its failure is rescued when there is a rescue section; `always` runs unless the host became
    /// unreachable or the run stopped.
    pub(super) async fn run_block(
        &mut self,
        t: &Task,
        block: &[Task],
        rescue: &[Task],
        always: &[Task],
    ) -> Flow {
        let first_error_before = self.hs.acc(|a| a.first_error.clone());
        let mut flow = self.run_list(block).await;
        if let Flow::Failed(msg) = &flow {
            if !rescue.is_empty() {
                let (name, result) = self
                    .last_failed
                    .lock()
                    .ok()
                    .and_then(|l| l.clone())
                    .unwrap_or_else(|| (t.display_name(), json!({ "msg": msg, "failed": true })));
                self.hs
                    .set_runtime("ansible_failed_task", json!({ "name": name }));
                // The failing task's whole result, as registered (rc, stdout, msg, ...).
                self.hs.set_runtime("ansible_failed_result", result);
                self.hs.acc(|a| {
                    a.rescued += 1;
                    a.failed = a.failed.saturating_sub(1);
                });
                flow = self.run_list(rescue).await;
                if flow == Flow::Continue {
                    // Rescued: the failure inside the block is not this host's error.
                    self.hs.acc(|a| a.first_error = first_error_before.clone());
                }
            }
        }
        if !always.is_empty() && !matches!(flow, Flow::Unreachable(_) | Flow::Stopped) {
            let f2 = self.run_list(always).await;
            if flow == Flow::Continue {
                flow = f2;
            }
        }
        flow
    }
}
