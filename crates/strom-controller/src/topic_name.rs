//! Kafka's topic-name rules (`org.apache.kafka.common.internals.Topic`), kept identical so
//! a name accepted here is accepted by every Kafka tool and vice versa.

use crate::error::{ControllerError, InvalidTopicReason};

/// Longest legal topic name. Kafka's limit: a partition directory is named
/// `<topic>-<partition>` and must fit in 255 bytes.
pub const TOPIC_NAME_LENGTH_MAX_CHARS: usize = 249;

/// Checks a topic name against Kafka's rules: non-empty, not "." or "..", at most
/// [`TOPIC_NAME_LENGTH_MAX_CHARS`] characters, only ASCII letters, digits, '.', '_' and '-'.
/// Collisions with existing topics are checked by the controller, which knows them.
pub fn validate_topic_name(name: &str) -> Result<(), ControllerError> {
    let reason = if name.is_empty() {
        Some(InvalidTopicReason::Empty)
    } else if name == "." || name == ".." {
        Some(InvalidTopicReason::Dots)
    } else if name.chars().count() > TOPIC_NAME_LENGTH_MAX_CHARS {
        Some(InvalidTopicReason::TooLong {
            name: name.to_string(),
            length_chars: name.chars().count(),
            max_chars: TOPIC_NAME_LENGTH_MAX_CHARS,
        })
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
    {
        Some(InvalidTopicReason::IllegalCharacters {
            name: name.to_string(),
        })
    } else {
        None
    };
    match reason {
        Some(reason) => Err(ControllerError::InvalidTopic(reason)),
        None => Ok(()),
    }
}

/// The name with '.' mapped to '_': two topics whose unified names are equal would share
/// metric names, so Kafka refuses the second one.
pub fn unify_collision_chars(name: &str) -> String {
    name.replace('.', "_")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(name: &str) -> InvalidTopicReason {
        match validate_topic_name(name) {
            Err(ControllerError::InvalidTopic(reason)) => reason,
            other => panic!("expected INVALID_TOPIC_EXCEPTION for {name:?}, got {other:?}"),
        }
    }

    #[test]
    fn given_249_chars_when_validating_should_accept_and_250_should_refuse() {
        assert_eq!(validate_topic_name(&"a".repeat(249)), Ok(()));
        let error = validate_topic_name(&"a".repeat(250)).unwrap_err();
        assert_eq!(error.code(), 17);
        assert!(matches!(
            reason(&"a".repeat(250)),
            InvalidTopicReason::TooLong {
                length_chars: 250,
                max_chars: 249,
                ..
            }
        ));
        assert!(error.message().contains("249"), "{}", error.message());
    }

    #[test]
    fn given_empty_or_dot_names_when_validating_should_refuse() {
        assert_eq!(reason(""), InvalidTopicReason::Empty);
        assert_eq!(reason("."), InvalidTopicReason::Dots);
        assert_eq!(reason(".."), InvalidTopicReason::Dots);
        // Dots are fine inside a longer name, even leading ones.
        assert_eq!(validate_topic_name("..."), Ok(()));
        assert_eq!(validate_topic_name(".hidden"), Ok(()));
    }

    #[test]
    fn given_illegal_characters_when_validating_should_refuse_each() {
        for name in [
            "has space",
            "slash/topic",
            "colon:topic",
            "star*",
            "ümlaut",
            "tab\t",
            "comma,",
            "plus+",
        ] {
            assert!(
                matches!(reason(name), InvalidTopicReason::IllegalCharacters { .. }),
                "{name:?}"
            );
        }
        assert_eq!(validate_topic_name("Orders_v2.eu-west-1"), Ok(()));
    }

    #[test]
    fn given_dot_and_underscore_names_when_unified_should_be_equal() {
        assert_eq!(unify_collision_chars("a.b_c"), "a_b_c");
        assert_eq!(unify_collision_chars("a_b.c"), "a_b_c");
    }
}
