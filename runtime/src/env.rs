//! Every environment variable verily reads, parsed once per process.
//!
//! Nothing else in the runtime calls `std::env::var` for a setting of its
//! own (`PATH`, `HOME` and Docker's variables are looked up where they are
//! used, as the tools they belong to would). A value a variable does not
//! take is a [`problem`](Env::problems): the harness refuses to run and
//! says what the variable takes, instead of silently ignoring it.
//!
//! | variable | what it does |
//! |---|---|
//! | `VERILY_KEEP` | `1`: keep servers and failed tests' databases, print how to reach them |
//! | `VERILY_SHARED` | `1`/`0`: share servers between the processes of a run (on under nextest) |
//! | `VERILY_SHARED_IDLE_MS` | how long a keeper outlives its last process (3000) |
//! | `VERILY_CATEGORY_IN_NAME` | `1`/`0`: list names as `[category] name` (on under nextest) |
//! | `VERILY_DB_REUSE` | `1`/`0`: reuse a test's database after a verified reset |
//! | `VERILY_DATABASE_URL`, `DATABASE_URL` | an existing PostgreSQL server |
//! | `VERILY_CONNECT_TIMEOUT` | seconds to wait for that server (10) |
//! | `VERILY_POSTGRES`, `VERILY_REDIS` | force a source: `url`, `docker` or `local` |
//! | `VERILY_POSTGRES_IMAGE`, `VERILY_REDIS_IMAGE` | `name:tag` of the image to start |
//! | `VERILY_REDIS_URL` | an existing Redis server |
//! | `VERILY_RUNTIME_DIR` | where servers keep their files (tmpfs when it has room) |
//! | `VERILY_CACHE_DIR` | the cache of pristine clusters |
//! | `VERILY_APP_TIMINGS` | `1`: print an app's start-to-ready time |
//! | `NEXTEST`, `NEXTEST_RUN_ID` | set by nextest in each test process |
//! | `VERILY_TAGS` | a `--tags` expression, for runners that pass no flags (nextest) |
//! | `VERILY_LAST_FAILED` | the file `--last-failed` reads and writes |
//! | `RUST_TEST_THREADS` | tests run at once, as libtest reads it |
//! | `RUST_TEST_SHUFFLE`, `RUST_TEST_SHUFFLE_SEED` | `--shuffle`, `--shuffle-seed`, as libtest reads them |
//! | `NO_COLOR` | no colors in the pretty report |
//!
//! `VERILY_SHARED_KEEPER`, `VERILY_HOSTED_KEEPER` and
//! `VERILY_HOSTED_SERVICE` are set by the harness for the keeper processes
//! it starts.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

/// Where a server comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Someone else's server, named by a URL.
    Url,
    /// A container the run starts.
    Docker,
    /// The machine's own binaries.
    Local,
}

/// The process's settings from its environment.
#[derive(Debug, Default)]
pub(crate) struct Env {
    pub keep: bool,
    pub shared: Option<bool>,
    pub shared_idle: Option<Duration>,
    pub under_nextest: bool,
    pub category_in_name: Option<bool>,
    pub db_reuse: Option<bool>,
    /// The variable that named the server, and its value.
    pub database_url: Option<(&'static str, String)>,
    pub connect_timeout: Option<Duration>,
    pub postgres_source: Option<Source>,
    pub redis_source: Option<Source>,
    pub postgres_image: Option<(String, String)>,
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub redis_image: Option<(String, String)>,
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub redis_url: Option<String>,
    pub runtime_dir: Option<PathBuf>,
    pub cache_dir: Option<PathBuf>,
    pub app_timings: bool,
    pub test_threads: Option<usize>,
    pub tags: Option<String>,
    pub last_failed: Option<PathBuf>,
    pub shuffle: bool,
    pub shuffle_seed: Option<u64>,
    pub no_color: bool,
    /// In a keeper of the shared PostgreSQL cluster: its key.
    pub shared_keeper: Option<String>,
    /// In a keeper of a hosted service: its key and the service's name.
    pub hosted_keeper: Option<(String, String)>,
    /// `VARIABLE=value: what it takes`, one per variable set to a value it
    /// does not take.
    pub problems: Vec<String>,
}

/// The settings of this process, read on first use.
pub(crate) fn env() -> &'static Env {
    static ENV: OnceLock<Env> = OnceLock::new();
    ENV.get_or_init(|| Env::from_vars(|name| std::env::var(name).ok()))
}

impl Env {
    /// The settings from `var` (a variable's value, `None` when unset).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Self {
        let mut read = Reader {
            var: &var,
            problems: Vec::new(),
        };
        let keep = read.flag("VERILY_KEEP").unwrap_or(false);
        let shared = read.flag("VERILY_SHARED");
        let category_in_name = read.flag("VERILY_CATEGORY_IN_NAME");
        let db_reuse = read.flag("VERILY_DB_REUSE");
        let app_timings = read.flag("VERILY_APP_TIMINGS").unwrap_or(false);
        let shared_idle = read.parse(
            "VERILY_SHARED_IDLE_MS",
            |ms| ms.parse().ok().map(Duration::from_millis),
            "a number of milliseconds, e.g. `3000`",
        );
        let connect_timeout = read.parse(
            "VERILY_CONNECT_TIMEOUT",
            |seconds| {
                seconds
                    .parse::<f64>()
                    .ok()
                    .filter(|seconds| seconds.is_finite() && *seconds > 0.0)
                    .map(Duration::from_secs_f64)
            },
            "a number of seconds, e.g. `10`",
        );
        let postgres_source = read.source("VERILY_POSTGRES");
        let redis_source = read.source("VERILY_REDIS");
        let test_threads = read.parse(
            "RUST_TEST_THREADS",
            |threads| threads.parse().ok().filter(|n: &usize| *n > 0),
            "a positive integer",
        );
        let shuffle_seed = read.parse(
            "RUST_TEST_SHUFFLE_SEED",
            |seed| seed.parse().ok(),
            "a number",
        );
        Self {
            keep,
            shared,
            shared_idle,
            under_nextest: var("NEXTEST").is_some() || var("NEXTEST_RUN_ID").is_some(),
            category_in_name,
            db_reuse,
            database_url: ["VERILY_DATABASE_URL", "DATABASE_URL"]
                .into_iter()
                .find_map(|name| read.set(name).map(|url| (name, url))),
            connect_timeout,
            postgres_source,
            redis_source,
            postgres_image: read.image("VERILY_POSTGRES_IMAGE"),
            redis_image: read.image("VERILY_REDIS_IMAGE"),
            redis_url: read.set("VERILY_REDIS_URL"),
            runtime_dir: read.set("VERILY_RUNTIME_DIR").map(PathBuf::from),
            cache_dir: read.set("VERILY_CACHE_DIR").map(PathBuf::from),
            app_timings,
            test_threads,
            tags: read
                .set("VERILY_TAGS")
                .filter(|expression| !expression.trim().is_empty()),
            last_failed: read.set("VERILY_LAST_FAILED").map(PathBuf::from),
            shuffle: read
                .set("RUST_TEST_SHUFFLE")
                .is_some_and(|value| value != "0"),
            shuffle_seed,
            no_color: read.set("NO_COLOR").is_some(),
            shared_keeper: read.set("VERILY_SHARED_KEEPER"),
            hosted_keeper: read
                .set("VERILY_HOSTED_KEEPER")
                .zip(read.set("VERILY_HOSTED_SERVICE")),
            problems: read.problems,
        }
    }

    /// Whether servers are shared with the other processes of the run.
    pub fn sharing(&self) -> bool {
        self.shared.unwrap_or(self.under_nextest)
    }
}

/// Reads variables and notes the values they do not take.
struct Reader<'a> {
    var: &'a dyn Fn(&str) -> Option<String>,
    problems: Vec<String>,
}

impl Reader<'_> {
    /// The value, when set and not empty.
    fn set(&self, name: &str) -> Option<String> {
        (self.var)(name).filter(|value| !value.is_empty())
    }

    /// The parsed value; a value `parse` refuses is a problem saying what
    /// the variable `takes`.
    fn parse<T>(
        &mut self,
        name: &str,
        parse: impl Fn(&str) -> Option<T>,
        takes: &str,
    ) -> Option<T> {
        let value = self.set(name)?;
        let parsed = parse(&value);
        if parsed.is_none() {
            self.problems
                .push(format!("{name}={value}: it takes {takes}"));
        }
        parsed
    }

    fn flag(&mut self, name: &str) -> Option<bool> {
        self.parse(
            name,
            |value| match value.to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" => Some(true),
                "0" | "false" | "no" | "off" => Some(false),
                _ => None,
            },
            "`1` or `0`",
        )
    }

    fn source(&mut self, name: &str) -> Option<Source> {
        self.parse(
            name,
            |value| match value {
                "url" => Some(Source::Url),
                "docker" => Some(Source::Docker),
                "local" => Some(Source::Local),
                _ => None,
            },
            "`url`, `docker` or `local`",
        )
    }

    /// `name:tag`, or `name` meaning `latest`.
    fn image(&self, name: &str) -> Option<(String, String)> {
        let image = self.set(name)?;
        Some(match image.rsplit_once(':') {
            Some((name, tag)) => (name.to_owned(), tag.to_owned()),
            None => (image, "latest".to_owned()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(pairs: &[(&str, &str)]) -> Env {
        Env::from_vars(|name| {
            pairs
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| (*value).to_owned())
        })
    }

    #[test]
    fn flags_take_one_and_zero_and_say_so_otherwise() {
        let env = from(&[("VERILY_KEEP", "1"), ("VERILY_SHARED", "0")]);
        assert!(env.keep);
        assert_eq!(env.shared, Some(false));
        assert!(env.problems.is_empty());
        let env = from(&[("VERILY_SHARED", "maybe")]);
        assert_eq!(env.shared, None);
        assert_eq!(env.problems, ["VERILY_SHARED=maybe: it takes `1` or `0`"]);
    }

    #[test]
    fn nextest_turns_sharing_on_unless_told_otherwise() {
        assert!(from(&[("NEXTEST_RUN_ID", "x")]).sharing());
        assert!(!from(&[("NEXTEST", "1"), ("VERILY_SHARED", "0")]).sharing());
        assert!(!from(&[]).sharing());
    }

    #[test]
    fn values_that_are_not_what_a_variable_takes_are_problems() {
        let env = from(&[
            ("VERILY_POSTGRES", "podman"),
            ("VERILY_CONNECT_TIMEOUT", "soon"),
            ("VERILY_SHARED_IDLE_MS", "-1"),
            ("RUST_TEST_THREADS", "0"),
        ]);
        assert_eq!(env.problems.len(), 4, "{:?}", env.problems);
        assert!(
            env.problems
                .iter()
                .any(|problem| problem.starts_with("VERILY_CONNECT_TIMEOUT=soon: it takes")),
            "{:?}",
            env.problems
        );
    }

    #[test]
    fn the_verily_url_wins_over_database_url_and_empty_is_unset() {
        let env = from(&[
            ("DATABASE_URL", "postgres://a"),
            ("VERILY_DATABASE_URL", ""),
        ]);
        assert_eq!(
            env.database_url,
            Some(("DATABASE_URL", "postgres://a".to_owned()))
        );
        let env = from(&[("VERILY_REDIS_IMAGE", "redis")]);
        assert_eq!(
            env.redis_image,
            Some(("redis".to_owned(), "latest".to_owned()))
        );
    }
}
