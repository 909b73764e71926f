//! Java peers for the suites: a program from `tests/java/` compiled with `javac` against the
//! Kafka jars (`scripts/kafka.sh libs`) and run to completion.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::{repo_root, unique_name};

/// A Java peer started by [`start`]: the process (its pipes are the caller's to read) and the
/// directory of its compiled classes, removed when this is dropped (the process is killed then
/// if it still runs).
pub struct JavaProcess {
    /// The running `java` process.
    pub child: Child,
    class: String,
    classes: PathBuf,
}

impl JavaProcess {
    /// Waits for the process to exit and returns its status.
    ///
    /// # Panics
    /// When it runs longer than `within` (it is killed first).
    pub fn wait(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for java") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("{} did not finish within {within:?}", self.class);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for JavaProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = std::fs::remove_dir_all(&self.classes);
    }
}

/// Compiles `tests/java/<class>.java` against the Kafka jars and starts `class` with `args`,
/// its standard output and error piped (and its standard input, when `stdin`).
///
/// # Panics
/// When Java, `javac` or the jars are missing, or the compilation fails.
pub fn start(class: &str, args: &[&str], stdin: bool) -> JavaProcess {
    let root = repo_root();
    let libs = Command::new("bash")
        .arg(root.join("scripts/kafka.sh"))
        .arg("libs")
        .output()
        .expect("cannot run scripts/kafka.sh libs");
    assert!(libs.status.success(), "scripts/kafka.sh libs failed");
    let libs = String::from_utf8_lossy(&libs.stdout).to_string();
    let classpath = format!("{}/*", libs.trim().lines().last().unwrap_or_default());
    let classes = std::env::temp_dir().join(unique_name(&format!("kafkit-{class}")));
    std::fs::create_dir_all(&classes).expect("a temporary directory");
    let javac = Command::new("javac")
        .args(["-cp", &classpath, "-d"])
        .arg(&classes)
        .arg(root.join(format!("tests/java/{class}.java")))
        .output()
        .expect("javac is required for this test (install a JDK)");
    assert!(
        javac.status.success(),
        "javac failed: {}",
        String::from_utf8_lossy(&javac.stderr)
    );
    let child = Command::new("java")
        .arg(format!(
            "-Dlog4j2.configurationFile={}",
            root.join("scripts/kafka/log4j2.properties").display()
        ))
        .arg("-Dkafkit.log.level=WARN")
        .arg("-cp")
        .arg(format!("{classpath}:{}", classes.display()))
        .arg(class)
        .args(args)
        .stdin(if stdin { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("java is required for this test");
    JavaProcess {
        child,
        class: class.to_owned(),
        classes,
    }
}

/// Compiles `tests/java/<class>.java` and runs `class` with `args`; returns its standard
/// output once it exited successfully having printed `done`.
///
/// # Panics
/// When Java, `javac` or the jars are missing, the program fails, does not print `done`, or
/// runs longer than `within` (it is killed): the test fails, loudly.
pub fn run(class: &str, args: &[&str], within: Duration) -> String {
    let mut java = start(class, args, false);
    let status = java.wait(within);
    let (mut stdout, mut stderr) = (String::new(), String::new());
    if let Some(mut out) = java.child.stdout.take() {
        let _ = out.read_to_string(&mut stdout);
    }
    if let Some(mut err) = java.child.stderr.take() {
        let _ = err.read_to_string(&mut stderr);
    }
    assert!(
        status.success() && stdout.contains("done"),
        "{class} failed ({status}): {stdout}\n{stderr}"
    );
    stdout
}
