//! `fleetflow broker`: the durable broker `fleetflow run` embeds, as its own process.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;

use crate::error::AppError;
use crate::http::server::shutdown_signal;
use crate::kafka::durable_broker::{BrokerStorage, DurableBroker};

#[derive(Debug, Clone, Args)]
pub struct BrokerArgs {
    /// Listen (and advertised) address.
    #[arg(long, default_value = "127.0.0.1:9092")]
    pub listen: SocketAddr,
    /// Keep the log in this directory (`tansu.db`, `cluster_id`), as `fleetflow run` does.
    #[arg(long, conflicts_with = "storage")]
    pub dir: Option<PathBuf>,
    /// A Tansu storage URL instead: `memory://tansu/` (nothing kept) or
    /// `sqlite:///ABSOLUTE/PATH/tansu.db`.
    #[arg(long)]
    pub storage: Option<String>,
}

pub async fn broker(args: BrokerArgs) -> Result<(), AppError> {
    let storage = match (args.dir, args.storage) {
        (Some(dir), _) => BrokerStorage::Dir(dir),
        (None, Some(url)) => BrokerStorage::Url(url),
        (None, None) => BrokerStorage::Dir(PathBuf::from("fleetflow-broker")),
    };
    let broker = DurableBroker::start(storage, args.listen).await?;
    println!(
        "broker listening on {} (cluster {}, storage {})",
        broker.bootstrap_servers(),
        broker.cluster_id(),
        broker.storage()
    );
    tokio::select! {
        result = broker.wait() => result,
        () = shutdown_signal() => Ok(()),
    }
}
