//! One connection to the server: how it is opened (TLS for
//! `sslmode=require`, a connect timeout, the session's settings), the
//! statements it has prepared, and how the client's errors become
//! [`JobError`]s classed by their SQLSTATE ([`class_of`]).
//!
//! TLS follows libpq's `sslmode`: `disable` and `prefer` (the default)
//! connect in plain text, `require` encrypts with rustls (the crypto provider
//! reqwest uses) and, as libpq's `require` does, does not check the server's
//! certificate chain: the handshake's signatures are still verified.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use postgres::config::SslMode;
use postgres::error::SqlState;
use postgres::types::ToSql;
use postgres::{Client, GenericClient, NoTls, Row, Statement};
use rustls::DigitallySignedStruct;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};

use crate::jobs::{ErrorClass, JobError, PgUrl, Result};

/// How long connecting may take when the URL says nothing
/// (`connect_timeout`): an unreachable host fails in seconds, not minutes.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The server-side TCP keepalives every session asks for: a machine that
/// dies or drops off the network (no FIN, no RST) is noticed within about a
/// minute, not the operating system's two hours, so its run lock and its
/// transactions' locks are released.
const KEEPALIVES: &str = "SET tcp_keepalives_idle = 30; \
    SET tcp_keepalives_interval = 10; SET tcp_keepalives_count = 3";

/// Takes the transaction-level advisory lock `$1` of this job table (the
/// key's second half is the hash of the schema, so two job tables in one
/// database have their own locks).
pub(crate) const XACT_LOCK: &str = "SELECT pg_advisory_xact_lock($1, hashtext(current_schema()))";

/// How many times a transaction that lost a serialization or deadlock
/// conflict is run again before its error is returned (as busy).
const CONFLICT_RETRIES: u32 = 5;

/// A connection and its prepared statements.
pub(crate) struct Session {
    pub(super) client: Client,
    pub(super) statements: Statements,
    url: PgUrl,
    settings: &'static str,
}

/// The statements prepared on one connection, by their SQL.
#[derive(Default)]
pub(super) struct Statements(HashMap<&'static str, Statement>);

impl Statements {
    /// `sql` prepared on `conn` (once per connection).
    pub(super) fn get(
        &mut self,
        conn: &mut impl GenericClient,
        sql: &'static str,
    ) -> std::result::Result<Statement, postgres::Error> {
        if let Some(statement) = self.0.get(sql) {
            return Ok(statement.clone());
        }
        let statement = conn.prepare(sql)?;
        self.0.insert(sql, statement.clone());
        Ok(statement)
    }
}

impl Session {
    /// Connects to `url`, asks for [`KEEPALIVES`] and runs `settings` (SQL,
    /// e.g. `SET lock_timeout`).
    pub(crate) fn connect(url: &PgUrl, settings: &'static str) -> Result<Self> {
        let client = connect_client(url)?;
        let mut session = Self {
            client,
            statements: Statements::default(),
            url: url.clone(),
            settings,
        };
        session
            .client
            .batch_execute(KEEPALIVES)
            .map_err(|source| opening(url, source))?;
        if !settings.is_empty() {
            session
                .client
                .batch_execute(settings)
                .map_err(|source| opening(url, source))?;
        }
        Ok(session)
    }

    /// Connects again when the server closed the connection (a restart, a
    /// network cut): the next call gets a new one, or the reason it cannot.
    pub(super) fn reconnect_if_closed(&mut self) -> Result<()> {
        if self.client.is_closed() {
            *self = Self::connect(&self.url, self.settings)?;
        }
        Ok(())
    }

    /// Runs `sql` (prepared once per connection) and returns its rows.
    pub(super) fn query(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> std::result::Result<Vec<Row>, postgres::Error> {
        let statement = self.statements.get(&mut self.client, sql)?;
        self.client.query(&statement, params)
    }

    /// Runs `sql`, which returns at most one row.
    pub(super) fn query_opt(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> std::result::Result<Option<Row>, postgres::Error> {
        let statement = self.statements.get(&mut self.client, sql)?;
        self.client.query_opt(&statement, params)
    }

    /// Runs `sql`, which returns exactly one row.
    pub(super) fn query_one(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> std::result::Result<Row, postgres::Error> {
        let statement = self.statements.get(&mut self.client, sql)?;
        self.client.query_one(&statement, params)
    }

    /// Runs `sql` and returns how many rows it changed.
    pub(super) fn execute(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> std::result::Result<u64, postgres::Error> {
        let statement = self.statements.get(&mut self.client, sql)?;
        self.client.execute(&statement, params)
    }

    /// Closes the connection, reporting a failure.
    pub(super) fn close(self) -> Result<()> {
        self.client.close().map_err(pg("closing the connection"))
    }
}

/// A client connected to `url`: TLS when the URL says `sslmode=require`.
fn connect_client(url: &PgUrl) -> Result<Client> {
    let mut config = url.config().map_err(|source| opening(url, source))?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    if config.get_application_name().is_none() {
        config.application_name("finpipe");
    }
    let connected = if config.get_ssl_mode() == SslMode::Require {
        config.connect(tokio_postgres_rustls::MakeRustlsConnect::new(
            tls_config().map_err(|e| JobError::Open {
                location: url.redacted().to_owned(),
                class: ErrorClass::Internal,
                source: Box::new(e),
            })?,
        ))
    } else {
        config.connect(NoTls)
    };
    connected.map_err(|source| opening(url, source))
}

/// rustls for `sslmode=require`: encrypted, the chain not checked (libpq's
/// `require`), the handshake's signatures verified.
fn tls_config() -> std::result::Result<rustls::ClientConfig, rustls::Error> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Ok(
        rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(EncryptOnly(provider)))
            .with_no_client_auth(),
    )
}

/// The certificate check of libpq's `sslmode=require`: none of the chain,
/// the handshake's signatures with the provider's algorithms.
#[derive(Debug)]
struct EncryptOnly(Arc<CryptoProvider>);

impl ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// How a client error should be handled, from its SQLSTATE (or, without
/// one, from the connection's state).
pub(crate) fn class_of(error: &postgres::Error) -> ErrorClass {
    if let Some(code) = error.code() {
        return class_of_code(code);
    }
    let io = std::error::Error::source(error).is_some_and(|s| s.is::<std::io::Error>());
    if error.is_closed() || io {
        ErrorClass::Storage
    } else {
        ErrorClass::Internal
    }
}

fn class_of_code(code: &SqlState) -> ErrorClass {
    let text = code.code();
    if [
        &SqlState::T_R_SERIALIZATION_FAILURE,
        &SqlState::T_R_DEADLOCK_DETECTED,
        &SqlState::LOCK_NOT_AVAILABLE,
        &SqlState::TOO_MANY_CONNECTIONS,
        &SqlState::QUERY_CANCELED,
    ]
    .contains(&code)
    {
        ErrorClass::Busy
    } else if [
        &SqlState::INVALID_CATALOG_NAME,
        &SqlState::INSUFFICIENT_PRIVILEGE,
    ]
    .contains(&code)
        || text.starts_with("28")
    {
        // 28xxx: the user or the password refused; 3D000: no such database.
        ErrorClass::Configuration
    } else if [&SqlState::DATA_CORRUPTED, &SqlState::INDEX_CORRUPTED].contains(&code) {
        ErrorClass::Corrupt
    } else if ["08", "53", "57", "58"].iter().any(|c| text.starts_with(c)) {
        // The connection, the server's resources (a full disk), the server
        // shutting down, its I/O.
        ErrorClass::Storage
    } else {
        ErrorClass::Internal
    }
}

/// Whether `error` is a serialization failure or a deadlock: its
/// transaction can simply run again.
fn is_conflict(error: &JobError) -> bool {
    let source = match error {
        JobError::Backend { source, .. } | JobError::Migration { source, .. } => source,
        _ => return false,
    };
    source
        .downcast_ref::<postgres::Error>()
        .and_then(postgres::Error::code)
        .is_some_and(|code| {
            code == &SqlState::T_R_SERIALIZATION_FAILURE || code == &SqlState::T_R_DEADLOCK_DETECTED
        })
}

/// Runs `op` (one statement or one transaction), again when it lost a
/// serialization or deadlock conflict, up to [`CONFLICT_RETRIES`] times.
pub(super) fn retrying<T>(
    session: &mut Session,
    mut op: impl FnMut(&mut Session) -> Result<T>,
) -> Result<T> {
    let mut attempt = 0;
    loop {
        match op(session) {
            Err(error) if attempt < CONFLICT_RETRIES && is_conflict(&error) => {
                attempt += 1;
                std::thread::sleep(Duration::from_millis(fastrand::u64(1..=20 << attempt)));
            }
            result => return result,
        }
    }
}

/// Wraps a client error with what was being done.
pub(crate) fn pg(context: &'static str) -> impl Fn(postgres::Error) -> JobError {
    move |source| JobError::Backend {
        context,
        class: class_of(&source),
        source: Box::new(source),
    }
}

/// A column that does not read as its type: the row is corrupt.
pub(super) fn decoding(context: &'static str) -> impl Fn(postgres::Error) -> JobError {
    move |source| JobError::Backend {
        context,
        class: ErrorClass::Corrupt,
        source: Box::new(source),
    }
}

/// The error of opening `url`, naming it without its password.
pub(crate) fn opening(url: &PgUrl, source: postgres::Error) -> JobError {
    JobError::Open {
        location: url.redacted().to_owned(),
        class: class_of(&source),
        source: Box::new(source),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlstates_are_classed() {
        for (code, class) in [
            ("28P01", ErrorClass::Configuration),
            ("28000", ErrorClass::Configuration),
            ("3D000", ErrorClass::Configuration),
            ("40001", ErrorClass::Busy),
            ("40P01", ErrorClass::Busy),
            ("55P03", ErrorClass::Busy),
            ("53300", ErrorClass::Busy),
            ("53100", ErrorClass::Storage),
            ("57P01", ErrorClass::Storage),
            ("08006", ErrorClass::Storage),
            ("XX001", ErrorClass::Corrupt),
            ("42P01", ErrorClass::Internal),
        ] {
            assert_eq!(class_of_code(&SqlState::from_code(code)), class, "{code}");
        }
    }
}
