//! Just enough `multipart/form-data` (RFC 7578) to take an uploaded file:
//! what a browser's `<form enctype="multipart/form-data">` or `FormData`
//! sends.

/// One part of a multipart body.
#[derive(Debug, PartialEq, Eq)]
pub struct Part<'a> {
    pub name: Option<String>,
    pub filename: Option<String>,
    pub content_type: Option<String>,
    pub body: &'a [u8],
}

/// The boundary of a `multipart/form-data; boundary=...` content type.
pub fn boundary(content_type: &str) -> Option<String> {
    let (kind, params) = content_type.split_once(';')?;
    if !kind.trim().eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    params.split(';').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| v.trim().trim_matches('"').to_owned())
            .filter(|b| !b.is_empty())
    })
}

/// Splits `body` into its parts.
pub fn parts<'a>(body: &'a [u8], boundary: &str) -> Result<Vec<Part<'a>>, String> {
    let delimiter = format!("--{boundary}");
    let delimiter = delimiter.as_bytes();
    let mut at = find(body, delimiter, 0).ok_or("no multipart boundary in the body")?;
    let mut parts = Vec::new();
    loop {
        at += delimiter.len();
        if body[at..].starts_with(b"--") {
            return Ok(parts);
        }
        at = skip_crlf(body, at).ok_or("malformed multipart delimiter line")?;
        let head_end = find(body, b"\r\n\r\n", at).ok_or("multipart part without headers end")?;
        let head =
            std::str::from_utf8(&body[at..head_end]).map_err(|_| "non-UTF-8 part headers")?;
        let content_start = head_end + 4;
        let mut closing = Vec::with_capacity(delimiter.len() + 2);
        closing.extend_from_slice(b"\r\n");
        closing.extend_from_slice(delimiter);
        let content_end =
            find(body, &closing, content_start).ok_or("multipart part is not closed")?;
        let mut part = Part {
            name: None,
            filename: None,
            content_type: None,
            body: &body[content_start..content_end],
        };
        for line in head.split("\r\n") {
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            if key.trim().eq_ignore_ascii_case("content-disposition") {
                part.name = param(value, "name");
                part.filename = param(value, "filename");
            } else if key.trim().eq_ignore_ascii_case("content-type") {
                part.content_type = Some(value.trim().to_owned());
            }
        }
        parts.push(part);
        at = content_end + 2;
    }
}

/// The uploaded file of a multipart body: the first part with a file name
/// (or, failing that, the part named `file`).
pub fn file<'a>(content_type: &str, body: &'a [u8]) -> Result<Part<'a>, String> {
    let boundary = boundary(content_type).ok_or("not multipart/form-data with a boundary")?;
    let mut all = parts(body, &boundary)?;
    let index = all
        .iter()
        .position(|p| p.filename.is_some())
        .or_else(|| all.iter().position(|p| p.name.as_deref() == Some("file")))
        .ok_or("the form has no file part")?;
    Ok(all.swap_remove(index))
}

fn param(header: &str, name: &str) -> Option<String> {
    header.split(';').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        (k.trim() == name).then(|| v.trim().trim_matches('"').to_owned())
    })
}

fn skip_crlf(body: &[u8], at: usize) -> Option<usize> {
    body[at..].starts_with(b"\r\n").then_some(at + 2)
}

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    haystack
        .get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_the_file_part() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhi\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"Dados.json\"\r\nContent-Type: application/json\r\n\r\n[1,2]\r\n--XyZ--\r\n";
        let part = file("multipart/form-data; boundary=XyZ", body).unwrap();
        assert_eq!(part.filename.as_deref(), Some("Dados.json"));
        assert_eq!(part.body, b"[1,2]");
        assert!(file("application/json", body).is_err());
        assert!(file("multipart/form-data; boundary=nope", body).is_err());
    }
}
