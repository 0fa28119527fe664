//! Dynamic includes: `include_tasks` (loaded per host when reached, looped, with vars, its `apply:` keywords
//! given to every included task; like any task, it runs only when `--tags`/`--skip-tags` allow) and `include_role`
//! (looped, with `tasks_from`, its defaults below and vars above what is defined, its handlers added to the
//! play once; `public: true` leaves its defaults and vars visible to the rest of the play).

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
        apply: Option<&Task>,
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
        for (n, item) in items.into_iter().enumerate() {
            let mut layer = t.vars.clone();
            if let Some(i) = &item {
                layer.insert(loop_var.clone(), i.clone());
                if let Some(iv) = &t.loop_control.index_var {
                    layer.insert(iv.clone(), Value::from(n));
                }
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
                let mut ts = ts.unwrap_or_default();
                if let Some(a) = apply {
                    crate::playbook::apply_to(&mut ts, a);
                }
                ts
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
        public: bool,
    ) -> Flow {
        let cx = self.task_context(t);
        let items: Vec<Option<Value>> = match &t.loop_ {
            None => vec![None],
            Some(l) => match cx.render_value(l, "loop") {
                Ok(Value::Array(a)) => a.into_iter().map(Some).collect(),
                Ok(Value::Null) => vec![],
                Ok(_) => return self.fail_task(t, "loop: expected a list", None),
                Err(e) => return self.fail_task(t, &e.message, None),
            },
        };
        let loop_var = t
            .loop_control
            .loop_var
            .clone()
            .unwrap_or_else(|| "item".into());
        for (n, item) in items.into_iter().enumerate() {
            // The loop variable is seen by the include's `when` and name and by every task of the role.
            let mut layer = Vars::new();
            if let Some(i) = &item {
                layer.insert(loop_var.clone(), i.clone());
                if let Some(iv) = &t.loop_control.index_var {
                    layer.insert(iv.clone(), Value::from(n));
                }
            }
            let layer = Arc::new(layer);
            let icx = cx.with_layer(layer.clone());
            match self.when_holds(t, &icx) {
                Ok(true) => {}
                Ok(false) => continue,
                Err(e) => return self.fail_task(t, &e, None),
            }
            self.scope.push(layer);
            let f = self
                .include_role_once(t, name, search, tasks_from, public, &icx)
                .await;
            self.scope.pop();
            if f != Flow::Continue {
                return f;
            }
        }
        Flow::Continue
    }

    async fn include_role_once(
        &mut self,
        t: &Task,
        name: &str,
        search: &[PathBuf],
        tasks_from: Option<&str>,
        public: bool,
        cx: &crate::template::context::Context,
    ) -> Flow {
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
        // Its handlers join the play once, however often it is included.
        for h in &role.handlers {
            if !self.dyn_handlers.iter().any(|x| x.loc == h.loc) {
                self.dyn_handlers.push(h.clone());
            }
        }
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
        if public {
            self.make_public(&role.defaults, &role.vars);
        }
        f
    }

    /// `public: true`: the role's defaults join the play's role defaults and its vars the play's role vars,
    /// for this host's remaining tasks.
    fn make_public(&mut self, defaults: &Vars, vars: &Vars) {
        if let Some(d) = self.base.first_mut() {
            let mut merged = (**d).clone();
            merged.extend(defaults.iter().map(|(k, v)| (k.clone(), v.clone())));
            *d = Arc::new(merged);
        }
        if !vars.is_empty() {
            self.base.push(Arc::new(vars.clone()));
        }
    }
}
