use super::*;

#[test]
fn zero_limits_are_refused() {
    let settings = ProcessingSettings {
        commit_every_n: 0,
        ..ProcessingSettings::default()
    };
    assert!(ProcessingState::new(settings).is_err());
}
