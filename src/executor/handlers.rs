//! Handlers: notified handlers run once each, in definition order, when flushed (after each section or at
//! `meta: flush_handlers`); a handler may notify later handlers. A handler written once runs once, however many
//! times its role was brought into the play.

use super::host::{Flow, HostRun};
use crate::playbook::Task;
use crate::report::Event;

impl HostRun {
    /// Run notified handlers, in definition order, once each; handlers may notify later handlers.
    pub(crate) async fn flush_handlers(&mut self) -> Flow {
        if self.notified.is_empty() {
            return Flow::Continue;
        }
        // A handler brought in more than once (a role imported or included twice) is one handler.
        let mut handlers: Vec<Task> = Vec::new();
        for h in self.rt.handlers.iter().chain(self.dyn_handlers.iter()) {
            if !handlers.iter().any(|x| x.loc == h.loc) {
                handlers.push(h.clone());
            }
        }
        let mut ran = vec![false; handlers.len()];
        loop {
            let mut progress = false;
            for (i, h) in handlers.iter().enumerate() {
                if ran[i] {
                    continue;
                }
                let hit = h.name.as_ref().is_some_and(|n| self.notified.contains(n))
                    || h.listen.iter().any(|l| self.notified.contains(l));
                if !hit {
                    continue;
                }
                ran[i] = true;
                progress = true;
                self.handler_mode = true;
                let f = self.run_task(h).await;
                self.report_warnings();
                self.handler_mode = false;
                if f != Flow::Continue {
                    self.notified.clear();
                    return f;
                }
            }
            if !progress {
                break;
            }
        }
        let unknown: Vec<String> = self
            .notified
            .iter()
            .filter(|n| {
                !handlers
                    .iter()
                    .any(|h| h.name.as_ref() == Some(n) || h.listen.contains(n))
            })
            .cloned()
            .collect();
        for n in unknown {
            self.ex.emit(Event::Warning {
                host: Some(self.hs.name.clone()),
                message: format!(
                    "a task notified `{n}`, but no handler has that name or listens to it"
                ),
            });
        }
        self.notified.clear();
        Flow::Continue
    }
}
