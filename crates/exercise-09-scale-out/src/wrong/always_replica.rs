//! Wrong: the naive read split, every read to the replica. It is what
//! "reads go to the replica, writes to the primary" means when nobody
//! thinks about the gap between them: the `PUT` deletes the key, the next
//! miss reads the replica before it has replayed the `UPDATE`, and the old
//! row goes back into the cache, for the whole TTL.

use lab::users::User;
use sqlx::PgPool;

use super::read_from;
use crate::Source;

pub async fn read_for_fill(
    primary: &PgPool,
    replica: &PgPool,
    id: i64,
    written: Option<&str>,
) -> anyhow::Result<(Option<User>, Source)> {
    // The recorded write is ignored.
    let _ = written;
    read_from(primary, replica, id, Source::Replica).await
}
