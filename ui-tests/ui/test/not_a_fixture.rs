pub struct Settings;

#[groundtruth::test]
fn uses_settings(_settings: Settings) {}

fn main() {}
