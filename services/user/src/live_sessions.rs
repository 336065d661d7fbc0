//! "Is this session still open?", asked of Postgres for every `GET /user` answered from the account
//! cache, in batches.
//!
//! The account cache may serve a user from memory, but never a session that has ended: a logout
//! answered by another replica must hold here from its 204 on, and Postgres' change notification
//! arrives a moment after the commit. So each cache hit is confirmed by a read. One read per request
//! cost a third of `GET /user`'s throughput; here the requests that arrive together share one
//! statement (`WHERE s.id = ANY($1)`).
//!
//! Why a batch answer is still current for each request in it: a request is queued before the
//! statement that answers it starts, so the statement sees every change committed before the
//! request arrived, such as a logout whose 204 the client had already received.

use std::sync::Arc;

use tokio::sync::{Mutex, mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Sessions confirmed by one statement at most.
const BATCH_LIMIT: usize = 256;
/// Statements in flight at once: a batch waits for the one before it only when all are busy.
const WORKERS: usize = 4;

/// The handle requests ask through; cheap to clone.
#[derive(Clone)]
pub struct LiveSessions {
    db: sqlx::PgPool,
    queue: mpsc::Sender<Question>,
}

struct Question {
    session_id: Uuid,
    user_id: Uuid,
    answer: oneshot::Sender<Result<bool, Arc<sqlx::Error>>>,
}

impl LiveSessions {
    /// Starts the workers, which stop with `shutdown`.
    pub fn spawn(db: sqlx::PgPool, shutdown: &CancellationToken) -> Self {
        let (queue, questions) = mpsc::channel(BATCH_LIMIT * WORKERS);
        let questions = Arc::new(Mutex::new(questions));
        for _ in 0..WORKERS {
            let db = db.clone();
            let questions = questions.clone();
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                tokio::select! {
                    () = shutdown.cancelled() => {}
                    () = answer_batches(&db, &questions) => {}
                }
            });
        }
        Self { db, queue }
    }

    /// Whether `session_id` is still a session of `user_id` and the user is not banned, as
    /// committed now.
    pub async fn still_signed_in(&self, user_id: Uuid, session_id: Uuid) -> sqlx::Result<bool> {
        let (answer, reply) = oneshot::channel();
        let question = Question {
            session_id,
            user_id,
            answer,
        };
        if self.queue.send(question).await.is_ok()
            && let Ok(result) = reply.await
        {
            return result.map_err(|shared| sqlx::Error::Protocol(shared.to_string()));
        }
        // The workers are gone (shutting down): ask directly.
        let open = open_sessions(&self.db, &[session_id]).await?;
        Ok(open.contains(&(session_id, user_id)))
    }
}

/// One worker: takes every question waiting (up to the limit), answers them with one statement.
async fn answer_batches(db: &sqlx::PgPool, questions: &Mutex<mpsc::Receiver<Question>>) {
    let mut batch = Vec::with_capacity(BATCH_LIMIT);
    loop {
        {
            let mut questions = questions.lock().await;
            if questions.recv_many(&mut batch, BATCH_LIMIT).await == 0 {
                return; // every handle is gone
            }
        }
        let ids: Vec<Uuid> = batch.iter().map(|q| q.session_id).collect();
        match open_sessions(db, &ids).await {
            Ok(open) => {
                for question in batch.drain(..) {
                    let _ = question
                        .answer
                        .send(Ok(open.contains(&(question.session_id, question.user_id))));
                }
            }
            Err(error) => {
                let error = Arc::new(error);
                for question in batch.drain(..) {
                    let _ = question.answer.send(Err(error.clone()));
                }
            }
        }
    }
}

/// The `(session, user)` pairs among `session_ids` that exist and whose user is not banned now.
async fn open_sessions(db: &sqlx::PgPool, session_ids: &[Uuid]) -> sqlx::Result<Vec<(Uuid, Uuid)>> {
    let open = sqlx::query!(
        "SELECT s.id, s.user_id FROM sessions s JOIN users u ON u.id = s.user_id \
         WHERE s.id = ANY($1) AND (u.banned_until IS NULL OR u.banned_until <= now())",
        session_ids
    )
    .fetch_all(db)
    .await?;
    Ok(open.into_iter().map(|session| (session.id, session.user_id)).collect())
}
