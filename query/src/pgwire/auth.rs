//! Who a Postgres connection speaks for: user name and password are a principal and its token.
//!
//! The user is the company id (or `admin`), the password is one of that principal's bearer
//! tokens, the same tokens the HTTP API takes. The password is checked against the tokens,
//! never recovered, so it travels as cleartext (Postgres' `password` method): keep the
//! listener on loopback or behind a TLS-terminating proxy. The principal is bound to the
//! connection once, at startup; every statement on it is planned in that principal's scope.

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use fleetflow_model::{Principal, Tenants};
use futures::Sink;
use pgwire::api::auth::cleartext::CleartextPasswordAuth;
use pgwire::api::auth::driver::AuthOutcome;
use pgwire::api::auth::mechanism::AuthMechanismFactory;
use pgwire::api::auth::{
    AuthDriver, AuthSource, DefaultServerParameterProvider, LoginInfo, Password, StartupHandler,
    protocol_negotiation, save_startup_parameters_to_metadata,
};
use pgwire::api::{ClientInfo, ConnectionManager};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use tokio::sync::Semaphore;

/// The user name of the admin token.
pub const ADMIN_USER: &str = "admin";

/// The user name `principal` logs in as.
pub fn user_name(principal: &Principal) -> &str {
    match principal {
        Principal::Admin => ADMIN_USER,
        Principal::Company(id) => id,
    }
}

/// Checks a presented token against the tenants.
#[derive(Debug)]
struct Tokens {
    tenants: Arc<Tenants>,
}

#[async_trait]
impl AuthSource<Principal> for Tokens {
    async fn get_password(&self, login: &LoginInfo) -> PgWireResult<Password> {
        // Tokens are verified (below), never handed out.
        Err(PgWireError::InvalidPassword(
            login.user().unwrap_or_default().to_owned(),
        ))
    }

    async fn verify_password(
        &self,
        login: &LoginInfo,
        presented: &[u8],
    ) -> PgWireResult<Option<Principal>> {
        let user = login.user().unwrap_or_default();
        let principal = std::str::from_utf8(presented)
            .ok()
            .and_then(|token| self.tenants.authenticate(token));
        match principal {
            Some(p) if user_name(p) == user => Ok(Some(p.clone())),
            // Same answer for an unknown token and another principal's: nothing to probe.
            _ => Err(PgWireError::InvalidPassword(user.to_owned())),
        }
    }
}

/// The startup handler: password authentication against the tokens, then the principal is
/// stored in the connection's session extensions, where the query handlers find it.
pub struct TokenStartup {
    driver: AuthDriver<DefaultServerParameterProvider, Principal>,
    tokens: CleartextPasswordAuth<Tokens>,
    /// Connections served at once, counted from login on (a connection that never logs in
    /// takes no slot: it is closed at the start-up deadline instead, see `serve_postgres`).
    slots: Arc<Semaphore>,
    max_connections: usize,
}

impl Debug for TokenStartup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenStartup").finish_non_exhaustive()
    }
}

impl TokenStartup {
    /// `connections` maps each authenticated connection's cancel key to its cancel handle.
    pub fn new(
        tenants: Arc<Tenants>,
        connections: Arc<ConnectionManager>,
        max_connections: usize,
    ) -> TokenStartup {
        let mut parameters = DefaultServerParameterProvider::default();
        // Clients pick features by the server version; fleetflow answers as a read-only 16.
        parameters.server_version = format!(
            "{} (fleetflow {})",
            crate::pgwire::catalog::SERVER_VERSION,
            env!("CARGO_PKG_VERSION")
        );
        parameters.default_transaction_read_only = true;
        TokenStartup {
            driver: AuthDriver::new(parameters).with_connection_manager(connections),
            tokens: CleartextPasswordAuth::new(Arc::new(Tokens { tenants })),
            slots: Arc::new(Semaphore::new(max_connections.max(1))),
            max_connections: max_connections.max(1),
        }
    }
}

/// The principal a connection authenticated as.
pub fn connection_principal<C: ClientInfo>(client: &C) -> PgWireResult<Arc<Principal>> {
    client
        .session_extensions()
        .get::<Principal>()
        .ok_or(PgWireError::NotReadyForQuery)
}

#[async_trait]
impl StartupHandler for TokenStartup {
    async fn on_startup<C>(
        &self,
        client: &mut C,
        message: PgWireFrontendMessage,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let outcome = match message {
            PgWireFrontendMessage::Startup(ref startup) => {
                protocol_negotiation(client, startup).await?;
                save_startup_parameters_to_metadata(client, startup);
                let mechanism = AuthMechanismFactory::<Principal>::create(&self.tokens);
                self.driver.begin_authentication(client, mechanism).await?
            }
            PgWireFrontendMessage::PasswordMessageFamily(message) => {
                self.driver.advance_authentication(client, message).await?
            }
            _ => return Ok(()),
        };
        match outcome {
            AuthOutcome::InProgress => Ok(()),
            AuthOutcome::Authenticated {
                identity,
                final_message,
            } => {
                let principal = identity.ok_or_else(|| {
                    PgWireError::InvalidPassword(
                        client.metadata().get("user").cloned().unwrap_or_default(),
                    )
                })?;
                // The slot is held by the session, so it is freed when the connection ends.
                let slot = self.slots.clone().try_acquire_owned().map_err(|_| {
                    PgWireError::UserError(Box::new(ErrorInfo::new(
                        "FATAL".to_owned(),
                        "53300".to_owned(),
                        format!(
                            "too many connections: {} are served at once; retry later",
                            self.max_connections
                        ),
                    )))
                })?;
                client.session_extensions().insert(slot);
                client.session_extensions().get_or_insert_with(|| principal);
                self.driver
                    .complete_authentication(client, final_message)
                    .await
            }
        }
    }
}
