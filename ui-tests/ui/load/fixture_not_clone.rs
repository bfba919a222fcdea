/// A fixture that cannot be cloned into each iteration.
pub struct Connection;

#[verily::fixture]
impl verily::Fixture for Connection {
    async fn setup(_ctx: &mut verily::TestContext) -> Result<Self, verily::FixtureError> {
        Ok(Connection)
    }
}

#[verily::load(concurrency = 10)]
async fn reads(connection: Connection) {
    let _ = connection;
}

fn main() {}
