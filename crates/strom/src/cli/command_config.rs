//! `--command-config FILE` (env `STROM_COMMAND_CONFIG`), as Kafka's tools take it: client
//! properties, one `key=value` a line, for connecting to a secured cluster. The keys are
//! those of [`ClientSecurity::from_properties`] (`security.protocol`, `ssl.*`, `sasl.*`).
//!
//! Lines starting with `#` or `!` are comments; blank lines are skipped; whitespace around
//! keys and values is ignored. A key given twice is an error, as is a line without `=`.

use std::collections::BTreeMap;
use std::path::Path;

use strom_client::{ClientError, ClientSecurity};

/// A command-config file's contents, or a one-line error naming the file, the line and
/// the fix.
pub fn parse(path: &Path, text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut properties = BTreeMap::new();
    for (index, line) in text.lines().enumerate() {
        let line_number = index + 1;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(format!(
                "{}:{line_number}: expected key=value, got '{line}'",
                path.display()
            ));
        };
        let key = key.trim();
        if key.is_empty() {
            return Err(format!(
                "{}:{line_number}: a line starts with '=': expected key=value",
                path.display()
            ));
        }
        if properties
            .insert(key.to_string(), value.trim().to_string())
            .is_some()
        {
            return Err(format!(
                "{}:{line_number}: {key} is given twice: keep one",
                path.display()
            ));
        }
    }
    Ok(properties)
}

/// Reads `path` and builds the client's security settings from it. Errors are one line
/// that names the file and the key.
pub fn load(path: &Path) -> Result<ClientSecurity, String> {
    let text = std::fs::read_to_string(path).map_err(|error| {
        format!(
            "cannot read command config {} ({error}): pass --command-config FILE (or \
             STROM_COMMAND_CONFIG) naming a key=value file with security.protocol, ssl.* and \
             sasl.* settings",
            path.display()
        )
    })?;
    let properties = parse(path, &text)?;
    ClientSecurity::from_properties(&properties).map_err(|error| {
        let file = path.display();
        match error {
            ClientError::UnknownSecurityKey { key, accepted } => {
                format!("{file}: unknown setting {key}: remove it (accepted: {accepted})")
            }
            ClientError::SecurityFile { key, path, reason } => format!(
                "{file}: {key}={}: {reason}: fix {key} in {file}",
                path.display()
            ),
            other => format!("{file}: {other}"),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_properties_text_should_skip_comments_and_trim() {
        let path = Path::new("client.properties");
        let parsed = parse(
            path,
            "# a comment\n! another\n\n security.protocol = SASL_SSL \r\nsasl.password=a=b\n",
        )
        .unwrap();
        assert_eq!(parsed["security.protocol"], "SASL_SSL");
        assert_eq!(parsed["sasl.password"], "a=b");
        assert_eq!(parsed.len(), 2);
    }

    #[test]
    fn given_malformed_lines_should_name_file_and_line() {
        let path = Path::new("client.properties");
        let error = parse(path, "security.protocol=SSL\nnot a pair\n").unwrap_err();
        assert!(error.starts_with("client.properties:2:"), "{error}");
        let error = parse(path, "a=1\na=2\n").unwrap_err();
        assert!(error.contains(":2:") && error.contains("twice"), "{error}");
        assert!(parse(path, "=x\n").is_err());
    }

    #[test]
    fn given_unknown_key_or_missing_file_should_say_which() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.properties");
        std::fs::write(&file, "security.protocol=SSL\nssl.truststore.location=x\n").unwrap();
        let error = load(&file).unwrap_err();
        assert!(
            error.contains("ssl.truststore.location") && error.contains("c.properties"),
            "{error}"
        );
        let error = load(&dir.path().join("missing")).unwrap_err();
        assert!(error.contains("cannot read command config"), "{error}");
        assert!(!error.contains('\n'));
    }
}
