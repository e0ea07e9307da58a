//! The connection handed out by [`crate::connect`]: the driver's client with every call
//! bounded, and the one error type of those calls.

use std::future::Future;
use std::time::Duration;

use tokio::task::AbortHandle;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Row, SimpleQueryMessage};

/// How much longer than the server's `statement_timeout` the client waits for an answer
/// before it gives up on a silent server or a lost network and closes the connection. The
/// server's own cancellation, which says more, normally arrives first.
pub const QUERY_GRACE: Duration = Duration::from_secs(5);

/// A live connection; every call is bounded by its query bound plus [`QUERY_GRACE`].
/// Dropping it closes the connection (the background task sends `Terminate` and ends).
#[derive(Debug)]
pub struct Client {
    pub(crate) inner: tokio_postgres::Client,
    /// `host:port`, for messages.
    pub(crate) peer: String,
    pub(crate) query_timeout: Duration,
    /// The task that drives the connection: a call that times out ends it, so the
    /// connection is closed and the next call fails at once instead of waiting again.
    pub(crate) connection: AbortHandle,
}

/// Why a call on a [`Client`] failed: the driver's error (the server refused the statement,
/// the connection broke), or no answer within the bound.
#[derive(Debug)]
pub struct QueryError(Kind);

#[derive(Debug)]
enum Kind {
    Driver(tokio_postgres::Error),
    TimedOut { peer: String, after: Duration },
}

impl From<tokio_postgres::Error> for QueryError {
    fn from(e: tokio_postgres::Error) -> Self {
        QueryError(Kind::Driver(e))
    }
}

impl QueryError {
    /// The driver's error, unless the call timed out.
    pub fn driver(&self) -> Option<&tokio_postgres::Error> {
        match &self.0 {
            Kind::Driver(e) => Some(e),
            Kind::TimedOut { .. } => None,
        }
    }

    /// The server's error, if it sent one.
    pub fn as_db_error(&self) -> Option<&tokio_postgres::error::DbError> {
        self.driver().and_then(|e| e.as_db_error())
    }

    /// The `SQLSTATE` of the server's error, if it sent one.
    pub fn code(&self) -> Option<&str> {
        self.driver().and_then(|e| e.code()).map(|c| c.code())
    }

    /// Whether the connection is closed (it is after a timeout).
    pub fn is_closed(&self) -> bool {
        match &self.0 {
            Kind::Driver(e) => e.is_closed(),
            Kind::TimedOut { .. } => true,
        }
    }

    /// Whether no answer came within the bound.
    pub fn is_timeout(&self) -> bool {
        matches!(self.0, Kind::TimedOut { .. })
    }

    /// How long the client waited, when it timed out.
    pub fn timed_out_after(&self) -> Option<Duration> {
        match &self.0 {
            Kind::TimedOut { after, .. } => Some(*after),
            Kind::Driver(_) => None,
        }
    }
}

impl std::fmt::Display for QueryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Kind::Driver(e) => f.write_str(&crate::describe_driver(e)),
            Kind::TimedOut { peer, after } => write!(
                f,
                "no answer from {peer} to a query within {} (the server or the network went silent); the connection was closed",
                humantime::format_duration(*after)
            ),
        }
    }
}

impl std::error::Error for QueryError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.0 {
            Kind::Driver(e) => Some(e),
            Kind::TimedOut { .. } => None,
        }
    }
}

impl Client {
    /// `host:port` of the server.
    pub fn peer(&self) -> &str {
        &self.peer
    }

    /// The server's `statement_timeout` for this session, and the client's bound on each
    /// call less [`QUERY_GRACE`].
    pub fn query_timeout(&self) -> Duration {
        self.query_timeout
    }

    /// Whether the connection has closed.
    pub fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }

    async fn bounded<T>(
        &self,
        limit: Duration,
        call: impl Future<Output = Result<T, tokio_postgres::Error>>,
    ) -> Result<T, QueryError> {
        let after = limit.saturating_add(QUERY_GRACE);
        match tokio::time::timeout(after, call).await {
            Ok(result) => result.map_err(QueryError::from),
            Err(_) => {
                self.connection.abort();
                Err(QueryError(Kind::TimedOut {
                    peer: self.peer.clone(),
                    after,
                }))
            }
        }
    }

    /// [`tokio_postgres::Client::simple_query`], bounded.
    pub async fn simple_query(&self, sql: &str) -> Result<Vec<SimpleQueryMessage>, QueryError> {
        self.bounded(self.query_timeout, self.inner.simple_query(sql))
            .await
    }

    /// [`Client::simple_query`] that keeps what the server answered before an error (each
    /// statement's completion, so that the caller can tell which statement failed).
    pub async fn simple_query_partial(
        &self,
        sql: &str,
    ) -> (Vec<SimpleQueryMessage>, Option<QueryError>) {
        use futures_util::StreamExt;
        let run = async {
            let mut seen = vec![];
            let results = match self.inner.simple_query_raw(sql).await {
                Ok(r) => r,
                Err(e) => return Ok((seen, Some(e))),
            };
            let mut results = std::pin::pin!(results);
            while let Some(r) = results.next().await {
                match r {
                    Ok(m) => seen.push(m),
                    Err(e) => return Ok((seen, Some(e))),
                }
            }
            Ok((seen, None))
        };
        match self.bounded(self.query_timeout, run).await {
            Ok((seen, e)) => (seen, e.map(QueryError::from)),
            Err(timed_out) => (vec![], Some(timed_out)),
        }
    }

    /// [`tokio_postgres::Client::batch_execute`], bounded.
    pub async fn batch_execute(&self, sql: &str) -> Result<(), QueryError> {
        self.bounded(self.query_timeout, self.inner.batch_execute(sql))
            .await
    }

    /// [`Client::batch_execute`] for a statement that may legitimately wait longer than the
    /// query bound (taking a lock with its own `lock_timeout`, after `SET statement_timeout`
    /// to match): the client waits `limit` plus [`QUERY_GRACE`].
    pub async fn batch_execute_within(&self, sql: &str, limit: Duration) -> Result<(), QueryError> {
        self.bounded(limit, self.inner.batch_execute(sql)).await
    }

    /// [`tokio_postgres::Client::execute`], bounded.
    pub async fn execute(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, QueryError> {
        self.bounded(self.query_timeout, self.inner.execute(sql, params))
            .await
    }

    /// [`tokio_postgres::Client::query`], bounded.
    pub async fn query(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, QueryError> {
        self.bounded(self.query_timeout, self.inner.query(sql, params))
            .await
    }

    /// [`tokio_postgres::Client::query_one`], bounded.
    pub async fn query_one(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Row, QueryError> {
        self.bounded(self.query_timeout, self.inner.query_one(sql, params))
            .await
    }

    /// [`tokio_postgres::Client::query_opt`], bounded.
    pub async fn query_opt(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, QueryError> {
        self.bounded(self.query_timeout, self.inner.query_opt(sql, params))
            .await
    }
}
