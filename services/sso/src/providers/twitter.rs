//! Twitter over OAuth 1.0a (GoTrue's `TwitterProvider`, with the `mrjones/oauth` flow it uses):
//! `/authorize` obtains a request token (its callback the redirect URI with the flow's `state`)
//! and sends the browser to `/oauth/authenticate`; the callback trades the request token and the
//! verifier for an access token and reads the user from `verify_credentials` (email included).
//! Every request is signed with HMAC-SHA1 and, as GoTrue's client sends them, the token requests
//! are GETs carrying `oauth_version="1.0"`. As in GoTrue, the request token's secret is not kept:
//! the access token request is signed with the consumer secret alone.

use auth_core::config::OAuthProviderConfig;
use oauth1_request as oauth;
use secrecy::ExposeSecret;

use super::claims::{Claims, UserData, primary_email};
use super::{Provider, choose_host};
use crate::http::{ApiError, ProviderHttp};

const DEFAULT_HOST: &str = "api.twitter.com";
const PROFILE_PATH: &str = "/1.1/account/verify_credentials.json";

pub struct Twitter {
    consumer_key: String,
    consumer_secret: String,
    redirect_uri: String,
    host: String,
    /// `GOTRUE_EXTERNAL_TWITTER_EMAIL_OPTIONAL`
    pub email_optional: bool,
}

/// What `verify_credentials` answers that GoTrue reads.
#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct TwitterUser {
    screen_name: String,
    name: String,
    profile_image_url_https: String,
    email: String,
    id_str: String,
}

fn field(pairs: &[(String, String)], name: &str) -> Option<String> {
    pairs
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.clone())
}

impl Twitter {
    /// The provider from `GOTRUE_EXTERNAL_TWITTER_*`, checked as every provider's settings are.
    pub fn from_config(config: Option<&OAuthProviderConfig>) -> Result<Self, String> {
        let config = Provider::check_config("twitter", config)?;
        Ok(Self {
            consumer_key: config.client_ids.first().cloned().unwrap_or_default(),
            consumer_secret: config
                .secret
                .as_ref()
                .map(|s| s.expose_secret().to_string())
                .unwrap_or_default(),
            redirect_uri: config.redirect_uri.clone().unwrap_or_default(),
            host: choose_host(config.url.as_deref(), DEFAULT_HOST),
            email_optional: config.email_optional,
        })
    }

    fn signer<'a>(&'a self, token: Option<(&'a str, &'a str)>) -> oauth::Builder<'a, oauth::HmacSha1, &'a str> {
        let mut builder = oauth::Builder::new(
            oauth::Credentials::new(self.consumer_key.as_str(), self.consumer_secret.as_str()),
            oauth::HmacSha1::new(),
        );
        builder.version(true);
        if let Some((token, secret)) = token {
            builder.token(oauth::Credentials::new(token, secret));
        }
        builder
    }

    /// A request token for the flow `state`, and where to send the browser with it.
    pub async fn authorize_url(&self, http: &ProviderHttp, state: &str) -> Result<String, ApiError> {
        let callback = format!("{}?state={state}", self.redirect_uri);
        let url = format!("{}/oauth/request_token", self.host);
        let mut signer = self.signer(None);
        signer.callback(callback.as_str());
        let answer = http.get_form(&url, &signer.get(&url, &())).await?;
        let token = field(&answer, "oauth_token").ok_or_else(|| ApiError("no request token in the answer".into()))?;
        let mut authenticate = url::Url::parse(&format!("{}/oauth/authenticate", self.host))
            .map_err(|e| ApiError(format!("invalid Twitter URL: {e}")))?;
        authenticate.query_pairs_mut().append_pair("oauth_token", &token);
        Ok(authenticate.to_string())
    }

    /// The access token and its secret for the request token the user authorized.
    pub async fn access_token(
        &self,
        http: &ProviderHttp,
        request_token: &str,
        verifier: &str,
    ) -> Result<(String, String), ApiError> {
        let url = format!("{}/oauth/access_token", self.host);
        let mut signer = self.signer(Some((request_token, "")));
        signer.verifier(verifier);
        let answer = http.get_form(&url, &signer.get(&url, &())).await?;
        match (field(&answer, "oauth_token"), field(&answer, "oauth_token_secret")) {
            (Some(token), Some(secret)) => Ok((token, secret)),
            _ => Err(ApiError("no access token in the answer".into())),
        }
    }

    /// GoTrue's `FetchUserData`: the user, with their email (which Twitter reports only verified).
    pub async fn user_data(&self, http: &ProviderHttp, token: &str, secret: &str) -> Result<UserData, ApiError> {
        let profile = format!("{}{PROFILE_PATH}", self.host);
        let parameters = oauth::ParameterList::new([
            ("include_email", "true"),
            ("include_entities", "false"),
            ("skip_status", "true"),
        ]);
        let authorization = self.signer(Some((token, secret))).get(&profile, &parameters);
        let url = oauth::to_query(profile.clone(), &parameters);
        let user: TwitterUser = http.get_json(&url, "", &[("authorization", &authorization)]).await?;
        Ok(UserData {
            emails: primary_email(user.email, true),
            claims: Claims {
                issuer: profile,
                subject: user.id_str.clone(),
                name: user.name.clone(),
                picture: user.profile_image_url_https.clone(),
                preferred_username: user.screen_name.clone(),
                user_name: user.screen_name,
                full_name: user.name,
                avatar_url: user.profile_image_url_https,
                provider_id: user.id_str,
                ..Default::default()
            },
        })
    }
}
