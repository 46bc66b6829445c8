//! The KBS client's calls over the HTTP/1.1 client and the kernel TCP stack (with TLS over
//! it for an `https://` KBS: `sealgate_linux::net`).

use crate::client::{Response, Transport, TransportError};
use alloc::format;
use alloc::string::{String, ToString};
use sealgate_core::http::Request;
use sealgate_core::kbs::{Call, Method};
use sealgate_linux::net::HttpClient;
use sealgate_linux::time::Instant;
use zeroize::Zeroizing;

/// Trustee's session cookie.
pub const SESSION_COOKIE: &str = "kbs-session-id";

/// One keep-alive HTTP connection to the KBS.
pub struct HttpTransport {
    client: HttpClient,
}

impl HttpTransport {
    /// Wraps a configured client.
    pub fn new(client: HttpClient) -> Self {
        HttpTransport { client }
    }

    /// TCP connections opened so far.
    pub fn connections_opened(&self) -> u64 {
        self.client.connections_opened()
    }
}

impl Transport for HttpTransport {
    fn set_deadline(&mut self, deadline: Instant) {
        self.client.set_run_deadline(Some(deadline));
    }

    fn exchange(&mut self, call: &Call<'_>) -> Result<Response, TransportError> {
        let mut request = match call.method {
            Method::Get => Request::get(call.path.as_str()),
            Method::Post => {
                Request::post_json(call.path.as_str(), call.body.clone().unwrap_or_default())
            }
        };
        if let Some(cookie) = call.session_cookie {
            request = request.with_cookie(SESSION_COOKIE, cookie);
        }
        if let Some(token) = call.bearer {
            request = request.with_bearer(token);
        }
        let response = self.client.send(&request).map_err(|e| TransportError {
            message: e.to_string(),
            transient: e.is_transient(),
            deadline: e.is_deadline().then(|| e.doing()),
        })?;
        let session_cookie = response
            .cookie(SESSION_COOKIE)
            .map_err(|e| TransportError {
                message: format!("KBS response: {e}"),
                transient: false,
                deadline: None,
            })?
            .map(String::from);
        let status = response.status();
        Ok(Response {
            status,
            body: Zeroizing::new(response.into_body()),
            session_cookie,
        })
    }
}
