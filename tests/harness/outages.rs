//! Exclusive infrastructure a test can break and heal: `PgServer`'s
//! controls and `TcpProxy`'s, checked directly, then the example's outage
//! incidents through real cargo and the JSON report.

use std::time::{Duration, Instant};

use sqlx::{Connection, PgConnection};
use verily::{PgServer, TcpProxy};

use crate::support::cargo_test_example;

/// How long a query may take before a test says the server did not answer.
const NO_ANSWER: Duration = Duration::from_millis(300);

async fn count(connection: &mut PgConnection) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM notes")
        .fetch_one(connection)
        .await
}

async fn answers(server: &PgServer) -> bool {
    let attempt = async {
        let mut connection = server.connect().await?;
        count(&mut connection).await
    };
    matches!(
        tokio::time::timeout(NO_ANSWER * 5, attempt).await,
        Ok(Ok(_))
    )
}

#[verily::test(category = "error", timeout = "2m")]
async fn a_server_stopped_and_started_keeps_its_data_and_address(server: PgServer) {
    let mut connection = server.connect().await.unwrap();
    sqlx::raw_sql("CREATE TABLE notes (body text); INSERT INTO notes VALUES ('kept')")
        .execute(&mut connection)
        .await
        .unwrap();
    let url = server.url();

    server.stop().await.unwrap();
    let error = count(&mut connection).await.unwrap_err();
    assert!(
        error.to_string().contains("terminating connection") || matches!(error, sqlx::Error::Io(_)),
        "{error}"
    );
    let refused = server.connect().await.unwrap_err();
    assert!(matches!(refused, sqlx::Error::Io(_)), "{refused}");

    server.start().await.unwrap();
    assert_eq!(server.url(), url);
    let mut again = PgConnection::connect(url).await.unwrap();
    assert_eq!(count(&mut again).await.unwrap(), 1);

    server.restart().await.unwrap();
    assert!(answers(&server).await);
}

#[verily::test(category = "error", timeout = "2m")]
async fn a_paused_server_accepts_but_never_answers_until_resumed(server: PgServer) {
    let mut connection = server.connect().await.unwrap();
    sqlx::raw_sql("CREATE TABLE notes (body text)")
        .execute(&mut connection)
        .await
        .unwrap();

    server.pause().await.unwrap();
    let started = Instant::now();
    let hung = tokio::time::timeout(NO_ANSWER, count(&mut connection)).await;
    assert!(hung.is_err(), "a paused server answered: {hung:?}");
    // New connections are accepted by the kernel and then hang too.
    let connecting = tokio::time::timeout(NO_ANSWER, server.connect()).await;
    assert!(connecting.is_err(), "a paused server let a client in");
    assert!(started.elapsed() < NO_ANSWER * 4);

    server.resume().await.unwrap();
    assert!(answers(&server).await);
}

#[verily::test(category = "error", timeout = "2m")]
async fn terminating_connections_ends_every_client_but_the_server_stays(server: PgServer) {
    let mut first = server.connect().await.unwrap();
    let mut second = server.connect().await.unwrap();
    sqlx::raw_sql("CREATE TABLE notes (body text)")
        .execute(&mut first)
        .await
        .unwrap();

    assert_eq!(server.terminate_connections().await.unwrap(), 2);
    for connection in [&mut first, &mut second] {
        let error = count(connection).await.unwrap_err();
        assert!(
            error.to_string().contains("terminating connection")
                || matches!(error, sqlx::Error::Io(_)),
            "{error}"
        );
    }
    assert!(answers(&server).await);
    assert_eq!(server.terminate_connections().await.unwrap(), 0);
}

#[verily::test(category = "error", timeout = "2m")]
async fn a_proxy_cuts_black_holes_delays_and_restores(server: PgServer) {
    let proxy = TcpProxy::to(&server).await.unwrap();
    assert_eq!(
        proxy.url(),
        server
            .url()
            .replace(&server.addr().to_string(), &proxy.addr().to_string())
    );
    let mut connection = PgConnection::connect(&proxy.url()).await.unwrap();
    sqlx::raw_sql("CREATE TABLE notes (body text)")
        .execute(&mut connection)
        .await
        .unwrap();

    // A cut resets the live connection at once, and every new one.
    proxy.cut();
    let started = Instant::now();
    let error = count(&mut connection).await.unwrap_err();
    assert!(matches!(error, sqlx::Error::Io(_)), "{error}");
    let refused = PgConnection::connect(&proxy.url()).await.unwrap_err();
    assert!(matches!(refused, sqlx::Error::Io(_)), "{refused}");
    assert!(started.elapsed() < NO_ANSWER, "{:?}", started.elapsed());
    // The server itself never noticed.
    assert!(answers(&server).await);

    proxy.restore();
    let mut connection = PgConnection::connect(&proxy.url()).await.unwrap();
    assert_eq!(count(&mut connection).await.unwrap(), 0);

    // A black hole answers nothing, then delivers once restored.
    proxy.blackhole();
    let held = tokio::time::timeout(NO_ANSWER, count(&mut connection)).await;
    assert!(held.is_err(), "a black-holed proxy answered: {held:?}");
    let connecting = tokio::time::timeout(NO_ANSWER, PgConnection::connect(&proxy.url())).await;
    assert!(connecting.is_err(), "a black-holed proxy let a client in");
    proxy.restore();
    let mut connection = PgConnection::connect(&proxy.url()).await.unwrap();
    assert_eq!(count(&mut connection).await.unwrap(), 0);

    // Latency is added each way: a query and its answer take twice it.
    let latency = Duration::from_millis(250);
    proxy.set_latency(latency);
    let started = Instant::now();
    count(&mut connection).await.unwrap();
    assert!(started.elapsed() >= latency * 2, "{:?}", started.elapsed());
    proxy.set_latency(Duration::ZERO);
    let started = Instant::now();
    count(&mut connection).await.unwrap();
    assert!(started.elapsed() < latency, "{:?}", started.elapsed());
}

#[verily::test(category = "error", timeout = "2m")]
async fn a_proxy_to_a_stopped_server_resets_its_clients(server: PgServer) {
    let proxy = server.proxy().await.unwrap();
    server.stop().await.unwrap();
    let error = PgConnection::connect(&proxy.url()).await.unwrap_err();
    assert!(matches!(error, sqlx::Error::Io(_)), "{error}");
    server.start().await.unwrap();
    PgConnection::connect(&proxy.url()).await.unwrap();
}

#[verily::test(category = "error", timeout = "2m")]
async fn wrong_credentials_are_refused_over_tcp(server: PgServer) {
    let error = PgConnection::connect(&server.url_as("postgres", "not-the-password"))
        .await
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("password authentication failed for user \"postgres\""),
        "{error}"
    );
}

/// The Docker source: the same controls on a container of the test's own,
/// which is gone once the server is dropped.
#[verily::test(category = "error", timeout = "5m")]
async fn a_container_of_the_tests_own_breaks_heals_and_is_removed() {
    let docker = |args: &[&str]| {
        std::process::Command::new("docker")
            .args(args)
            .output()
            .ok()
            .filter(|output| output.status.success())
            .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_owned())
    };
    if docker(&["version", "--format", "{{.Server.Version}}"]).is_none() {
        verily::skip("no Docker engine answers on this machine");
    }
    let image = std::env::var("VERILY_POSTGRES_IMAGE").unwrap_or_else(|_| "postgres:15".to_owned());
    if docker(&["image", "inspect", &image]).is_none() {
        verily::skip(format!(
            "image {image} is not here and no registry may be reachable: build it with .ci/postgres-image.sh"
        ));
    }
    let ours = format!("label=verily.exclusive.pid={}", std::process::id());
    let server = PgServer::docker(&verily::Config::new().no_migrations())
        .await
        .unwrap();
    assert!(
        server.describe().starts_with("container "),
        "{}",
        server.describe()
    );
    let mut connection = server.connect().await.unwrap();
    sqlx::raw_sql("CREATE TABLE notes (body text); INSERT INTO notes VALUES ('kept')")
        .execute(&mut connection)
        .await
        .unwrap();

    server.stop().await.unwrap();
    assert!(count(&mut connection).await.is_err());
    assert!(server.connect().await.is_err());
    server.start().await.unwrap();
    let mut connection = server.connect().await.unwrap();
    assert_eq!(count(&mut connection).await.unwrap(), 1);

    server.pause().await.unwrap();
    let hung = tokio::time::timeout(NO_ANSWER, count(&mut connection)).await;
    assert!(hung.is_err(), "a paused container answered: {hung:?}");
    server.resume().await.unwrap();
    assert_eq!(count(&mut connection).await.unwrap(), 1);

    assert_eq!(server.terminate_connections().await.unwrap(), 1);
    assert!(count(&mut connection).await.is_err());
    assert!(answers(&server).await);

    // Dropped while paused: still removed, with its volume.
    server.pause().await.unwrap();
    assert!(docker(&["ps", "-aq", "--filter", &ours]).is_some_and(|ids| !ids.is_empty()));
    drop(server);
    assert_eq!(
        docker(&["ps", "-aq", "--filter", &ours]).as_deref(),
        Some(""),
        "the test's container outlived it"
    );
}

/// The example's outage incidents, each switched on by a feature and
/// caught by its `error` test with its message. The hung database is
/// reported at the test's own timeout, and the server it left paused is
/// gone after the run: no directory, no process.
#[verily::test(category = "e2e", timeout = "20m")]
fn each_outage_incident_is_caught_by_its_test() {
    let runtime = std::env::temp_dir().join(format!("vy-outages-{}", std::process::id()));
    std::fs::create_dir_all(&runtime).unwrap();
    let runtime_dir = runtime.to_string_lossy().into_owned();
    let env = [
        ("VERILY_POSTGRES", "local"),
        ("VERILY_RUNTIME_DIR", runtime_dir.as_str()),
    ];
    let args = ["--category", "error", "--format", "json"];

    let healthy = cargo_test_example("operations", &[], &args, &env);
    assert_eq!(healthy.code, 0, "{}\n{}", healthy.stdout, healthy.stderr);
    assert_eq!(healthy.finished().len(), 6, "{}", healthy.stdout);

    let broken = cargo_test_example("operations", &["bug-pool-never-reestablished"], &args, &env);
    assert_eq!(broken.code, 101, "{}\n{}", broken.stdout, broken.stderr);
    let event = &broken.finished()["harness::outages::a_database_stopped_mid_operation_is_an_error_then_recovers"];
    assert_eq!(event["outcome"], "failed");
    let message = event["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with(
            "panicked: the database is back, but the service still fails: the database is unavailable: "
        ),
        "{message}"
    );

    let broken = cargo_test_example("operations", &["bug-no-query-timeout"], &args, &env);
    assert_eq!(broken.code, 101, "{}\n{}", broken.stdout, broken.stderr);
    let event =
        &broken.finished()["harness::outages::a_hung_database_times_out_within_the_query_timeout"];
    assert_eq!(event["outcome"], "timed_out");
    assert_eq!(
        event["message"],
        "timed out after 15.000s; the test was stopped (set `timeout = \"...\"` on the test or pass --timeout to allow more)"
    );
    assert!(
        event["location"].as_str().is_some_and(
            |location| location.starts_with("examples/operations/tests/harness/outages.rs:")
        ),
        "{event}"
    );
    assert_eq!(
        leftovers(&runtime),
        Vec::<String>::new(),
        "the timed-out test's server outlived it"
    );

    let broken = cargo_test_example("operations", &["bug-opaque-credentials-panic"], &args, &env);
    assert_eq!(broken.code, 101, "{}\n{}", broken.stdout, broken.stderr);
    let event =
        &broken.finished()["harness::outages::wrong_credentials_fail_startup_naming_the_problem"];
    assert_eq!(event["outcome"], "failed");
    assert_eq!(
        event["message"],
        "panicked: called `Option::unwrap()` on a `None` value"
    );
    assert!(
        event["location"]
            .as_str()
            .is_some_and(|location| location.starts_with("examples/operations/src/service.rs:")),
        "{event}"
    );
    let _ = std::fs::remove_dir_all(&runtime);
}

/// Servers left under a runtime directory: cluster directories, and
/// processes (paused or not) working inside it.
fn leftovers(runtime: &std::path::Path) -> Vec<String> {
    let mut found = Vec::new();
    for user_dir in std::fs::read_dir(runtime).into_iter().flatten().flatten() {
        for cluster in std::fs::read_dir(user_dir.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            found.push(cluster.path().display().to_string());
        }
    }
    for process in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        if let Ok(cwd) = std::fs::read_link(process.path().join("cwd"))
            && cwd.starts_with(runtime)
        {
            found.push(format!("process {}", process.file_name().to_string_lossy()));
        }
    }
    found
}

/// With only a URL source, no test can have a server of its own: the
/// fixture fails and says what to do.
#[verily::test(category = "e2e", timeout = "15m")]
fn a_url_source_cannot_give_a_test_its_own_server() {
    let run = cargo_test_example(
        "operations",
        &[],
        &[
            "--exact",
            "harness::outages::wrong_credentials_fail_startup_naming_the_problem",
            "--format",
            "json",
        ],
        &[
            ("VERILY_POSTGRES", "url"),
            ("DATABASE_URL", "postgres://app@127.0.0.1:1/app"),
        ],
    );
    assert_eq!(run.code, 101, "{}\n{}", run.stdout, run.stderr);
    let finished = run.finished();
    let event = &finished["harness::outages::wrong_credentials_fail_startup_naming_the_problem"];
    assert_eq!(event["outcome"], "failed");
    let message = event["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("fixture failed: no PostgreSQL of the test's own"),
        "{message}"
    );
    assert!(
        message.contains("a server named by a URL is shared")
            && message.contains("set VERILY_POSTGRES=local"),
        "{message}"
    );
}

/// `PING` on a new connection to `addr`, answered `+PONG` within 2 s.
fn ping(addr: std::net::SocketAddr) -> Result<(), String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .map_err(|error| error.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .map_err(|error| error.to_string())?;
    stream
        .write_all(b"PING\r\n")
        .map_err(|error| error.to_string())?;
    let mut reply = [0u8; 7];
    stream
        .read_exact(&mut reply)
        .map_err(|error| error.to_string())?;
    (&reply == b"+PONG\r\n")
        .then_some(())
        .ok_or_else(|| String::from_utf8_lossy(&reply).into_owned())
}

/// `RedisServer` has `PgServer`'s shape: a proxy in front of it that
/// forwards and cuts, and controls that return a `Result`; the proxy
/// follows the server across a stop and start (same address).
#[verily::test(category = "error", timeout = "60s")]
async fn a_redis_server_has_a_proxy_and_result_controls(server: verily::RedisServer) {
    let ping = |addr| async move {
        tokio::task::spawn_blocking(move || ping(addr))
            .await
            .unwrap()
    };
    let proxy = server.proxy().await.unwrap();
    assert_eq!(proxy.url(), format!("redis://{}", proxy.addr()));
    assert_eq!(ping(proxy.addr()).await, Ok(()));
    proxy.cut();
    assert!(ping(proxy.addr()).await.is_err());
    proxy.restore();
    server.stop().await.unwrap();
    assert!(ping(server.addr()).await.is_err());
    server.start().await.unwrap();
    assert_eq!(ping(proxy.addr()).await, Ok(()));
    assert_eq!(server.url(), format!("redis://{}", server.addr()));
}
