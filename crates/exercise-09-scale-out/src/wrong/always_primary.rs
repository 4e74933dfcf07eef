//! Wrong: never the replica. Always right, and the replica is there for
//! nothing: every miss is a read on the primary, the one server that cannot
//! be multiplied, which is what the replica was added to spare. Rows
//! nobody has just written are as fresh on the replica; only a recorded,
//! unreplayed write is a reason to go to the primary.

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
    let _ = written;
    read_from(primary, replica, id, Source::Primary).await
}
