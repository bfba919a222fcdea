#[verily::test(tags = "slow")]
fn tags_not_an_array() {}

#[verily::test(tags = ["Slow", "nightly build", "slow", "slow"])]
fn tags_not_names() {}

#[verily::test(tags = [slow])]
fn tag_not_a_string() {}

#[verily::test(retries = "2")]
fn retries_not_a_number() {}

#[verily::test(tags = ["slow"], tags = ["nightly"])]
fn tags_twice() {}

fn main() {}
