//! A real schema registry for the suites (Apicurio Registry in ccompat mode), found or started.
//!
//! [`registry`] uses `SCHEMA_REGISTRY_URL` when set (as `scripts/test.sh` does after starting
//! one registry for the whole run); otherwise the first call in a process starts one with
//! `scripts/registry.sh start --watch-pid <this process>`, so it stops when the process exits.
//! Suites stay parallel-safe by naming their subjects with [`crate::unique_name`] and setting
//! compatibility per subject, never globally.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use crate::repo_root;

/// A running registry the suites can reach.
#[derive(Debug, Clone)]
pub struct Registry {
    /// The base URL of its Confluent-compatible API, e.g.
    /// `http://127.0.0.1:PORT/apis/ccompat/v7`.
    pub url: String,
    /// The state directory of a registry this process started (`None` when one was given).
    pub state_dir: Option<PathBuf>,
}

/// The shared registry for this test process: from `SCHEMA_REGISTRY_URL`, or started once.
///
/// # Panics
/// When none is configured and none can be started: a test that needs one cannot go on.
pub fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| match std::env::var("SCHEMA_REGISTRY_URL") {
        Ok(url) if !url.trim().is_empty() => Registry {
            url: url.trim().to_owned(),
            state_dir: None,
        },
        _ => start_registry(),
    })
}

/// Starts a registry owned by this process (stopped by a watchdog when the process exits).
///
/// # Panics
/// When it does not start; the script prints the log tail to stderr.
pub fn start_registry() -> Registry {
    let script = repo_root().join("scripts/registry.sh");
    let output = Command::new("bash")
        .arg(&script)
        .arg("start")
        .arg("--watch-pid")
        .arg(std::process::id().to_string())
        .stderr(std::process::Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    assert!(
        output.status.success(),
        "{} start failed: {}",
        script.display(),
        output.status
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let mut url = None;
    let mut state_dir = None;
    for line in stdout.lines() {
        if let Some(v) = line.strip_prefix("SCHEMA_REGISTRY_URL=") {
            url = Some(v.trim().to_owned());
        }
        if let Some(v) = line.strip_prefix("REGISTRY_STATE_DIR=") {
            state_dir = Some(PathBuf::from(v.trim()));
        }
    }
    Registry {
        url: url.unwrap_or_else(|| panic!("no SCHEMA_REGISTRY_URL line in: {stdout}")),
        state_dir,
    }
}

impl Registry {
    /// Stops a registry this process started; does nothing for one that was given.
    pub fn stop(&self) {
        if let Some(dir) = &self.state_dir {
            let _ = Command::new("bash")
                .arg(repo_root().join("scripts/registry.sh"))
                .arg("stop")
                .arg(dir)
                .status();
        }
    }
}
