//! The differential suite: small real-world playbooks run with `ansible-playbook` and with edgefleet, compared
//! by exit code, which host ran what, every written file (bytes and mode) and the registered results they dump.
