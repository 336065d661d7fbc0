//! Password hashes as stored in `users.encrypted_password`: sealed with the user's id when
//! `GOTRUE_SECURITY_DB_ENCRYPTION_ENCRYPT` is on (GoTrue's `SetPassword`), opened before checking
//! (GoTrue's `Authenticate`), so accounts move between GoTrue and the suite whichever wrote them.

use auth_account::db_encryption;
use uuid::Uuid;

use crate::password::Verified;
use crate::state::UserState;

impl UserState {
    /// The value to store for `password` as the password of `user_id`.
    pub async fn hash_password(&self, user_id: Uuid, password: &str) -> anyhow::Result<String> {
        let hash = self.hasher.hash(password).await?;
        Ok(db_encryption::seal(
            &self.config.security.db_encryption,
            &user_id.to_string(),
            &hash,
        )?)
    }

    /// Checks `password` against what `user_id` has stored. `needs_rehash` also asks for a new
    /// value when the stored one should be sealed (anew).
    pub async fn verify_password(&self, user_id: Uuid, password: &str, stored: &str) -> anyhow::Result<Verified> {
        let encryption = &self.config.security.db_encryption;
        let hash = db_encryption::open(encryption, &user_id.to_string(), stored)?;
        let mut verified = self.hasher.verify(password, &hash).await?;
        verified.needs_rehash |= db_encryption::needs_resealing(encryption, stored);
        Ok(verified)
    }
}
