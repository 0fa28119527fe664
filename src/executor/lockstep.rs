//! Lockstep: the hosts of a serial batch start each task together, as Ansible's linear strategy runs them, for
//! the plays whose semantics need it: with `any_errors_fatal` or `max_fail_percentage`, once a failure
//! triggers them, the task under way finishes on every host of the batch and no host starts the next one; a
//! play that reads `hostvars` sees every host's `set_fact` and registered results of the earlier tasks, and one
//! that reads `ansible_play_hosts` sees every failure of the earlier tasks.
//!
//! Owns only the barrier: how many hosts are in it, who has arrived, and the release. A host arrives before
//! each task ([`Lockstep::step`]); it leaves for good when its play ends ([`Member`] is dropped, panics and
//! deadlines included), and for a while when it waits on something that another host only produces after the
//! next step (a `run_once` result: [`Lockstep::away`]). What to do after a release (stop, go on) is the task
//! loop's decision, never this file's. Other plays run hosts independently and never touch it.

use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

/// A barrier with changing membership.
pub(crate) struct Lockstep {
    state: Mutex<State>,
    released: Notify,
}

struct State {
    /// Hosts that take part in the next release.
    members: usize,
    /// Hosts waiting for it.
    arrived: usize,
    /// Counts releases (a waiting host leaves when it changes).
    generation: u64,
}

impl Lockstep {
    /// A barrier for `members` hosts (each gets a [`Member`] from [`Lockstep::member`]).
    pub(crate) fn new(members: usize) -> Arc<Self> {
        Arc::new(Lockstep {
            state: Mutex::new(State {
                members,
                arrived: 0,
                generation: 0,
            }),
            released: Notify::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        match self.state.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// One host's membership: dropping it leaves the barrier.
    pub(crate) fn member(self: &Arc<Self>) -> Member {
        Member(self.clone())
    }

    fn release_if_complete(&self, st: &mut State) {
        if st.arrived > 0 && st.arrived >= st.members {
            st.arrived = 0;
            st.generation += 1;
            self.released.notify_waiters();
        }
    }

    /// Wait until every member has arrived (or left).
    pub(crate) async fn step(&self) {
        let generation = {
            let mut st = self.lock();
            st.arrived += 1;
            let g = st.generation;
            self.release_if_complete(&mut st);
            if st.generation != g {
                return;
            }
            g
        };
        loop {
            let released = self.released.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            if self.lock().generation != generation {
                return;
            }
            released.await;
        }
    }

    fn leave(&self) {
        let mut st = self.lock();
        st.members = st.members.saturating_sub(1);
        self.release_if_complete(&mut st);
    }

    fn rejoin(&self) {
        self.lock().members += 1;
    }

    /// Run `f` away from the barrier: the others do not wait for this host meanwhile.
    pub(crate) async fn away<T>(&self, f: impl std::future::Future<Output = T>) -> T {
        self.leave();
        let out = f.await;
        self.rejoin();
        out
    }
}

/// A host's place in a [`Lockstep`]; leaves it when dropped.
pub(crate) struct Member(Arc<Lockstep>);

impl Drop for Member {
    fn drop(&mut self) {
        self.0.leave();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn nobody_starts_the_next_step_before_everyone_finished_this_one() {
        let ls = Lockstep::new(3);
        let done = Arc::new(AtomicUsize::new(0));
        let mut set = tokio::task::JoinSet::new();
        for i in 0..3usize {
            let ls = ls.clone();
            let done = done.clone();
            set.spawn(async move {
                let _m = ls.member();
                for step in 0..4usize {
                    ls.step().await;
                    // Everyone finished the previous step before anyone starts this one.
                    assert!(
                        done.load(Ordering::SeqCst) >= step * 3,
                        "host {i} step {step}"
                    );
                    tokio::task::yield_now().await;
                    done.fetch_add(1, Ordering::SeqCst);
                }
            });
        }
        while let Some(r) = set.join_next().await {
            r.unwrap();
        }
        assert_eq!(done.load(Ordering::SeqCst), 12);
    }

    #[tokio::test]
    async fn a_host_that_leaves_or_is_away_does_not_hold_the_others() {
        let ls = Lockstep::new(2);
        let gone = ls.member();
        let stays = ls.member();
        drop(gone);
        // Alone now: steps go through.
        ls.step().await;
        ls.step().await;
        // Away: the barrier does not count it.
        let out = ls.away(async { 7 }).await;
        assert_eq!(out, 7);
        ls.step().await;
        drop(stays);
    }
}
