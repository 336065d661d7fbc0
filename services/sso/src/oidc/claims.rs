//! An ID token's claims as an identity, per issuer (GoTrue's `ParseIDToken` parsers): Google,
//! Apple, Azure, Kakao, Facebook (Limited Login), LinkedIn, Snapchat, and every other issuer read
//! generically (its standard claims as they are).

use serde_json::{Map, Value, json};

use super::IdToken;
use crate::providers::UserData;
use crate::providers::claims::{Claims, Email, flag, primary_email, text};

pub const GOOGLE: &str = "https://accounts.google.com";
pub const APPLE: [&str; 2] = ["https://appleid.apple.com", "https://account.apple.com"];
pub const FACEBOOK: &str = "https://www.facebook.com";
pub const KAKAO: &str = "https://kauth.kakao.com";
pub const LINKEDIN: &str = "https://www.linkedin.com/oauth";
pub const SNAPCHAT: &str = "https://accounts.snapchat.com/accounts/oauth2/token";
pub const VERCEL_MARKETPLACE: &str = "https://marketplace.vercel.com";

/// `https://login.microsoftonline.com/{tenant}/v2.0` (GoTrue's `IsAzureIssuer`).
pub fn is_azure_issuer(issuer: &str) -> bool {
    issuer
        .strip_prefix("https://login.microsoftonline.com/")
        .and_then(|rest| rest.strip_suffix("/v2.0").or_else(|| rest.strip_suffix("/v2.0/")))
        .is_some_and(|tenant| !tenant.is_empty() && !tenant.contains('/'))
}

pub fn is_apple_issuer(issuer: &str) -> bool {
    APPLE.contains(&issuer)
}

/// The identity an ID token describes, read as its issuer's parser reads it. `provider` names the
/// parser where the issuer cannot (Google through a stand-in issuer).
pub fn user_data(token: &IdToken, provider: &str) -> Result<UserData, String> {
    let claims = &token.claims;
    let issuer = token.issuer.as_str();
    Ok(match issuer {
        // The provider names the parser first (a stand-in issuer cannot), then the issuer.
        _ if provider == "google" => google(token),
        _ if provider == "apple" => apple(token),
        _ if provider == "azure" => azure(token),
        _ if provider == "linkedin_oidc" => linkedin(token)?,
        _ if provider == "vercel_marketplace" => vercel_marketplace(token),
        GOOGLE => google(token),
        LINKEDIN => linkedin(token)?,
        KAKAO => kakao(token),
        FACEBOOK => facebook(token),
        VERCEL_MARKETPLACE => vercel_marketplace(token),
        SNAPCHAT => {
            let mut data = generic(token);
            if !data.claims.email.is_empty() {
                data.emails = primary_email(data.claims.email.clone(), true);
                data.claims.email_verified = true;
            }
            data
        }
        _ if is_azure_issuer(issuer) => azure(token),
        _ if is_apple_issuer(issuer) => apple(token),
        _ => {
            let _ = claims;
            generic(token)
        }
    })
}

fn google(token: &IdToken) -> UserData {
    let c = &token.claims;
    let verified = flag(c, "verified_email") || flag(c, "email_verified");
    let mut custom_claims = Map::new();
    let hd = text(c, "hd");
    if !hd.is_empty() {
        custom_claims.insert("hd".into(), json!(hd));
    }
    let picture = text(c, "picture");
    UserData {
        emails: primary_email(text(c, "email"), verified),
        claims: Claims {
            issuer: token.issuer.clone(),
            subject: token.subject.clone(),
            name: text(c, "name"),
            picture: picture.clone(),
            custom_claims,
            avatar_url: picture,
            full_name: text(c, "name"),
            provider_id: token.subject.clone(),
            ..Default::default()
        },
    }
}

fn apple(token: &IdToken) -> UserData {
    let c = &token.claims;
    let mut custom_claims = Map::new();
    for name in ["is_private_email", "auth_time"] {
        if let Some(value) = c.get(name).filter(|v| !v.is_null()) {
            custom_claims.insert(name.into(), value.clone());
        }
    }
    let transfer_sub = text(c, "transfer_sub");
    if !transfer_sub.is_empty() {
        custom_claims.insert("transfer_sub".into(), json!(transfer_sub));
    }
    // Apple's emails are verified (relay addresses included); GoTrue lists even an empty one.
    UserData {
        emails: vec![Email {
            address: text(c, "email"),
            verified: true,
            primary: true,
        }],
        claims: Claims {
            issuer: token.issuer.clone(),
            subject: token.subject.clone(),
            custom_claims,
            provider_id: token.subject.clone(),
            ..Default::default()
        },
    }
}

/// Azure's `xms_edov` (email domain owner verified), `true` or `"1"`/`"true"`; without it an
/// email is taken as verified (single-tenant apps).
fn azure(token: &IdToken) -> UserData {
    let c = &token.claims;
    let email = text(c, "email");
    let verified = match c.get("xms_edov") {
        None | Some(Value::Null) => !email.is_empty(),
        Some(Value::Bool(v)) => !email.is_empty() && *v,
        Some(Value::String(v)) => !email.is_empty() && (v == "1" || v == "true"),
        Some(_) => false,
    };
    const NOT_CUSTOM: [&str; 16] = [
        "aud",
        "iss",
        "iat",
        "nbf",
        "exp",
        "c_hash",
        "at_hash",
        "aio",
        "nonce",
        "rh",
        "uti",
        "jti",
        "ver",
        "sub",
        "name",
        "preferred_username",
    ];
    let custom_claims = c
        .iter()
        .filter(|(name, _)| !NOT_CUSTOM.contains(&name.as_str()))
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect();
    UserData {
        emails: primary_email(email, verified),
        claims: Claims {
            issuer: token.issuer.clone(),
            subject: token.subject.clone(),
            preferred_username: text(c, "preferred_username"),
            custom_claims,
            full_name: text(c, "name"),
            provider_id: token.subject.clone(),
            ..Default::default()
        },
    }
}

fn kakao(token: &IdToken) -> UserData {
    let c = &token.claims;
    UserData {
        emails: primary_email(text(c, "email"), true),
        claims: Claims {
            issuer: token.issuer.clone(),
            subject: token.subject.clone(),
            name: text(c, "nickname"),
            preferred_username: text(c, "nickname"),
            provider_id: token.subject.clone(),
            picture: text(c, "picture"),
            ..Default::default()
        },
    }
}

/// Vercel Marketplace: the user's email is verified; a global user id, when given, is the subject.
fn vercel_marketplace(token: &IdToken) -> UserData {
    let c = &token.claims;
    let global = text(c, "global_user_id");
    let subject = if global.is_empty() {
        token.subject.clone()
    } else {
        format!("global_user_id:{global}")
    };
    UserData {
        emails: vec![Email {
            address: text(c, "user_email"),
            verified: true,
            primary: true,
        }],
        claims: Claims {
            issuer: token.issuer.clone(),
            subject: subject.clone(),
            provider_id: subject,
            name: text(c, "user_name"),
            picture: text(c, "user_avatar_url"),
            ..Default::default()
        },
    }
}

/// Facebook Limited Login tokens: their emails are verified.
fn facebook(token: &IdToken) -> UserData {
    let c = &token.claims;
    let email = text(c, "email");
    UserData {
        emails: primary_email(email.clone(), true),
        claims: Claims {
            issuer: token.issuer.clone(),
            subject: token.subject.clone(),
            name: text(c, "name"),
            picture: text(c, "picture"),
            provider_id: token.subject.clone(),
            email_verified: !email.is_empty(),
            email,
            ..Default::default()
        },
    }
}

/// LinkedIn sends `email_verified` as a string.
fn linkedin(token: &IdToken) -> Result<UserData, String> {
    let c = &token.claims;
    let verified = match c.get("email_verified") {
        Some(Value::String(v)) => v.parse::<bool>().map_err(|e| format!("email_verified: {e}"))?,
        Some(Value::Bool(v)) => *v,
        _ => return Err("email_verified: missing".into()),
    };
    let (given, family) = (text(c, "given_name"), text(c, "family_name"));
    Ok(UserData {
        emails: primary_email(text(c, "email"), verified),
        claims: Claims {
            issuer: token.issuer.clone(),
            subject: token.subject.clone(),
            name: format!("{given} {family}").trim().to_string(),
            given_name: given,
            family_name: family,
            locale: text(c, "locale"),
            picture: text(c, "picture"),
            provider_id: token.subject.clone(),
            ..Default::default()
        },
    })
}

/// Any other issuer: its standard claims as they are (GoTrue decodes them into its `Claims`).
fn generic(token: &IdToken) -> UserData {
    let claims = Claims {
        issuer: token.issuer.clone(),
        subject: token.subject.clone(),
        audience: token.audience.clone(),
        ..Claims::from_map(&token.claims)
    };
    UserData {
        emails: primary_email(claims.email.clone(), claims.email_verified),
        claims,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(issuer: &str, claims: Value) -> IdToken {
        let serde_json::Value::Object(claims) = claims else {
            return IdToken {
                issuer: issuer.into(),
                subject: String::new(),
                audience: Vec::new(),
                nonce: String::new(),
                access_token_hash: String::new(),
                claims: Map::new(),
            };
        };
        IdToken {
            issuer: issuer.into(),
            subject: "sub-1".into(),
            audience: vec!["client".into()],
            nonce: String::new(),
            access_token_hash: String::new(),
            claims,
        }
    }

    #[test]
    fn azure_trusts_an_email_only_with_the_domain_owner_flag_when_sent() {
        let issuer = "https://login.microsoftonline.com/tenant-1/v2.0";
        assert!(is_azure_issuer(issuer));
        assert!(!is_azure_issuer("https://login.microsoftonline.com/a/b/v2.0"));
        let unflagged = user_data(&token(issuer, json!({"email": "a@x.com"})), "azure").expect("parsed");
        assert!(unflagged.emails[0].verified);
        let refused = user_data(&token(issuer, json!({"email": "a@x.com", "xms_edov": "0"})), "azure").expect("parsed");
        assert!(!refused.emails[0].verified);
        let custom = user_data(
            &token(issuer, json!({"email": "a@x.com", "tid": "t", "nonce": "n"})),
            "azure",
        )
        .expect("parsed");
        assert_eq!(custom.claims.custom_claims.get("tid"), Some(&json!("t")));
        assert!(!custom.claims.custom_claims.contains_key("nonce"));
    }

    #[test]
    fn linkedin_reads_its_string_flag_and_generic_issuers_their_standard_claims() {
        let linkedin = user_data(
            &token(
                LINKEDIN,
                json!({"email": "a@x.com", "email_verified": "true", "given_name": "A", "family_name": "B"}),
            ),
            "linkedin_oidc",
        )
        .expect("parsed");
        assert!(linkedin.emails[0].verified);
        assert_eq!(linkedin.claims.name, "A B");
        let generic = user_data(
            &token(
                "https://idp.example",
                json!({"email": "a@x.com", "email_verified": true, "iat": 1.0, "exp": 2.0}),
            ),
            "keycloak",
        )
        .expect("parsed");
        let data = generic.identity_data();
        assert_eq!(data["aud"], json!(["client"]));
        assert_eq!(data["email_verified"], json!(true));
        assert_eq!(data["iat"], json!(1.0));
    }
}
