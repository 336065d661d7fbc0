//! Password hashing, verification and strength rules.
//!
//! New hashes are argon2id with OWASP's parameters (19 MiB, t=2, p=1). Hashes imported from GoTrue or
//! elsewhere verify too: bcrypt (`$2a$`, `$2b$`, `$2y$`: GoTrue's own), argon2i/argon2id PHC strings
//! (within GoTrue's limits) and Firebase scrypt (`$fbscrypt$`). Anything that is not our current
//! argon2id asks to be re-hashed after a successful sign-in.
//!
//! Hashing is CPU-bound and slow on purpose: [`PasswordHasher`] runs it on tokio's blocking pool behind
//! a semaphore sized to the cores, so a burst of sign-ins queues instead of starving the async
//! threads or the machine.

use std::cell::RefCell;
use std::sync::Arc;

use anyhow::{Context, anyhow, bail};
use argon2::password_hash::phc::PasswordHash;
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use subtle::ConstantTimeEq;

use auth_core::config::PasswordConfig;
use auth_core::error::{ErrorCode, ServiceError, WEAK_PASSWORD_REASONS_KEY};

/// GoTrue refuses passwords longer than bcrypt can hash; we keep the rule so clients see the same answer.
pub const MAX_PASSWORD_LENGTH: usize = 72;

const ARGON2_MEMORY_KIB: u32 = 19 * 1024;
const ARGON2_TIME: u32 = 2;
const ARGON2_LANES: u32 = 1;

const ARGON2_SALT_BYTES: usize = 16;
const ARGON2_OUTPUT_BYTES: usize = 32;

thread_local! {
    /// Each hashing thread keeps one argon2 working area (19 MiB at the current parameters) and
    /// reuses it. Allocating it per hash, as `Argon2::hash_password` does, scatters those blocks over
    /// malloc's per-thread arenas: measured 230 MiB resident after 20 concurrent sign-ins, against
    /// 53 MiB with reuse.
    static ARGON2_MEMORY: RefCell<Vec<argon2::Block>> = const { RefCell::new(Vec::new()) };
}

/// Raw argon2 output for `password` and `salt`. Jobs within the current parameters' memory use the
/// thread's reusable area; bigger imported hashes get a one-off allocation.
fn argon2_raw(
    algorithm: Algorithm,
    params: Params,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> anyhow::Result<()> {
    let blocks = params.block_count();
    let argon2 = Argon2::new(algorithm, Version::V0x13, params);
    let result = if blocks <= ARGON2_MEMORY_KIB as usize {
        ARGON2_MEMORY.with_borrow_mut(|memory| {
            if memory.len() < ARGON2_MEMORY_KIB as usize {
                memory.resize(ARGON2_MEMORY_KIB as usize, argon2::Block::new());
            }
            argon2.hash_password_into_with_memory(password, salt, out, &mut memory[..])
        })
    } else {
        argon2.hash_password_into(password, salt, out)
    };
    result.map_err(|e| anyhow!("argon2 failed: {e}"))
}

/// Hashes with the current scheme (argon2id), in PHC string format. Blocking: call through
/// [`PasswordHasher`].
pub fn hash_blocking(password: &str) -> anyhow::Result<String> {
    let salt: [u8; ARGON2_SALT_BYTES] = rand::random();
    let mut output = [0u8; ARGON2_OUTPUT_BYTES];
    let params = Params::new(ARGON2_MEMORY_KIB, ARGON2_TIME, ARGON2_LANES, Some(ARGON2_OUTPUT_BYTES))
        .map_err(|e| anyhow!("argon2 parameters: {e}"))?;
    argon2_raw(Algorithm::Argon2id, params, password.as_bytes(), &salt, &mut output)?;
    Ok(format!(
        "$argon2id$v=19$m={ARGON2_MEMORY_KIB},t={ARGON2_TIME},p={ARGON2_LANES}${}${}",
        STANDARD_NO_PAD.encode(salt),
        STANDARD_NO_PAD.encode(output)
    ))
}

/// The outcome of checking a password against a stored hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    pub matches: bool,
    /// The stored hash uses an older scheme or weaker parameters: store a new hash.
    pub needs_rehash: bool,
}

/// Checks `password` against `stored`. Blocking: call through [`PasswordHasher`].
/// A malformed stored hash is an error (logged by the caller), never a match.
pub fn verify_blocking(password: &str, stored: &str) -> anyhow::Result<Verified> {
    if stored.starts_with("$2a$") || stored.starts_with("$2b$") || stored.starts_with("$2y$") {
        let matches = bcrypt::verify(password, stored).context("malformed bcrypt hash")?;
        return Ok(Verified {
            matches,
            needs_rehash: true,
        });
    }
    if stored.starts_with("$argon2") {
        return verify_argon2(password, stored);
    }
    if stored.starts_with("$fbscrypt$") {
        let matches = verify_firebase_scrypt(password, stored)?;
        return Ok(Verified {
            matches,
            needs_rehash: true,
        });
    }
    bail!("unrecognised password hash format")
}

/// Whether `stored` is a hash the suite can import and later verify (admin `password_hash`): bcrypt
/// (`$2a$`/`$2b$`/`$2y$`, cost 4–31), argon2i/argon2id in PHC format, or Firebase scrypt. Checks the
/// shape only, without computing anything, so a hostile cost cannot tie up the hashing workers.
pub fn check_importable_hash(stored: &str) -> anyhow::Result<()> {
    if stored.starts_with("$2a$") || stored.starts_with("$2b$") || stored.starts_with("$2y$") {
        let cost: u32 = stored
            .get(4..6)
            .and_then(|c| c.parse().ok())
            .context("malformed bcrypt hash")?;
        if stored.len() != 60 || stored.as_bytes()[6] != b'$' || !(4..=31).contains(&cost) {
            bail!("malformed bcrypt hash");
        }
        return Ok(());
    }
    if stored.starts_with("$argon2") {
        let parsed = PasswordHash::new(stored).map_err(|e| anyhow!("malformed argon2 hash: {e}"))?;
        if !matches!(parsed.algorithm.as_str(), "argon2id" | "argon2i") || parsed.hash.is_none() {
            bail!("unsupported argon2 hash");
        }
        return Ok(());
    }
    if let Some(rest) = stored.strip_prefix("$fbscrypt$") {
        if rest.splitn(3, '$').filter(|s| !s.is_empty()).count() != 3 {
            bail!("malformed fbscrypt hash");
        }
        return Ok(());
    }
    bail!("unrecognised password hash format")
}

fn verify_argon2(password: &str, stored: &str) -> anyhow::Result<Verified> {
    let parsed = PasswordHash::new(stored).map_err(|e| anyhow!("malformed argon2 hash: {e}"))?;
    let algorithm = parsed.algorithm.as_str();
    if algorithm != "argon2id" && algorithm != "argon2i" {
        bail!("unsupported argon2 variant {algorithm}");
    }
    // GoTrue's import limits: v=19 only, m ≤ 1 GiB, t ≤ 20, p ≤ 16, no key id or associated data.
    let params = &parsed.params;
    let param = |name: &str| params.get_decimal(name).unwrap_or(0);
    if parsed.version.unwrap_or(0x13) != 0x13 {
        bail!("unsupported argon2 version");
    }
    if param("m") > 1024 * 1024 || param("t") > 20 || param("p") > 16 {
        bail!("argon2 parameters exceed the accepted limits");
    }
    if params.get_str("keyid").is_some() || params.get_str("data").is_some() {
        bail!("argon2 hashes with keyid or data are not supported");
    }
    let (Some(salt), Some(expected)) = (&parsed.salt, &parsed.hash) else {
        bail!("argon2 hash without salt or output");
    };
    let algorithm_id = if algorithm == "argon2id" {
        Algorithm::Argon2id
    } else {
        Algorithm::Argon2i
    };
    let params = Params::new(param("m"), param("t"), param("p"), Some(expected.len()))
        .map_err(|e| anyhow!("argon2 parameters: {e}"))?;
    let mut computed = vec![0u8; expected.len()];
    argon2_raw(algorithm_id, params, password.as_bytes(), salt, &mut computed)?;
    let matches: bool = computed.ct_eq(expected.as_bytes()).into();
    let current = algorithm == "argon2id"
        && param("m") == ARGON2_MEMORY_KIB
        && param("t") == ARGON2_TIME
        && param("p") == ARGON2_LANES;
    Ok(Verified {
        matches,
        needs_rehash: !current,
    })
}

/// Firebase's modified scrypt: the scrypt key of (password, salt ‖ salt separator) encrypts the
/// project's signer key with AES-256-CTR (zero IV); the ciphertext is the stored hash.
/// Format: `$fbscrypt$v=1,n=<log2 N>,r=<r>,p=<p>,ss=<b64>,sk=<b64>$<b64 salt>$<b64 hash>`.
fn verify_firebase_scrypt(password: &str, stored: &str) -> anyhow::Result<bool> {
    use aes::cipher::{KeyIvInit, StreamCipher};

    let mut sections = stored.strip_prefix("$fbscrypt$").unwrap_or_default().splitn(3, '$');
    let (Some(params), Some(salt), Some(hash)) = (sections.next(), sections.next(), sections.next()) else {
        bail!("malformed fbscrypt hash");
    };
    let mut version = None;
    let (mut log_n, mut rounds, mut lanes) = (0u8, 0u32, 0u32);
    let (mut separator, mut signer_key) = (Vec::new(), Vec::new());
    for pair in params.split(',') {
        let (name, value) = pair.split_once('=').context("malformed fbscrypt parameter")?;
        match name {
            "v" => version = Some(value.to_string()),
            "n" => log_n = value.parse().context("fbscrypt n")?,
            "r" => rounds = value.parse().context("fbscrypt r")?,
            "p" => lanes = value.parse().context("fbscrypt p")?,
            "ss" => separator = STANDARD.decode(value).context("fbscrypt ss")?,
            "sk" => signer_key = STANDARD.decode(value).context("fbscrypt sk")?,
            _ => bail!("unknown fbscrypt parameter {name}"),
        }
    }
    if version.as_deref() != Some("1") {
        bail!("only fbscrypt v=1 is supported");
    }
    if log_n == 0 || rounds == 0 || lanes == 0 {
        bail!("fbscrypt n, r and p must be positive");
    }
    let mut salted = STANDARD.decode(salt).context("fbscrypt salt")?;
    salted.extend_from_slice(&separator);
    let expected = STANDARD.decode(hash).context("fbscrypt hash")?;

    let scrypt_params = scrypt::Params::new(log_n, rounds, lanes).map_err(|e| anyhow!("fbscrypt parameters: {e}"))?;
    let mut key = [0u8; 32];
    scrypt::scrypt(password.as_bytes(), &salted, &scrypt_params, &mut key).map_err(|e| anyhow!("scrypt: {e}"))?;

    let mut derived = signer_key;
    let mut cipher = ctr::Ctr128BE::<aes::Aes256>::new_from_slices(&key, &[0u8; 16])
        .map_err(|e| anyhow!("aes-ctr key setup: {e}"))?;
    cipher.apply_keystream(&mut derived);
    Ok(derived.ct_eq(&expected).into())
}

type Job = Box<dyn FnOnce() + Send>;

/// Runs hashing on a fixed set of worker threads, one per core.
///
/// Not tokio's blocking pool: that pool grows to hundreds of threads, and every thread that once ran
/// a 19 MiB argon2 job keeps that memory in its malloc arena. A fixed set keeps the peak at
/// `workers × 19 MiB`, and a burst of sign-ins queues here instead of starving the async threads.
#[derive(Clone)]
pub struct PasswordHasher {
    jobs: std::sync::mpsc::SyncSender<Job>,
    load: Arc<HashingLoad>,
}

/// Jobs waiting for a hashing thread and jobs running, exported as `password_hash_queue_depth` and
/// `password_hashes_in_progress` (see `auth_core::metrics`).
#[derive(Default)]
struct HashingLoad {
    queued: std::sync::atomic::AtomicI64,
    running: std::sync::atomic::AtomicI64,
}

impl HashingLoad {
    fn change(&self, queued: i64, running: i64) {
        use std::sync::atomic::Ordering::Relaxed;
        let queued = self.queued.fetch_add(queued, Relaxed) + queued;
        let running = self.running.fetch_add(running, Relaxed) + running;
        ::metrics::gauge!("password_hash_queue_depth").set(queued as f64);
        ::metrics::gauge!("password_hashes_in_progress").set(running as f64);
    }
}

impl Default for PasswordHasher {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self::new(cores)
    }
}

impl PasswordHasher {
    pub fn new(workers: usize) -> Self {
        let workers = workers.max(1);
        // A bounded queue: callers wait (asynchronously, see `run`) rather than pile up unbounded work.
        let (jobs, queue) = std::sync::mpsc::sync_channel::<Job>(workers * 64);
        let queue = Arc::new(std::sync::Mutex::new(queue));
        for index in 0..workers {
            let queue = queue.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("password-hasher-{index}"))
                .spawn(move || {
                    loop {
                        // The lock is held only while taking a job, never while running it.
                        let job = match queue.lock() {
                            Ok(receiver) => receiver.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(),
                            Err(_) => return, // every hasher handle is gone
                        }
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a password hashing thread");
            }
        }
        Self {
            jobs,
            load: Arc::default(),
        }
    }

    async fn run<T: Send + 'static>(&self, job: impl FnOnce() -> T + Send + 'static) -> anyhow::Result<T> {
        let (done, result) = tokio::sync::oneshot::channel();
        let load = self.load.clone();
        load.change(1, 0);
        let job: Job = Box::new(move || {
            load.change(-1, 1);
            let _ = done.send(job());
            load.change(0, -1);
        });
        match self.jobs.try_send(job) {
            Ok(()) => {}
            Err(std::sync::mpsc::TrySendError::Full(job)) => {
                // A full queue: wait for room off the async threads.
                let jobs = self.jobs.clone();
                tokio::task::spawn_blocking(move || jobs.send(job))
                    .await
                    .context("password hasher queue task failed")?
                    .map_err(|_| anyhow!("password hasher stopped"))?;
            }
            Err(std::sync::mpsc::TrySendError::Disconnected(_)) => bail!("password hasher stopped"),
        }
        result.await.context("password hashing job was dropped")
    }

    pub async fn hash(&self, password: &str) -> anyhow::Result<String> {
        let password = password.to_string();
        self.run(move || hash_blocking(&password)).await?
    }

    pub async fn verify(&self, password: &str, stored: &str) -> anyhow::Result<Verified> {
        let (password, stored) = (password.to_string(), stored.to_string());
        self.run(move || verify_blocking(&password, &stored)).await?
    }

    /// Spends the time of one verification without a stored hash, so that an unknown account and a
    /// wrong password take the same time to refuse.
    pub async fn verify_nothing(&self, password: &str) {
        let password = password.to_string();
        let _ = self
            .run(move || {
                let decoy = decoy_hash();
                verify_blocking(&password, decoy)
            })
            .await;
    }
}

/// A fixed argon2id hash with the current parameters, used to burn the same time as a real check.
#[expect(clippy::expect_used, reason = "hashing a constant with valid parameters cannot fail")]
fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_blocking("decoy password never matched").expect("hashing a constant"))
}

/// GoTrue's `checkPasswordStrength` (without the HaveIBeenPwned lookup): 400 for over-long passwords,
/// else 422 `weak_password` with every failed rule in the message and `reasons`.
pub fn check_strength(config: &PasswordConfig, password: &str) -> Result<(), ServiceError> {
    if password.len() > MAX_PASSWORD_LENGTH {
        return Err(ServiceError::bad_request(
            ErrorCode::ValidationFailed,
            format!("Password cannot be longer than {MAX_PASSWORD_LENGTH} characters"),
        ));
    }
    let mut messages = Vec::new();
    let mut reasons = Vec::new();
    if password.chars().count() < config.min_length {
        reasons.push("length");
        messages.push(format!("Password should be at least {} characters.", config.min_length));
    }
    let missing_set = config
        .required_characters
        .iter()
        .any(|set| !set.is_empty() && !password.chars().any(|c| set.contains(c)));
    if missing_set {
        reasons.push("characters");
        messages.push(format!(
            "Password should contain at least one character of each: {}.",
            config.required_characters.join(", ")
        ));
    }
    if reasons.is_empty() {
        Ok(())
    } else {
        Err(weak_password_error(messages.join(" "), &reasons))
    }
}

pub fn weak_password_error(message: String, reasons: &[&str]) -> ServiceError {
    ServiceError::unprocessable(ErrorCode::WeakPassword, message)
        .with_metadata(WEAK_PASSWORD_REASONS_KEY, reasons.join(","))
}

#[cfg(test)]
mod tests {
    use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};

    use super::*;

    #[test]
    fn our_argon2id_strings_verify_with_the_reference_crate_api() {
        let hash = hash_blocking("correct horse").expect("hash");
        let parsed = PasswordHash::new(&hash).expect("PHC string");
        assert!(Argon2::default().verify_password(b"correct horse", &parsed).is_ok());
        assert!(Argon2::default().verify_password(b"wrong horse", &parsed).is_err());
    }

    #[test]
    fn imported_hashes_bigger_than_the_reusable_area_verify() {
        let params = Params::new(ARGON2_MEMORY_KIB * 2, 1, 2, None).expect("params");
        let hash = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password_with_salt(b"s3cret", b"somesaltsomesalt")
            .expect("hash")
            .to_string();
        let ok = verify_blocking("s3cret", &hash).expect("verify");
        assert!(ok.matches && ok.needs_rehash);
        assert!(!verify_blocking("s3cre7", &hash).expect("verify").matches);
    }

    #[test]
    fn argon2id_round_trip_needs_no_rehash() {
        let hash = hash_blocking("correct horse").expect("hash");
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        let ok = verify_blocking("correct horse", &hash).expect("verify");
        assert_eq!(
            ok,
            Verified {
                matches: true,
                needs_rehash: false
            }
        );
        assert!(!verify_blocking("wrong horse", &hash).expect("verify").matches);
    }

    #[test]
    fn bcrypt_verifies_and_asks_for_upgrade() {
        let hash = bcrypt::hash_with_salt("test123", 4, [7u8; 16])
            .expect("bcrypt")
            .format_for_version(bcrypt::Version::TwoA);
        let ok = verify_blocking("test123", &hash).expect("verify");
        assert_eq!(
            ok,
            Verified {
                matches: true,
                needs_rehash: true
            }
        );
        assert!(!verify_blocking("test124", &hash).expect("verify").matches);
    }

    #[test]
    fn argon2i_with_other_parameters_verifies_and_asks_for_upgrade() {
        let params = Params::new(4096, 3, 1, None).expect("params");
        let hash = Argon2::new(Algorithm::Argon2i, Version::V0x13, params)
            .hash_password_with_salt(b"s3cret", b"somesaltsomesalt")
            .expect("hash")
            .to_string();
        let ok = verify_blocking("s3cret", &hash).expect("verify");
        assert_eq!(
            ok,
            Verified {
                matches: true,
                needs_rehash: true
            }
        );
    }

    #[test]
    fn firebase_scrypt_matches_an_independent_implementation() {
        // Produced with Python's hashlib.scrypt + AES-256-CTR (cryptography), not with this code.
        let stored = "$fbscrypt$v=1,n=14,r=8,p=1,ss=Bw==,sk=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+Pw==$c2FsdHNhbHRzYWx0$m0Be//B1PLjk5b3EHWElUQykuue0ssk2ceta2zmlU+Aog6jDav7mMgRrEVPurwREUbcDnDFX+ig9qTEpCyK+Yw==";
        let ok = verify_blocking("user1password", stored).expect("verify");
        assert_eq!(
            ok,
            Verified {
                matches: true,
                needs_rehash: true
            }
        );
        assert!(!verify_blocking("user2password", stored).expect("verify").matches);
    }

    #[test]
    fn strength_rules_follow_gotrue() {
        let config = PasswordConfig {
            min_length: 8,
            required_characters: vec!["abc".into(), "123".into()],
        };
        let err = check_strength(&config, "xyz").unwrap_err();
        assert_eq!(err.http_status, 422);
        assert_eq!(
            err.message,
            "Password should be at least 8 characters. Password should contain at least one character of each: abc, 123."
        );
        assert_eq!(err.metadata[WEAK_PASSWORD_REASONS_KEY], "length,characters");
        assert!(check_strength(&config, "a1xxxxxxx").is_ok());
        assert_eq!(check_strength(&config, &"a1".repeat(40)).unwrap_err().http_status, 400);
    }
}
