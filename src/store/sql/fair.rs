// Seed pairs of the provably fair roll: created on first use, a nonce taken per open, rotated (the
// server seed revealed) on the player's request.

use chrono::Utc;
use sqlx::{Pool, Row};
use uuid::Uuid;

use super::rows::{corrupt, decode_pair, DbConn, SeedPair, PAIR_COLUMNS};
use super::{begin_write, lock_player, Db};
use crate::fair;
use crate::store::{ActivePair, Keyset, PairRecord, RevealedPair, StoreResult};

/// Starts a pair at nonce 0 with `server_seed` (the retired pair's pre-committed next seed) or, for
/// a player's first pair, a fresh one, and commits a fresh next seed with it.
async fn insert_pair(
    conn: &mut DbConn,
    user_id: Uuid,
    client_seed: Option<String>,
    server_seed: Option<fair::ServerSeed>,
) -> StoreResult<()> {
    let seed = server_seed.unwrap_or_else(fair::ServerSeed::generate);
    let next = fair::ServerSeed::generate();
    sqlx::query(
        "INSERT INTO fair_seeds (id, user_id, server_seed, server_seed_hash, next_server_seed, next_server_seed_hash, \
         client_seed, nonce, active, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 0, TRUE, $8) ON CONFLICT DO NOTHING",
    )
    .bind(Uuid::new_v4())
    .bind(user_id)
    .bind(seed.to_hex())
    .bind(seed.commitment())
    .bind(next.to_hex())
    .bind(next.commitment())
    .bind(client_seed.unwrap_or_else(fair::default_client_seed))
    .bind(Utc::now())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The active pair of a user with its pre-committed next seed, created on first use. The unique
/// index on active pairs lets two concurrent first uses agree on one; a pair from before next
/// seeds existed gets one here, and the conditional update lets concurrent readers agree on it.
pub(super) async fn active_pair(conn: &mut DbConn, user_id: Uuid) -> StoreResult<SeedPair> {
    for _ in 0..3 {
        let row = sqlx::query(&format!("SELECT {PAIR_COLUMNS} FROM fair_seeds WHERE user_id = $1 AND active"))
            .bind(user_id)
            .fetch_optional(&mut *conn)
            .await?;
        let Some(row) = row else {
            insert_pair(conn, user_id, None, None).await?;
            continue;
        };
        let pair = decode_pair(&row)?;
        if pair.next.is_some() {
            return Ok(pair);
        }
        let next = fair::ServerSeed::generate();
        sqlx::query(
            "UPDATE fair_seeds SET next_server_seed = $2, next_server_seed_hash = $3 \
             WHERE id = $1 AND active AND next_server_seed IS NULL",
        )
        .bind(pair.id)
        .bind(next.to_hex())
        .bind(next.commitment())
        .execute(&mut *conn)
        .await?;
    }
    Err(corrupt("no active seed pair with a next seed after creating one".into()))
}

/// Takes the next nonce of the user's active pair in the caller's transaction, so concurrent
/// opens never share one. Returns the pair with the nonce to use.
pub(super) async fn take_nonce(conn: &mut DbConn, user_id: Uuid) -> StoreResult<SeedPair> {
    for _ in 0..3 {
        let row = sqlx::query(&format!(
            "UPDATE fair_seeds SET nonce = nonce + 1 WHERE user_id = $1 AND active RETURNING {PAIR_COLUMNS}"
        ))
        .bind(user_id)
        .fetch_optional(&mut *conn)
        .await?;
        if let Some(row) = row {
            let taken = decode_pair(&row)?;
            return Ok(SeedPair { nonce: taken.nonce - 1, ..taken });
        }
        // No active pair yet, or a rotation replaced it after this statement's snapshot.
        insert_pair(conn, user_id, None, None).await?;
    }
    Err(corrupt("could not take a nonce".into()))
}

/// What a player may see of their active pair: never a seed, only its and the next one's hashes.
fn active(pair: SeedPair) -> StoreResult<ActivePair> {
    let (_, next_server_seed_hash) = pair.next.ok_or_else(|| corrupt("active pair without a next seed".into()))?;
    Ok(ActivePair {
        server_seed_hash: pair.server_seed_hash,
        next_server_seed_hash,
        client_seed: pair.client_seed,
        nonce: pair.nonce,
    })
}

pub(super) async fn fair_pair(pool: &Pool<Db>, user_id: Uuid) -> StoreResult<ActivePair> {
    let mut conn = pool.acquire().await?;
    active(active_pair(&mut conn, user_id).await?)
}

pub(super) async fn rotate_pair(
    pool: &Pool<Db>,
    user_id: Uuid,
    client_seed: Option<String>,
) -> StoreResult<(RevealedPair, ActivePair)> {
    let mut tx = begin_write(pool).await?;
    lock_player(&mut tx, user_id).await?;
    let current = active_pair(&mut tx, user_id).await?;
    let (next_seed, next_hash) =
        current.next.clone().ok_or_else(|| corrupt("active pair without a next seed".into()))?;
    // The secret of a retired row is cleared: it is the successor's active seed.
    let row = sqlx::query(&format!(
        "UPDATE fair_seeds SET active = FALSE, revealed_at = $2, next_server_seed = NULL \
         WHERE user_id = $1 AND active RETURNING {PAIR_COLUMNS}"
    ))
    .bind(user_id)
    .bind(Utc::now())
    .fetch_one(&mut *tx)
    .await?;
    let old = decode_pair(&row)?;
    if old.id != current.id {
        return Err(corrupt("the active pair changed under the player's lock".into()));
    }
    let activated = fair::ServerSeed::from_hex(&next_seed).map_err(|e| corrupt(format!("next server seed: {e}")))?;
    if activated.commitment() != next_hash {
        return Err(corrupt("next server seed does not match its published hash".into()));
    }
    let client_seed = client_seed.unwrap_or_else(|| old.client_seed.clone());
    insert_pair(&mut tx, user_id, Some(client_seed), Some(activated)).await?;
    let new = active_pair(&mut tx, user_id).await?;
    tx.commit().await?;
    let revealed = RevealedPair {
        server_seed: old.server_seed,
        server_seed_hash: old.server_seed_hash,
        client_seed: old.client_seed,
        nonce: old.nonce,
    };
    Ok((revealed, active(new)?))
}

pub(super) async fn fair_history(
    pool: &Pool<Db>,
    user_id: Uuid,
    after: Option<Keyset>,
    limit: u32,
) -> StoreResult<Vec<PairRecord>> {
    let mut conn = pool.acquire().await?;
    if after.is_none() {
        active_pair(&mut conn, user_id).await?;
    }
    let after_filter = if after.is_some() { "AND (created_at, id) < ($3, $4)" } else { "" };
    let sql = format!(
        "SELECT {PAIR_COLUMNS}, active, created_at, revealed_at FROM fair_seeds \
         WHERE user_id = $1 {after_filter} ORDER BY created_at DESC, id DESC LIMIT $2"
    );
    let query = sqlx::query(&sql).bind(user_id).bind(i64::from(limit));
    let query = match after {
        Some(k) => query.bind(k.at).bind(k.id),
        None => query,
    };
    let rows = query.fetch_all(&mut *conn).await?;
    rows.iter()
        .map(|row| {
            let pair = decode_pair(row)?;
            let active: bool = row.try_get("active")?;
            Ok(PairRecord {
                id: pair.id,
                server_seed: (!active).then_some(pair.server_seed),
                server_seed_hash: pair.server_seed_hash,
                client_seed: pair.client_seed,
                nonce: pair.nonce,
                created_at: row.try_get("created_at")?,
                revealed_at: row.try_get("revealed_at")?,
            })
        })
        .collect()
}
