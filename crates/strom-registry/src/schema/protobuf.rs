//! Protobuf (placeholder while the parser lands).

use super::ResolvedReference;

#[derive(Debug, Clone)]
pub struct ProtoModel {
    text: String,
}

pub(crate) fn parse(
    text: &str,
    _references: &[ResolvedReference],
    _normalize: bool,
) -> Result<(String, ProtoModel), String> {
    Ok((
        text.trim().to_string(),
        ProtoModel {
            text: text.trim().to_string(),
        },
    ))
}

pub(crate) fn reader_incompatibilities(reader: &ProtoModel, writer: &ProtoModel) -> Vec<String> {
    let _ = (&reader.text, &writer.text);
    Vec::new()
}
