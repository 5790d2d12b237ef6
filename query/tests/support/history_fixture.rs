//! A synthetic history in a temporary data dir, two companies and an admin with tokens, and a
//! SQL engine over them: what the HTTP and Postgres wire tests query.

#![allow(dead_code)] // each test file uses part of this

use std::path::PathBuf;
use std::sync::Arc;

use fleetflow_live_store::store::LiveStore;
use fleetflow_model::{CompanyConfig, Tenants};
use fleetflow_query::history::synthetic::{HistoryShape, write_history};
use fleetflow_query::{SqlConfig, SqlEngine};

pub const ADMIN: &str = "root-token";
pub const ACME: &str = "acme-token";
pub const GLOBEX: &str = "globex-token";

/// At most this many rows per answer.
pub const MAX_ROWS: usize = 50;

/// The default synthetic history, written into a fresh data dir; removed on drop.
pub struct History {
    pub dir: PathBuf,
    pub engine: SqlEngine,
    pub tenants: Arc<Tenants>,
}

impl Drop for History {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn history(name: &str, live: Option<Arc<LiveStore>>) -> History {
    let dir = std::env::temp_dir().join(format!("fleetflow-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    write_history(&dir, &HistoryShape::default()).expect("history");
    let company = |id: &str, token: &str| CompanyConfig {
        id: id.into(),
        name: id.into(),
        tokens: vec![token.into()],
        trips: None,
    };
    let tenants = Arc::new(
        Tenants::new(
            &[company("acme", ACME), company("globex", GLOBEX)],
            Some(ADMIN),
        )
        .expect("tenants"),
    );
    let engine = SqlEngine::new(
        &dir,
        SqlConfig {
            max_rows: MAX_ROWS,
            ..SqlConfig::default()
        },
        live,
    )
    .expect("engine");
    History {
        dir,
        engine,
        tenants,
    }
}
