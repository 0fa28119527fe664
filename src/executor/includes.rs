//! Dynamic includes: `include_tasks` (loaded per host when reached, looped, with vars) and `include_role`
//! (with `tasks_from`, its defaults below and vars above what is defined, its handlers added to the play).

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::Value;

use super::host::{Flow, HostRun};
use crate::playbook::Task;
use crate::vars::Vars;

impl HostRun {
    pub(super) async fn run_include(
        &mut self,
        t: &Task,
        file: &str,
        base: &std::path::Path,
    ) -> Flow {
        let cx = self.task_context(t);
        match self.when_holds(t, &cx) {
            Ok(true) => {}
            Ok(false) => return Flow::Continue,
            Err(e) => return self.fail_task(t, &e, None),
        }
        let items: Vec<Option<Value>> = match &t.loop_ {
            None => vec![None],
            Some(l) => match cx.render_value(l, "loop") {
                Ok(Value::Array(a)) => a.into_iter().map(Some).collect(),
                Ok(_) => return self.fail_task(t, "loop: expected a list", None),
                Err(e) => return self.fail_task(t, &e.message, None),
            },
        };
        let loop_var = t
            .loop_control
            .loop_var
            .clone()
            .unwrap_or_else(|| "item".into());
        for item in items {
            let mut layer = t.vars.clone();
            if let Some(i) = &item {
                layer.insert(loop_var.clone(), i.clone());
            }
            let icx = cx.with_layer(Arc::new(layer.clone()));
            let name = match icx.render_str(file, "include_tasks") {
                Ok(n) => n,
                Err(e) => return self.fail_task(t, &e.message, None),
            };
            let path = {
                let p = PathBuf::from(&name);
                if p.is_absolute() {
                    p
                } else {
                    base.join(p)
                }
            };
            let tasks = {
                let registry = self.ex.registry.clone();
                let mut lctx = crate::playbook::LoadCtx::new(registry.as_ref(), &self.ex.templar);
                let ts = crate::playbook::load_task_file(&path, t.role.clone(), &mut lctx);
                if !lctx.diags.is_empty() {
                    return self.fail_task(t, &lctx.diags.to_string(), None);
                }
                ts.unwrap_or_default()
            };
            self.scope.push(Arc::new(layer));
            let f = self.run_list(&tasks).await;
            self.scope.pop();
            if f != Flow::Continue {
                return f;
            }
        }
        Flow::Continue
    }

    pub(super) async fn run_include_role(
        &mut self,
        t: &Task,
        name: &str,
        search: &[PathBuf],
        tasks_from: Option<&str>,
    ) -> Flow {
        let cx = self.task_context(t);
        match self.when_holds(t, &cx) {
            Ok(true) => {}
            Ok(false) => return Flow::Continue,
            Err(e) => return self.fail_task(t, &e, None),
        }
        let name = match cx.render_str(name, "include_role") {
            Ok(n) => n,
            Err(e) => return self.fail_task(t, &e.message, None),
        };
        let registry = self.ex.registry.clone();
        let mut lctx = crate::playbook::LoadCtx::new(registry.as_ref(), &self.ex.templar);
        let file = Arc::new(t.loc.file.as_ref().clone());
        let at = crate::yaml::Node::synthetic(crate::yaml::NodeValue::Null);
        let role = crate::playbook::load_role(&name, search, &mut lctx, &file, &at);
        let Some(role) = role else {
            return self.fail_task(t, &lctx.diags.to_string(), None);
        };
        let tasks = match tasks_from {
            Some(tf) => {
                let rc = Arc::new(crate::playbook::RoleCtx {
                    name: role.name.clone(),
                    dir: role.dir.clone(),
                    params: t.vars.clone(),
                });
                crate::playbook::load_task_file(
                    &crate::playbook::role::task_file(&role.dir, tf),
                    Some(rc),
                    &mut lctx,
                )
                .unwrap_or_default()
            }
            None => crate::playbook::role_tasks_for(&crate::playbook::RoleUse {
                role: role.clone(),
                params: t.vars.clone(),
                when: vec![],
                tags: vec![],
            }),
        };
        if !lctx.diags.is_empty() {
            return self.fail_task(t, &lctx.diags.to_string(), None);
        }
        self.dyn_handlers.extend(role.handlers.iter().cloned());
        // The role's defaults sit below what is already defined; its vars above.
        let mut defaults = Vars::new();
        for (k, v) in &role.defaults {
            if !cx.contains(k) {
                defaults.insert(k.clone(), v.clone());
            }
        }
        self.scope.push(Arc::new(defaults));
        self.scope.push(Arc::new(role.vars.clone()));
        let f = self.run_list(&tasks).await;
        self.scope.pop();
        self.scope.pop();
        f
    }
}
