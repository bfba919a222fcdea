//! The risk reader's verily suite: counters written by other clients,
//! read back through the reader, and the reader during Redis outages.

use std::time::Duration;

use redis::AsyncCommands;
use redis::aio::MultiplexedConnection;
use risk::{RiskError, RiskReader, RiskState};
use verily::{Redis, RedisServer};

verily::main!(risk);

/// The state the other services write for `acct-7`.
const WRITTEN: RiskState = RiskState {
    exposure: 125_000,
    open_orders: 3,
    limit: 2_000_000,
};

/// The gateway's counters alone: what the outage tests write, so that they
/// test outages, not formats.
const COUNTED: RiskState = RiskState {
    exposure: 125_000,
    open_orders: 3,
    limit: 0,
};

/// Writes `acct-7`'s state as the order gateway and the limits service do.
async fn write_state(connection: &mut MultiplexedConnection) {
    write_counters(connection).await;
    let _: i64 = connection
        .hset("risk:acct-7", "limit", &WRITTEN.limit.to_be_bytes()[..])
        .await
        .unwrap();
}

/// The order gateway's counters of `acct-7`: decimal text in Redis.
async fn write_counters(connection: &mut MultiplexedConnection) {
    let _: i64 = connection
        .hincr("risk:acct-7", "exposure", 100_000)
        .await
        .unwrap();
    let _: i64 = connection
        .hincr("risk:acct-7", "exposure", 25_000)
        .await
        .unwrap();
    let _: i64 = connection
        .hincr("risk:acct-7", "open_orders", 3)
        .await
        .unwrap();
}

#[verily::test(category = "contract")]
async fn reads_counters_written_by_another_client(redis: Redis) {
    let mut writer = redis.connect().await.unwrap();
    write_state(&mut writer).await;
    let reader = RiskReader::connect(redis.url()).await.unwrap();
    let state = reader
        .state("acct-7")
        .await
        .unwrap_or_else(|error| panic!("the reader cannot read acct-7: {error}"));
    assert_eq!(state, WRITTEN);
    assert_eq!(state.headroom(), 1_875_000);
}

#[verily::test(category = "smoke")]
async fn an_account_nobody_wrote_reads_as_zeros(redis: Redis, connection: MultiplexedConnection) {
    assert!(
        redis.is_empty().await.unwrap(),
        "the test's database starts empty"
    );
    let mut connection = connection;
    write_state(&mut connection).await;
    assert_eq!(redis.keys().await.unwrap(), ["risk:acct-7"]);
    let reader = RiskReader::connect(redis.url()).await.unwrap();
    assert_eq!(reader.state("acct-8").await.unwrap(), RiskState::default());
}

/// Redis killed under the reader: it says so, and reads again once Redis
/// is back (empty: nothing was persisted).
#[verily::test(category = "error", timeout = "60s")]
async fn the_reader_reports_an_outage_and_recovers(server: RedisServer) {
    let mut writer = server.connect().await.unwrap();
    write_counters(&mut writer).await;
    let reader = RiskReader::connect(server.url()).await.unwrap();
    assert_eq!(reader.state("acct-7").await.unwrap(), COUNTED);

    server.stop().await.unwrap();
    match reader.state("acct-7").await {
        Err(RiskError::Unavailable(_)) => {}
        other => panic!("with Redis stopped, expected Unavailable, got {other:?}"),
    }

    server.start().await.unwrap();
    let mut writer = server.connect().await.unwrap();
    write_counters(&mut writer).await;
    assert_eq!(eventually(&reader).await, Ok(COUNTED));
}

/// Redis frozen (a stalled host): the reader gives up after its timeout
/// instead of hanging the risk check; it reads again once Redis thaws, and
/// after its connection is killed.
#[verily::test(category = "error", timeout = "60s")]
async fn a_stalled_redis_times_out_the_read(server: RedisServer) {
    let mut writer = server.connect().await.unwrap();
    write_counters(&mut writer).await;
    let reader = RiskReader::connect(server.url()).await.unwrap();
    assert_eq!(reader.state("acct-7").await.unwrap(), COUNTED);

    server.pause().await.unwrap();
    let started = std::time::Instant::now();
    let stalled = reader.state("acct-7").await;
    assert!(
        matches!(stalled, Err(RiskError::Unavailable(_))),
        "{stalled:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    server.resume().await.unwrap();
    assert_eq!(eventually(&reader).await, Ok(COUNTED));

    let killed = server.terminate_connections().await.unwrap();
    assert!(
        killed >= 2,
        "the reader's and the writer's connections: {killed}"
    );
    assert_eq!(eventually(&reader).await, Ok(COUNTED));
}

/// The reader's answer once it has one, retrying over reconnection.
async fn eventually(reader: &RiskReader) -> Result<RiskState, RiskError> {
    let mut last = reader.state("acct-7").await;
    for _ in 0..50 {
        if last.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        last = reader.state("acct-7").await;
    }
    last
}
