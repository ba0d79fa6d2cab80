//! The single writer: one connection owned by a dedicated thread, fed by a channel.
//!
//! Async callers send a job and await its reply, so they never block the runtime and never
//! contend for SQLite's write lock. The thread drains whatever jobs are queued (up to
//! `max_batch`) and runs them in ONE transaction, each inside its own savepoint (a failing job
//! rolls back alone): group commit. Replies are sent only after COMMIT returned, so an `Ok`
//! reply means the write is durable.

use std::sync::mpsc;
use std::thread::JoinHandle;

use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::{MemoryError, Result};

/// Delivers a job's outcome once the transaction's fate is known (`Some` = commit failed).
type Reply = Box<dyn FnOnce(Option<&str>) + Send>;
/// A unit of work run on the writer connection (`None`: its transaction could not begin, so it
/// must not run and only reports the failure).
type Job = Box<dyn FnOnce(Option<&Connection>) -> Reply + Send>;

/// Handle to the writer thread. Dropping the last handle stops the thread after it finished
/// the queued jobs.
#[derive(Debug)]
pub(crate) struct Writer {
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
}

impl Writer {
    /// Starts the writer thread that owns `conn`.
    pub(crate) fn start(conn: Connection, max_batch: usize) -> Result<Self> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("agentd-memory-writer".into())
            .spawn(move || run(&conn, &queue, max_batch.max(1)))
            .map_err(|error| MemoryError::Worker {
                message: format!("cannot start the writer thread: {error}"),
            })?;
        Ok(Self {
            jobs: Some(jobs),
            thread: Some(thread),
        })
    }

    /// Runs `work` in the writer's transaction and returns its result once committed.
    pub(crate) async fn write<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let (reply_to, reply) = oneshot::channel::<Result<T>>();
        let job: Job = Box::new(move |conn| {
            let outcome = match conn {
                Some(conn) => in_savepoint(conn, work),
                None => Err(MemoryError::WriterStopped),
            };
            Box::new(move |commit_error: Option<&str>| {
                let outcome = match commit_error {
                    Some(message) => Err(MemoryError::Commit {
                        message: message.to_owned(),
                    }),
                    None => outcome,
                };
                // The caller may have gone away (cancelled future); the write stands anyway.
                let _ = reply_to.send(outcome);
            })
        });
        self.jobs
            .as_ref()
            .ok_or(MemoryError::WriterStopped)?
            .send(job)
            .map_err(|_| MemoryError::WriterStopped)?;
        reply.await.map_err(|_| MemoryError::WriterStopped)?
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Closing the channel ends the thread's loop once the queue is drained; joining makes
        // "the store was dropped" mean "the file is closed".
        drop(self.jobs.take());
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the store's writer thread panicked");
        }
    }
}

/// Runs one cached control statement (`SAVEPOINT`, `COMMIT`...).
fn control(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(drop)
}

fn in_savepoint<T>(conn: &Connection, work: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
    control(conn, "SAVEPOINT job").map_err(MemoryError::sqlite("savepoint"))?;
    match work(conn) {
        Ok(value) => {
            control(conn, "RELEASE job").map_err(MemoryError::sqlite("savepoint release"))?;
            Ok(value)
        }
        Err(error) => {
            let rollback =
                control(conn, "ROLLBACK TO job").and_then(|()| control(conn, "RELEASE job"));
            if let Err(rollback) = rollback {
                tracing::error!(%rollback, "rolling back a failed write job");
            }
            Err(error)
        }
    }
}

fn run(conn: &Connection, queue: &mpsc::Receiver<Job>, max_batch: usize) {
    let mut batch: Vec<Job> = Vec::with_capacity(max_batch);
    let mut replies: Vec<Reply> = Vec::with_capacity(max_batch);
    while let Ok(first) = queue.recv() {
        batch.push(first);
        while batch.len() < max_batch {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let _span = tracing::trace_span!("group_commit", jobs = batch.len()).entered();
        if let Err(error) = control(conn, "BEGIN IMMEDIATE") {
            let message = error.to_string();
            tracing::error!(%message, "cannot begin a write transaction");
            batch.drain(..).for_each(|job| job(None)(Some(&message)));
            continue;
        }
        replies.extend(batch.drain(..).map(|job| job(Some(conn))));
        let commit_error = control(conn, "COMMIT").err().map(|error| {
            let message = error.to_string();
            tracing::error!(%message, "group commit failed");
            let _ = conn.execute_batch("ROLLBACK");
            message
        });
        replies
            .drain(..)
            .for_each(|reply| reply(commit_error.as_deref()));
    }
}
