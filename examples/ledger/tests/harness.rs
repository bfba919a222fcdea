//! The ledger's load tests: each runs its body many times at once against
//! the test's own database, and fails on what only many callers show.

use std::sync::atomic::{AtomicU64, Ordering};

use ledger::Ledger;

verily::main!(ledger);

/// Mixed deposits and reads, 50 at a time, through a pool of 10.
#[verily::load(
    concurrency = 50,
    iterations = 400,
    warmup = 50,
    max_connections = 10,
    max_memory_growth = "64MB"
)]
async fn deposits_stay_within_the_pool(ledger: Ledger) -> Result<(), sqlx::Error> {
    ledger.deposit(2, 1).await
}

const DEPOSITS: i64 = 500;

/// Every deposit lands: the balance is their sum once all are done.
#[verily::load(concurrency = 20, iterations = 500, after = every_deposit_landed)]
async fn concurrent_deposits_are_all_counted(ledger: Ledger) -> Result<(), sqlx::Error> {
    ledger.deposit(1, 1).await
}

async fn every_deposit_landed(ledger: Ledger) {
    let balance = ledger.balance(1).await.expect("the balance can be read");
    assert_eq!(
        balance, DEPOSITS,
        "{DEPOSITS} deposits of 1 were made, the balance says {balance}: deposits were lost"
    );
}

/// Transfers both ways between the same two accounts; no money is made
/// or lost.
#[verily::load(concurrency = 10, duration = "2s", after = no_money_made_or_lost)]
async fn opposite_transfers_do_not_deadlock(ledger: Ledger) -> Result<(), sqlx::Error> {
    static TURN: AtomicU64 = AtomicU64::new(0);
    if TURN.fetch_add(1, Ordering::Relaxed).is_multiple_of(2) {
        ledger.transfer(1, 2, 5).await
    } else {
        ledger.transfer(2, 1, 3).await
    }
}

async fn no_money_made_or_lost(ledger: Ledger) {
    assert_eq!(ledger.total().await.expect("the total can be read"), 0);
}

/// Balance reads, as many at once as the pool has connections, for two
/// seconds: the pool never runs dry.
#[verily::load(concurrency = 10, duration = "2s")]
async fn reads_always_find_a_connection(ledger: Ledger) -> Result<(), sqlx::Error> {
    ledger.balance(1).await.map(drop)
}
