//! URL query strings and percent-encoded path segments.

use super::HttpError;

/// Most query parameters looked at; the rest are ignored.
const PARAMETERS_MAX: usize = 32;

/// Decoded `key=value` pairs of a query string, in order.
#[derive(Debug, Default, Clone)]
pub struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    pub fn parse(query: &str) -> Query {
        let pairs = query
            .split('&')
            .filter(|pair| !pair.is_empty())
            .take(PARAMETERS_MAX)
            .map(|pair| {
                let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                (
                    percent_decode(&key.replace('+', " ")),
                    percent_decode(&value.replace('+', " ")),
                )
            })
            .collect();
        Query { pairs }
    }

    /// Every key given, in order (with repeats).
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.pairs.iter().map(|(key, _)| key.as_str())
    }

    /// The first value of `key`, if present and not empty.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, v)| k == key && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    /// `key` as a number in `min..=max`, `default` when absent.
    pub fn number(&self, key: &str, default: i64, min: i64, max: i64) -> Result<i64, HttpError> {
        match self.get(key) {
            None => Ok(default),
            Some(text) => match text.trim().parse::<i64>() {
                Ok(value) if (min..=max).contains(&value) => Ok(value),
                _ => Err(HttpError::bad_request(format!(
                    "query parameter `{key}` = `{text}` must be a whole number in {min}..={max}"
                ))),
            },
        }
    }

    /// `key` as a number without a default.
    pub fn optional_number(&self, key: &str, min: i64, max: i64) -> Result<Option<i64>, HttpError> {
        match self.get(key) {
            None => Ok(None),
            Some(_) => self.number(key, 0, min, max).map(Some),
        }
    }
}

/// `%XX` sequences decoded as UTF-8 (invalid sequences are kept as they are).
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' && index + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[index + 1..index + 3]).unwrap_or("");
            if let Ok(value) = u8::from_str_radix(hex, 16) {
                out.push(value);
                index += 3;
                continue;
            }
        }
        out.push(bytes[index]);
        index += 1;
    }
    String::from_utf8(out).unwrap_or_else(|error| String::from_utf8_lossy(error.as_bytes()).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_encoded_query_when_parsed_should_decode_keys_and_values() {
        let query = Query::parse("filter=a%2Eb+c&page=2&empty=&flag");
        assert_eq!(query.get("filter"), Some("a.b c"));
        assert_eq!(query.number("page", 0, 0, 10).unwrap(), 2);
        assert_eq!(query.get("empty"), None);
        assert_eq!(query.get("flag"), None);
        assert!(query.number("page", 0, 3, 10).is_err());
    }

    #[test]
    fn given_bad_escapes_when_decoded_should_keep_them() {
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz%41"), "%zzA");
        assert_eq!(percent_decode("%C3%A9"), "é");
        assert_eq!(percent_decode("%FF"), "\u{FFFD}");
    }
}
