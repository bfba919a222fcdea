//! Test categories: the built-in tiers and users' own names.

/// The categories verily knows without being told, cheapest first: the
/// order CI tiers follow and the order of the summary table.
pub const BUILTIN: [&str; 9] = [
    "wiring",
    "schema",
    "contract",
    "smoke",
    "persistence",
    "integration",
    "error",
    "e2e",
    "load",
];

/// Position of a category in summaries: built-ins in tier order, then users'
/// own names alphabetically.
pub fn rank(category: &str) -> (usize, &str) {
    match BUILTIN.iter().position(|known| *known == category) {
        Some(index) => (index, ""),
        None => (BUILTIN.len(), category),
    }
}

/// The category of a test that names none: the first its fixtures declare
/// (`Fixture::CATEGORY`, `e2e` for the app fixture), else the attribute's
/// `default`. Const, for the generated descriptor's static.
pub const fn category_of(declared: &[Option<&'static str>], default: &'static str) -> &'static str {
    let mut index = 0;
    while index < declared.len() {
        if let Some(category) = declared[index] {
            return category;
        }
        index += 1;
    }
    default
}

/// Whether `name` may be used as a category: lowercase ASCII letters, digits,
/// `-` and `_`, starting with a letter.
pub fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_come_first_in_tier_order() {
        let mut names = vec!["zeta", "persistence", "alpha", "wiring"];
        names.sort_by_key(|name| rank(name));
        assert_eq!(names, ["wiring", "persistence", "alpha", "zeta"]);
    }

    #[test]
    fn the_first_declared_fixture_category_wins() {
        const NONE: &str = category_of(&[None, None], "integration");
        const FIRST: &str = category_of(&[None, Some("e2e"), Some("load")], "integration");
        assert_eq!(NONE, "integration");
        assert_eq!(FIRST, "e2e");
    }

    #[test]
    fn names() {
        assert!(is_valid_name("e2e"));
        assert!(is_valid_name("slow-db_tests"));
        assert!(!is_valid_name("E2E"));
        assert!(!is_valid_name("2fast"));
        assert!(!is_valid_name("has space"));
        assert!(!is_valid_name(""));
    }
}
