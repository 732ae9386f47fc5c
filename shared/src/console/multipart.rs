//! A bounded `multipart/form-data` reader (RFC 7578, over RFC 2046 §5.1.1) for the console's
//! forms that upload a file (the CSV import). Sans-IO like the rest of the core: it reads the
//! buffered body the host already bounded ([`crate::web::limits::MAX_BODY_BYTES`]).
//!
//! Hand-written: the multipart crates read streams through an async runtime's body types
//! (multer over `futures`/`bytes` streams), which the core does not use; a buffered body
//! needs only the delimiter search below.
//!
//! What it takes: text fields and at most one file field; every part named by a
//! `Content-Disposition: form-data; name="..."` header; at most [`MAX_PARTS`] parts with
//! header sections of at most [`MAX_PART_HEADER_BYTES`]. Anything else is refused with
//! `invalid_request`; nothing panics on any input, and the work is linear in the body (times
//! the boundary length, at most 70).

use crate::error::OAuthError;
use crate::web::{self, limits};

/// Parts in one body: as many as a form may have parameters.
pub const MAX_PARTS: usize = limits::MAX_PARAMS;
/// The header section of one part (`Content-Disposition` and `Content-Type` are enough).
pub const MAX_PART_HEADER_BYTES: usize = 1024;
/// RFC 2046 §5.1.1: a boundary is 1 to 70 characters.
const MAX_BOUNDARY: usize = 70;

/// One part of the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub name: String,
    /// Present for a file field (`filename` in `Content-Disposition`, RFC 7578 §4.2).
    pub filename: Option<String>,
    pub data: Vec<u8>,
}

fn refuse(why: &str) -> OAuthError {
    OAuthError::invalid_request(format!("The form upload is not valid: {why}."))
}

/// The `boundary` parameter of a `multipart/form-data` content type; `None` when the type is
/// another one.
pub fn boundary(content_type: &str) -> Option<Result<String, OAuthError>> {
    let mut params = content_type.split(';');
    let essence = params.next().unwrap_or("").trim();
    if !essence.eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    let value = params.find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim().eq_ignore_ascii_case("boundary").then(|| v.trim())
    });
    let Some(value) = value else {
        return Some(Err(refuse("no boundary")));
    };
    let value = value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value);
    // RFC 2046 §5.1.1 bchars, and no trailing space.
    let ok = (1..=MAX_BOUNDARY).contains(&value.len())
        && !value.ends_with(' ')
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"'()+_,-./:=? ".contains(&b));
    Some(if ok {
        Ok(value.to_owned())
    } else {
        Err(refuse("a bad boundary"))
    })
}

/// The first index of `needle` in `hay` at or after `from`.
fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() || from > hay.len() {
        return None;
    }
    hay.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|i| i + from)
}

/// Splits `body` into its parts.
pub fn parse(body: &[u8], boundary: &str) -> Result<Vec<Part>, OAuthError> {
    if body.len() > limits::MAX_BODY_BYTES {
        return Err(OAuthError::invalid_request("The request is too large."));
    }
    let dash = format!("--{boundary}");
    let delimiter = format!("\r\n--{boundary}");
    // The first delimiter may open the body (no CRLF before it) or follow a preamble.
    let mut at = if body.starts_with(dash.as_bytes()) {
        dash.len()
    } else {
        find(body, delimiter.as_bytes(), 0).ok_or_else(|| refuse("no boundary line"))?
            + delimiter.len()
    };
    let mut parts = Vec::new();
    let mut files = 0;
    loop {
        let rest = body.get(at..).unwrap_or_default();
        if rest.starts_with(b"--") {
            // The close delimiter: what follows is the epilogue, ignored.
            return Ok(parts);
        }
        // Transport padding (RFC 2046 §5.1.1: linear white space) then CRLF.
        let pad = rest
            .iter()
            .take_while(|b| **b == b' ' || **b == b'\t')
            .count();
        at += pad;
        if !body.get(at..).unwrap_or_default().starts_with(b"\r\n") {
            return Err(refuse("a boundary line without its line end"));
        }
        at += 2;
        if parts.len() >= MAX_PARTS {
            return Err(refuse("too many parts"));
        }
        let head_end = find(body, b"\r\n\r\n", at)
            .filter(|e| e - at <= MAX_PART_HEADER_BYTES)
            .ok_or_else(|| refuse("a part without a short header section"))?;
        let head = body.get(at..head_end).unwrap_or_default();
        let (name, filename) = disposition(head)?;
        let start = head_end + 4;
        let end = find(body, delimiter.as_bytes(), start)
            .ok_or_else(|| refuse("a part without its closing boundary"))?;
        if filename.is_some() {
            files += 1;
            if files > 1 {
                return Err(refuse("more than one file"));
            }
        }
        parts.push(Part {
            name,
            filename,
            data: body.get(start..end).unwrap_or_default().to_vec(),
        });
        at = end + delimiter.len();
    }
}

/// The parts as a [`web::Form`] (text fields and the file's content, which must be UTF-8),
/// with the form's rules on count, lengths and repeats.
pub fn form(body: &[u8], boundary: &str) -> Result<web::Form, OAuthError> {
    let mut pairs = Vec::new();
    for p in parse(body, boundary)? {
        let value = String::from_utf8(p.data).map_err(|_| {
            OAuthError::invalid_request(format!(
                "The field '{}' is not UTF-8 text.",
                web::printable(&p.name)
            ))
        })?;
        pairs.push((p.name, value));
    }
    web::Form::from_pairs(pairs)
}

/// `name` and `filename` of a part's `Content-Disposition: form-data` header.
fn disposition(head: &[u8]) -> Result<(String, Option<String>), OAuthError> {
    let head = std::str::from_utf8(head).map_err(|_| refuse("a header that is not UTF-8"))?;
    let value = head
        .split("\r\n")
        .find_map(|line| {
            let (k, v) = line.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case("content-disposition")
                .then_some(v)
        })
        .ok_or_else(|| refuse("a part without Content-Disposition"))?;
    let (kind, params) = value.split_once(';').unwrap_or((value, ""));
    if !kind.trim().eq_ignore_ascii_case("form-data") {
        return Err(refuse("a part that is not form-data"));
    }
    let (mut name, mut filename) = (None, None);
    let mut rest = params;
    while let Some((key, after)) = rest.split_once('=') {
        let key = key
            .trim()
            .trim_start_matches(';')
            .trim()
            .to_ascii_lowercase();
        let after = after.trim_start();
        let (val, next) = if let Some(q) = after.strip_prefix('"') {
            // HTML's multipart encoding sends `"` in names as %22 and no escapes
            // (WHATWG HTML §4.10.21.8), so the value ends at the next quote.
            let close = q
                .find('"')
                .ok_or_else(|| refuse("an unterminated quoted parameter"))?;
            (q[..close].to_owned(), &q[close + 1..])
        } else {
            let end = after.find(';').unwrap_or(after.len());
            (after[..end].trim().to_owned(), &after[end..])
        };
        match key.as_str() {
            "name" => name = Some(val),
            "filename" => filename = Some(val),
            _ => {}
        }
        rest = next;
    }
    let name = name
        .filter(|n| !n.is_empty() && n.len() <= limits::MAX_NAME_BYTES)
        .ok_or_else(|| refuse("a part without a short name"))?;
    Ok((name, filename))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const B: &str = "----edgeid0123";

    fn body(parts: &[(&str, Option<&str>, &str)]) -> Vec<u8> {
        let mut out = String::new();
        for (name, file, data) in parts {
            out.push_str(&format!("--{B}\r\n"));
            match file {
                Some(f) => out.push_str(&format!(
                    "Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\n\
                     Content-Type: text/csv\r\n\r\n"
                )),
                None => out.push_str(&format!(
                    "Content-Disposition: form-data; name=\"{name}\"\r\n\r\n"
                )),
            }
            out.push_str(data);
            out.push_str("\r\n");
        }
        out.push_str(&format!("--{B}--\r\n"));
        out.into_bytes()
    }

    #[test]
    fn issue11_boundaries_come_from_the_content_type() {
        assert_eq!(
            boundary("multipart/form-data; boundary=abc")
                .unwrap()
                .unwrap(),
            "abc"
        );
        assert_eq!(
            boundary("Multipart/Form-Data; charset=utf-8; boundary=\"a b:c\"")
                .unwrap()
                .unwrap(),
            "a b:c"
        );
        assert!(boundary("application/x-www-form-urlencoded").is_none());
        assert!(boundary("multipart/form-data").unwrap().is_err());
        assert!(boundary("multipart/form-data; boundary=").unwrap().is_err());
        assert!(
            boundary(&format!("multipart/form-data; boundary={}", "a".repeat(71)))
                .unwrap()
                .is_err()
        );
        assert!(
            boundary("multipart/form-data; boundary=a\u{0}b")
                .unwrap()
                .is_err()
        );
    }

    #[test]
    fn issue11_text_fields_and_one_file_are_read() {
        let csv = "name,email\r\n\"Zoë, Z\",zoe@example.com\r\n";
        let parts = parse(
            &body(&[
                ("csrf", None, "tok"),
                ("csv", Some("people.csv"), csv),
                ("empty", None, ""),
            ]),
            B,
        )
        .unwrap();
        assert_eq!(parts.len(), 3);
        assert_eq!(
            parts[0],
            Part {
                name: "csrf".into(),
                filename: None,
                data: b"tok".to_vec()
            }
        );
        assert_eq!(parts[1].filename.as_deref(), Some("people.csv"));
        assert_eq!(
            parts[1].data,
            csv.as_bytes(),
            "CRLFs inside the file are kept"
        );
        assert!(parts[2].data.is_empty());
        // A preamble before the first boundary and an epilogue after the last are ignored.
        let mut with_preamble = b"ignored preamble\r\n".to_vec();
        with_preamble.extend(body(&[("a", None, "1")]));
        with_preamble.extend(b"epilogue");
        assert_eq!(parse(&with_preamble, B).unwrap()[0].data, b"1");
    }

    #[test]
    fn issue11_missing_and_malformed_parts_are_refused() {
        let good = body(&[("a", None, "1")]);
        // No closing boundary.
        let cut = &good[..good.len() - B.len() - 8];
        assert!(parse(cut, B).is_err());
        // A different boundary.
        assert!(parse(&good, "other").is_err());
        // No Content-Disposition, or no name.
        let no_cd = format!("--{B}\r\nContent-Type: text/plain\r\n\r\nx\r\n--{B}--");
        assert!(parse(no_cd.as_bytes(), B).is_err());
        let no_name = format!("--{B}\r\nContent-Disposition: form-data\r\n\r\nx\r\n--{B}--");
        assert!(parse(no_name.as_bytes(), B).is_err());
        let attachment =
            format!("--{B}\r\nContent-Disposition: attachment; name=\"a\"\r\n\r\nx\r\n--{B}--");
        assert!(parse(attachment.as_bytes(), B).is_err());
        // No header end.
        let no_head_end = format!("--{B}\r\nContent-Disposition: form-data; name=\"a\"\r\nx");
        assert!(parse(no_head_end.as_bytes(), B).is_err());
        // Two files.
        assert!(parse(&body(&[("f", Some("a"), "1"), ("g", Some("b"), "2")]), B).is_err());
        // An empty body is no form.
        assert!(parse(b"", B).is_err());
    }

    #[test]
    fn issue11_oversized_uploads_are_refused() {
        let big = "x".repeat(limits::MAX_BODY_BYTES);
        assert!(parse(&body(&[("f", Some("a"), &big)]), B).is_err());
        let many: Vec<(String, Option<&str>, &str)> = (0..=MAX_PARTS)
            .map(|i| (format!("p{i}"), None, "v"))
            .collect();
        let many: Vec<(&str, Option<&str>, &str)> =
            many.iter().map(|(n, f, d)| (n.as_str(), *f, *d)).collect();
        assert!(parse(&body(&many), B).is_err());
        let long_head = format!(
            "--{B}\r\nContent-Disposition: form-data; name=\"a\"\r\nX-Pad: {}\r\n\r\nx\r\n--{B}--",
            "p".repeat(MAX_PART_HEADER_BYTES)
        );
        assert!(parse(long_head.as_bytes(), B).is_err());
    }

    #[test]
    fn issue11_junk_never_panics() {
        // Every prefix of a valid body, and bytes that look like pieces of one.
        let good = body(&[("csrf", None, "t"), ("csv", Some("f.csv"), "a,b\r\n")]);
        for i in 0..good.len() {
            let _ = parse(&good[..i], B);
            let _ = parse(&good[i..], B);
        }
        let mut state = 0x2545_f491_u32;
        let alphabet: &[u8] = b"-\r\n\"=;: ab\\\xff";
        for _ in 0..2000 {
            let len = (state % 200) as usize;
            let junk: Vec<u8> = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 17;
                    state ^= state << 5;
                    alphabet[(state as usize) % alphabet.len()]
                })
                .collect();
            let _ = parse(&junk, "ab");
            let _ = parse(&junk, B);
            let _ = disposition(&junk);
        }
    }
}
