//! Notification URLs carry secrets: a password in the userinfo, a token in
//! the query, or the whole path (a healthchecks.io ping URL is
//! `https://hc-ping.com/<uuid>`, and the uuid is the secret). Only the
//! scheme, host and port of one ever reach a log line, an error or
//! `casmanctl config`: [`url`] writes that form, [`scrub`] removes the
//! secret parts from any text (an HTTP library's error message).

/// Stands for the hidden parts of a URL.
pub const HIDDEN: &str = "<redacted>";

/// `u` with its userinfo, path, query and fragment replaced by
/// [`HIDDEN`]: `https://<redacted>@hooks.example.org/<redacted>?<redacted>`.
/// A string that is not a URL is hidden whole.
pub fn url(u: &str) -> String {
    let Ok(parsed) = url::Url::parse(u.trim()) else { return HIDDEN.to_owned() };
    let Some(host) = parsed.host_str() else { return HIDDEN.to_owned() };
    let mut out = format!("{}://", parsed.scheme());
    if !parsed.username().is_empty() || parsed.password().is_some() {
        out.push_str(HIDDEN);
        out.push('@');
    }
    out.push_str(host);
    if let Some(port) = parsed.port() {
        out.push_str(&format!(":{port}"));
    }
    if parsed.path() != "/" && !parsed.path().is_empty() {
        out.push('/');
        out.push_str(HIDDEN);
    }
    if parsed.query().is_some() {
        out.push('?');
        out.push_str(HIDDEN);
    }
    out
}

/// `text` with `u` (as written and as parsed) replaced by its redacted
/// form, and every other occurrence of a secret part of it (userinfo,
/// path, query, fragment) by [`HIDDEN`].
pub fn scrub(text: &str, u: &str) -> String {
    // The whole URL, as written or as parsed, becomes its redacted form.
    let shown = url(u);
    let mut out = text.replace(u.trim(), &shown);
    let mut secrets: Vec<String> = Vec::new();
    if let Ok(p) = url::Url::parse(u.trim()) {
        out = out.replace(p.as_str(), &shown);
        secrets.push(p.username().to_owned());
        secrets.extend(p.password().map(str::to_owned));
        if p.path() != "/" {
            secrets.push(p.path().to_owned());
            secrets.push(p.path().trim_start_matches('/').to_owned());
        }
        secrets.extend(p.query().map(str::to_owned));
        secrets.extend(p.fragment().map(str::to_owned));
    }
    // Longest first, so that a part of a longer secret does not leave the rest.
    secrets.retain(|s| s.len() >= 3);
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    for s in secrets {
        out = out.replace(&s, HIDDEN);
    }
    out
}

/// Checks that `u` is an `http://` or `https://` URL with a host; the
/// reason otherwise (naming no part of `u`).
pub fn check_url(u: &str) -> Result<url::Url, &'static str> {
    let parsed =
        url::Url::parse(u.trim()).map_err(|_| "not a URL; expected http://HOST/... or https://HOST/...")?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err("must be an http:// or https:// URL");
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err("names no host");
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_path_and_query_are_hidden() {
        assert_eq!(
            url("https://ann:s3cr3t@hooks.example.org:8443/hook/abc?token=xyz#f"),
            "https://<redacted>@hooks.example.org:8443/<redacted>?<redacted>"
        );
        assert_eq!(url("https://hc-ping.com/0d9c1e5a-uuid"), "https://hc-ping.com/<redacted>");
        assert_eq!(url("http://127.0.0.1:9000/"), "http://127.0.0.1:9000");
        assert_eq!(url("not a url with s3cr3t"), HIDDEN);
    }

    #[test]
    fn scrub_removes_every_secret_part_from_a_message() {
        let u = "https://ann:s3cr3t@hooks.example.org/hook/abc123?token=xyz789";
        let msg = format!("error sending request for url ({u}): token=xyz789 at /hook/abc123 by ann:s3cr3t");
        let clean = scrub(&msg, u);
        for secret in ["s3cr3t", "xyz789", "abc123"] {
            assert!(!clean.contains(secret), "{clean}");
        }
        assert!(clean.contains("hooks.example.org"), "{clean}");
    }

    #[test]
    fn only_http_urls_with_a_host_pass() {
        assert!(check_url("https://example.org/x").is_ok());
        assert!(check_url("http://127.0.0.1:8080").is_ok());
        assert!(check_url("ftp://example.org/").is_err());
        assert!(check_url("example.org/hook").is_err());
        assert!(check_url("file:///etc/passwd").is_err());
    }
}
