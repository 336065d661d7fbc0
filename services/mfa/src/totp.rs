//! TOTP as GoTrue configures it (pquerna/otp defaults): a 20-byte random secret, SHA-1, 6 digits,
//! 30-second steps, one step of skew either way. Codes are checked by totp-rs; the enrolment QR
//! code is an SVG document (qrcode), as GoTrue returns it (auth-js wraps it in a
//! `data:image/svg+xml` URI itself).

use qrcode::render::svg;
use qrcode::{EcLevel, QrCode};
use rand::RngCore;
use totp_rs::{Algorithm, Builder, Secret};

const DIGITS: u8 = 6;
const STEP_SECONDS: u64 = 30;
const SKEW_STEPS: u16 = 1;

/// A new factor's secret, as authenticator apps are given it.
pub struct Enrollment {
    /// base32, unpadded
    pub secret: String,
    pub uri: String,
    pub qr_code_svg: String,
}

/// A fresh secret for `account_name` (the user's email) at `issuer`. Fails, as GoTrue's QR code
/// generation does, for an empty account name.
pub fn enroll(issuer: &str, account_name: &str) -> anyhow::Result<Enrollment> {
    anyhow::ensure!(
        !account_name.is_empty(),
        "a TOTP factor needs the user's email as its account name"
    );
    let mut bytes = [0u8; 20];
    rand::rng().fill_bytes(&mut bytes);
    let secret = Secret::from(bytes).to_base32();
    let uri = key_uri(issuer, account_name, &secret)?;
    // GoTrue's QR code: error correction H, three pixels a module.
    let qr_code_svg = QrCode::with_error_correction_level(uri.as_bytes(), EcLevel::H)?
        .render::<svg::Color<'_>>()
        .module_dimensions(3, 3)
        .build();
    Ok(Enrollment {
        secret,
        uri,
        qr_code_svg,
    })
}

/// The Key URI as pquerna/otp (GoTrue's library) writes it: label `issuer:account`, parameters in
/// alphabetical order. totp-rs writes URIs too, but refuses an issuer with a `:`, and GoTrue's
/// default issuer is the site's host *with its port*.
fn key_uri(issuer: &str, account_name: &str, secret: &str) -> anyhow::Result<String> {
    let mut uri = url::Url::parse("otpauth://totp/")?;
    uri.set_path(&format!("/{issuer}:{account_name}"));
    uri.query_pairs_mut()
        .append_pair("algorithm", "SHA1")
        .append_pair("digits", &DIGITS.to_string())
        .append_pair("issuer", issuer)
        .append_pair("period", &STEP_SECONDS.to_string())
        .append_pair("secret", secret);
    Ok(uri.into())
}

/// The time step `code` is valid for at `unix_seconds` (±1 step), given the stored base32 secret;
/// `None` for a wrong code or an unreadable secret.
pub fn accepted_step(secret_base32: &str, code: &str, unix_seconds: u64) -> Option<u64> {
    let secret = Secret::try_from_base32(secret_base32).ok()?;
    // The account name and issuer only shape the URI; checking a code needs neither.
    let totp = Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(DIGITS)
        .with_skew(SKEW_STEPS)
        .with_step_duration(STEP_SECONDS)
        .with_secret(secret)
        .build_noncompliant();
    totp.check(code.trim(), unix_seconds)
}

pub fn invalid_code() -> auth_core::ServiceError {
    auth_core::ServiceError::unprocessable(auth_core::ErrorCode::MfaVerificationFailed, "Invalid TOTP code entered")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_enrolled_secret_checks_its_own_codes_within_one_step() {
        let enrollment = enroll("localhost:3000", "user+mfa@example.com").expect("enrols");
        assert_eq!(
            enrollment.uri,
            format!(
                "otpauth://totp/localhost:3000:user+mfa@example.com?algorithm=SHA1&digits=6\
                 &issuer=localhost%3A3000&period=30&secret={}",
                enrollment.secret
            )
        );
        assert!(enrollment.qr_code_svg.contains("<svg") && enrollment.qr_code_svg.contains("</svg>"));
        let secret = Secret::try_from_base32(&enrollment.secret).expect("base32");
        assert_eq!(secret.as_ref().len(), 20);

        let totp = Builder::new()
            .with_algorithm(Algorithm::SHA1)
            .with_digits(DIGITS)
            .with_step_duration(STEP_SECONDS)
            .with_secret(secret)
            .build_noncompliant();
        let now = 1_800_000_000;
        let code = |at: u64| totp.generate(at).to_string();
        let step = now / STEP_SECONDS;
        assert_eq!(accepted_step(&enrollment.secret, &code(now), now), Some(step));
        assert_eq!(accepted_step(&enrollment.secret, &code(now - 30), now), Some(step - 1));
        assert_eq!(accepted_step(&enrollment.secret, &code(now + 30), now), Some(step + 1));
        assert_eq!(accepted_step(&enrollment.secret, &code(now - 60), now), None);
        assert_eq!(accepted_step(&enrollment.secret, "not a code", now), None);
    }

    #[test]
    fn a_user_without_an_email_cannot_enrol() {
        assert!(enroll("example.com", "").is_err());
    }
}
