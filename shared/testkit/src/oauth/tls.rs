//! HTTPS for the fake provider: a certificate authority made for it (which the suite is told to
//! trust) and a certificate for `localhost` and 127.0.0.1 signed by it.

use std::sync::Arc;

use axum::Router;
use tokio::net::TcpListener;

/// A certificate authority made for one provider, and the provider's certificate for
/// `localhost` and 127.0.0.1 signed by it.
pub(super) fn test_certificates() -> anyhow::Result<(String, rustls::ServerConfig)> {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "auth-suite test provider CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?)?;
    let server_key = KeyPair::generate()?;
    let server_cert =
        CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])?.signed_by(&server_key, &ca)?;
    auth_core::install_tls_provider();
    let key = rustls::pki_types::PrivateKeyDer::try_from(server_key.serialize_der()).map_err(anyhow::Error::msg)?;
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![server_cert.der().clone()], key)?;
    Ok((ca.pem(), config))
}

/// Serves `app` over TLS on `listener` until the runtime ends.
pub(super) fn serve_tls(listener: TcpListener, app: Router, config: rustls::ServerConfig) {
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (acceptor, app) = (acceptor.clone(), app.clone());
            tokio::spawn(async move {
                let Ok(stream) = acceptor.accept(stream).await else {
                    return;
                };
                let service = hyper_util::service::TowerToHyperService::new(app);
                let _ = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new())
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
}
