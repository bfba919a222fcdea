pub struct Settings;

#[verily::test]
fn uses_settings(_settings: Settings) {}

fn main() {}
