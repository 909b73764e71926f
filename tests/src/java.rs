//! Java peers for the suites: a program from `tests/java/` compiled with `javac` against the
//! Kafka jars (`scripts/kafka.sh libs`) and run to completion.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::{repo_root, unique_name};

/// Compiles `tests/java/<class>.java` and runs `class` with `args`; returns its standard
/// output once it exited successfully having printed `done`.
///
/// # Panics
/// When Java, `javac` or the jars are missing, the program fails, does not print `done`, or
/// runs longer than `within` (it is killed): the test fails, loudly.
pub fn run(class: &str, args: &[&str], within: Duration) -> String {
    let root = repo_root();
    let libs = Command::new("bash")
        .arg(root.join("scripts/kafka.sh"))
        .arg("libs")
        .output()
        .expect("cannot run scripts/kafka.sh libs");
    assert!(libs.status.success(), "scripts/kafka.sh libs failed");
    let libs = String::from_utf8_lossy(&libs.stdout).to_string();
    let classpath = format!("{}/*", libs.trim().lines().last().unwrap_or_default());
    let out = std::env::temp_dir().join(unique_name(&format!("kafkit-{class}")));
    std::fs::create_dir_all(&out).expect("a temporary directory");
    let javac = Command::new("javac")
        .args(["-cp", &classpath, "-d"])
        .arg(&out)
        .arg(root.join(format!("tests/java/{class}.java")))
        .output()
        .expect("javac is required for this test (install a JDK)");
    assert!(
        javac.status.success(),
        "javac failed: {}",
        String::from_utf8_lossy(&javac.stderr)
    );
    let mut child = Command::new("java")
        .arg(format!(
            "-Dlog4j2.configurationFile={}",
            root.join("scripts/kafka/log4j2.properties").display()
        ))
        .arg("-Dkafkit.log.level=WARN")
        .arg("-cp")
        .arg(format!("{classpath}:{}", out.display()))
        .arg(class)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("java is required for this test");
    let deadline = Instant::now() + within;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for java") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{class} did not finish within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let output = child.wait_with_output().expect("java output");
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(
        status.success() && stdout.contains("done"),
        "{class} failed ({status}): {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let _ = std::fs::remove_dir_all(&out);
    stdout
}
