//! Secrets out of error texts before the page serves them. The job table
//! holds no secret, but a job's last error may quote a URL, and a URL may
//! carry a password (`postgres://user:pw@host`), a key in its query
//! (`?apiKey=…`), or an S3 signature. Each of those is replaced by `***`,
//! and so is every configured secret value, wherever it appears.

use crate::config::Secret;

/// What replaces a secret.
const MASK: &str = "***";

/// The longest error text served; longer ones are cut (with `…`).
const MAX_TEXT: usize = 2000;

/// Query parameter names whose values are secrets (compared without case).
const SECRET_PARAMS: &[&str] = &[
    "apikey",
    "api_key",
    "api-key",
    "key",
    "token",
    "access_token",
    "auth",
    "password",
    "passwd",
    "pwd",
    "secret",
    "signature",
    "sig",
    "x-amz-signature",
    "x-amz-credential",
    "x-amz-security-token",
    "awsaccesskeyid",
];

/// `text` with every secret masked: the values in `secrets`, the
/// `user:password@` of URLs, secret query parameters and bearer tokens;
/// cut to a length fit for a page.
pub fn redact(text: &str, secrets: &[Secret]) -> String {
    let mut out = text.to_owned();
    for secret in secrets {
        // A very short "secret" would mask ordinary words.
        if secret.expose().len() >= 4 {
            out = out.replace(secret.expose(), MASK);
        }
    }
    let out = mask_userinfo(&out);
    let out = mask_params(&out);
    let out = mask_bearer(&out);
    cut(out)
}

fn cut(mut text: String) -> String {
    if text.len() > MAX_TEXT {
        let mut end = MAX_TEXT;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}

/// Whether `c` ends a URL inside a message.
fn url_end(c: char) -> bool {
    c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | '`' | ')' | ']' | '}' | ',')
}

/// Drops the `user:password@` of every `scheme://user:password@host`.
fn mask_userinfo(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (head, tail) = rest.split_at(at + 3);
        out.push_str(head);
        let authority_len = tail
            .find(|c: char| url_end(c) || matches!(c, '/' | '?' | '#'))
            .unwrap_or(tail.len());
        let authority = &tail[..authority_len];
        match authority.rfind('@') {
            Some(i) => {
                out.push_str(MASK);
                out.push_str(&authority[i..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[authority_len..];
    }
    out.push_str(rest);
    out
}

/// Masks the values of secret query parameters (`?apiKey=…`, `&token=…`).
fn mask_params(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(['?', '&', ';']) {
        let (head, tail) = rest.split_at(i + 1);
        out.push_str(head);
        let Some(eq) = tail.find('=') else {
            rest = tail;
            continue;
        };
        let name = &tail[..eq];
        let is_name = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if is_name && SECRET_PARAMS.contains(&name.to_ascii_lowercase().as_str()) {
            let value = &tail[eq + 1..];
            let value_len = value
                .find(|c: char| url_end(c) || matches!(c, '&' | '#' | ';'))
                .unwrap_or(value.len());
            out.push_str(name);
            out.push('=');
            out.push_str(MASK);
            rest = &value[value_len..];
        } else {
            rest = tail;
        }
    }
    out.push_str(rest);
    out
}

/// Masks the token after `Bearer ` (any case).
fn mask_bearer(text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut from = 0;
    while let Some(found) = lower[from..].find("bearer ") {
        let start = from + found + "bearer ".len();
        out.push_str(&text[from..start]);
        let token_len = text[start..]
            .find(|c: char| url_end(c) || c == ';')
            .unwrap_or(text.len() - start);
        if token_len > 0 {
            out.push_str(MASK);
        }
        from = start + token_len;
    }
    out.push_str(&text[from..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_keys_signatures_and_tokens_are_masked() {
        let secrets = [Secret::new("s3cr3t-api-key-value")];
        let cases = [
            (
                "GET https://user:pw@api.example.com/v2/aggs?adjusted=false&apiKey=abc123&limit=5 failed",
                "GET https://***@api.example.com/v2/aggs?adjusted=false&apiKey=***&limit=5 failed",
            ),
            (
                "cannot open postgres://finpipe:hunter2@db:5432/jobs: refused",
                "cannot open postgres://***@db:5432/jobs: refused",
            ),
            (
                "s3 https://files.example.com/flatfiles/x.csv.gz?X-Amz-Credential=AKIA%2F1&X-Amz-Signature=deadbeef 403 Forbidden",
                "s3 https://files.example.com/flatfiles/x.csv.gz?X-Amz-Credential=***&X-Amz-Signature=*** 403 Forbidden",
            ),
            (
                "Authorization: Bearer abc.def-ghi rejected",
                "Authorization: Bearer *** rejected",
            ),
            (
                "the key s3cr3t-api-key-value was refused",
                "the key *** was refused",
            ),
            (
                "HTTP 500 <html><title>500</title></html> for https://api.example.com/v2/aggs/ticker/A&B/range",
                "HTTP 500 <html><title>500</title></html> for https://api.example.com/v2/aggs/ticker/A&B/range",
            ),
        ];
        for (given, want) in cases {
            assert_eq!(redact(given, &secrets), want, "{given}");
        }
    }

    #[test]
    fn long_texts_are_cut_on_a_char_boundary() {
        let text = "é".repeat(MAX_TEXT);
        let cut = redact(&text, &[]);
        assert!(cut.len() <= MAX_TEXT + '…'.len_utf8());
        assert!(cut.ends_with('…'));
    }
}
