//! The suite of a crate that names verily `vy`, under strict lints.

#![deny(
    unused_qualifications,
    missing_docs,
    unreachable_pub,
    non_snake_case,
    unused_results,
    clippy::all
)]

/// A settings value built for each test.
#[derive(Debug)]
pub struct Settings {
    /// The greeting.
    pub greeting: &'static str,
}

#[vy::fixture(crate = "vy")]
impl vy::Fixture for Settings {
    async fn setup(_ctx: &mut vy::TestContext) -> Result<Self, vy::FixtureError> {
        Ok(Settings { greeting: "hello" })
    }
}

#[vy::test(crate = "vy", category = "smoke")]
fn fixtures_resolve_through_the_renamed_crate(settings: Settings) {
    assert_eq!(settings.greeting, "hello");
}

#[vy::persists(notes(rows = 1), crate = "vy")]
async fn a_saved_note_is_a_row(pool: sqlx::PgPool) -> Result<(), sqlx::Error> {
    renamed::save(&pool, "remember").await
}

vy::main!(renamed);
