//! (6) Invalidation: a versioned URL against a purge.
//!
//! `/users/42?v=1` and `/users/42?v=2` are two cache keys: bumping the
//! version is a miss by construction, with any nginx (and any CDN). A purge
//! deletes the entry itself; open-source nginx has no `proxy_cache_purge`,
//! so this uses Debian's third-party module when it is installed and says
//! so when it is not.

use serde::{Deserialize, Serialize};

use super::fixture::{Fixture, client, get};
use crate::origin::OriginSettings;

/// What this experiment shows, in plain words: the demo prints it under
/// the heading.
pub const SHOWS: &str = "two ways to make the edge forget a page: a new URL (any cache), or deleting the entry (a module).";

/// The statuses seen, in order, for each step.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PurgeResults {
    /// `?v=1`, `?v=1` again, then `?v=2`: MISS, HIT, MISS.
    pub versioned: Vec<(String, String)>,
    /// GET, GET, purge, GET: MISS, HIT, (purge status), MISS; `None` when
    /// the module is not installed.
    pub purged: Option<Vec<(String, String)>>,
}

pub async fn run(fx: &Fixture) -> anyhow::Result<PurgeResults> {
    let origin = fx.origin(OriginSettings::default()).await?;
    let http = client()?;
    let module = lab::edge::purge_module().is_some();
    let edge = origin.edge(|c| c.purge = module).await?;
    let base = edge.base_url();
    let mut versioned = Vec::new();
    for path in ["/users/42?v=1", "/users/42?v=1", "/users/42?v=2"] {
        let h = get(&http, &format!("{base}{path}"), &[]).await;
        versioned.push((path.to_string(), format!("{} {}", h.status, h.cache)));
    }
    let purged = if module {
        let mut steps = Vec::new();
        for path in ["/users/43", "/users/43", "/purge/users/43", "/users/43"] {
            let h = get(&http, &format!("{base}{path}"), &[]).await;
            steps.push((path.to_string(), format!("{} {}", h.status, h.cache)));
        }
        Some(steps)
    } else {
        None
    };
    let show = |s: &[(String, String)]| {
        s.iter()
            .map(|(p, r)| format!("{p} → {r}"))
            .collect::<Vec<_>>()
            .join("; ")
    };
    println!("  versioned URL: {}", show(&versioned));
    match &purged {
        Some(s) => println!("  purge module:  {}", show(s)),
        None => println!(
            "  purge module:  not installed ({})",
            lab::edge::PURGE_MODULE
        ),
    }
    Ok(PurgeResults { versioned, purged })
}
