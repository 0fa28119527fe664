//! The shell quoting every remote command goes through: `quote(x)` run through the real `/bin/sh` (dash here,
//! as on Debian devices) gives `x` back, byte for byte, whatever `x` holds (quotes, `$(...)`, backticks,
//! newlines, leading dashes, non-ASCII); and our own word splitter reads a quoted word back as that word.

use std::process::Command;

use edgefleet::shell::{quote, split_words};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

/// Strings biased towards what a shell treats specially (NUL cannot be in an argument, so it is left out).
fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => "[^\\x00]{0,24}",
        3 => "[ '\"$`\\\\\n\t!*?\\[\\]{}()<>|&;#~=%@:,+./a-z0-9-]{0,24}",
        1 => "-[-a-z]{0,6}",
        1 => "\\$\\([a-z ;]{0,10}\\)",
    ]
}

/// Run `printf '%s\0' quote(w)...` in the real /bin/sh and split its output at the NULs.
fn through_sh(words: &[String]) -> Vec<String> {
    let script = format!(
        "printf '%s\\0' {}",
        words.iter().map(|w| quote(w)).collect::<Vec<_>>().join(" ")
    );
    let out = Command::new("/bin/sh")
        .arg("-c")
        .arg(&script)
        .output()
        .expect("/bin/sh runs");
    assert!(out.status.success(), "sh failed on {script:?}: {out:?}");
    out.stdout
        .split(|b| *b == 0)
        .map(|w| String::from_utf8_lossy(w).into_owned())
        .collect()
}

/// What [`through_sh`] gives for `words` when quoting is right: the words, then the empty rest after the last NUL.
fn with_terminators(words: &[String]) -> Vec<String> {
    words.iter().cloned().chain([String::new()]).collect()
}

#[test]
fn quote_round_trips_through_real_sh() {
    // Each case sends a batch of words through one `sh -c`, so the shell start-up is paid once per batch.
    let mut runner = TestRunner::new(Config {
        cases: (super::cases() / 4).max(16),
        failure_persistence: None,
        ..Config::default()
    });
    // The corpus words (regression cases among them) first, all in one batch.
    let corpus: Vec<String> = super::seeds("shell-quote")
        .into_iter()
        .map(|b| String::from_utf8(b).expect("shell-quote seeds are UTF-8"))
        .collect();
    assert_eq!(through_sh(&corpus), with_terminators(&corpus));
    let tried = std::cell::Cell::new(corpus.len());
    let result = runner.run(&proptest::collection::vec(word(), 1..24), |words| {
        prop_assert_eq!(through_sh(&words), with_terminators(&words));
        tried.set(tried.get() + words.len());
        Ok(())
    });
    if let Err(e) = result {
        panic!("shell::quote does not round-trip through /bin/sh: {e}");
    }
    eprintln!(
        "fuzz shell-quote-sh: {} words through /bin/sh, all came back unchanged",
        tried.get()
    );
}

#[test]
fn quote_round_trips_through_split_words() {
    let mut runner = TestRunner::new(Config {
        cases: super::cases() * 4,
        failure_persistence: None,
        ..Config::default()
    });
    for w in super::seeds("shell-quote") {
        let w = String::from_utf8(w).expect("shell-quote seeds are UTF-8");
        if !w.contains("{{") {
            assert_eq!(split_words(&quote(&w)), Ok(vec![w.clone()]));
        }
    }
    let result = runner.run(&word(), |w| {
        // Our splitter groups `{{ }}` as Jinja does; a word holding an unbalanced `{{` is not a shell word for it.
        prop_assume!(!w.contains("{{") && !w.contains("}}"));
        let words = split_words(&quote(&w));
        prop_assert_eq!(words, Ok(vec![w.clone()]));
        Ok(())
    });
    if let Err(e) = result {
        panic!("split_words(quote(x)) is not [x]: {e}");
    }
}

#[test]
fn split_words_never_panics() {
    super::fuzz_text("split_words", &["'", "\"", "\\", "{{", "}}", " "], |s| {
        let _ = split_words(s);
    });
}
