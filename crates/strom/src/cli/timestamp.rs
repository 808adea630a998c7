//! Timestamps given on the command line: milliseconds since the epoch, or ISO 8601
//! (`2024-05-01`, `2024-05-01T12:00:00Z`, `2024-05-01T12:00:00.250+02:00`; no zone means
//! UTC).

/// Days from 1970-01-01 to the given civil date (proleptic Gregorian).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = if year >= 0 { year } else { year - 399 } / 400;
    let year_of_era = year - era * 400;
    let month = month as i64;
    let day_of_year =
        (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + day as i64 - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

fn number(text: &str, what: &str, min: u32, max: u32) -> Result<u32, String> {
    let value: u32 = text
        .parse()
        .map_err(|_| format!("{what} '{text}' is not a number"))?;
    if value < min || value > max {
        return Err(format!("{what} {value} is outside {min}..={max}"));
    }
    Ok(value)
}

/// Parses `MS` or an ISO 8601 date/time into milliseconds since the epoch.
pub fn parse_timestamp_ms(text: &str) -> Result<i64, String> {
    let text = text.trim();
    if let Ok(ms) = text.parse::<i64>() {
        return Ok(ms);
    }
    let invalid = || {
        format!(
            "'{text}' is neither milliseconds since the epoch nor ISO 8601 \
             (e.g. 2024-05-01T12:00:00Z)"
        )
    };
    if !text.is_ascii() {
        return Err(invalid());
    }
    let (date, time) = match text.find(['T', 't', ' ']) {
        Some(at) => (&text[..at], Some(&text[at + 1..])),
        None => (text, None),
    };
    let mut parts = date.split('-');
    let (Some(year), Some(month), Some(day), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid());
    };
    if year.len() != 4 {
        return Err(invalid());
    }
    let year = number(year, "year", 1970, 9999)? as i64;
    let month = number(month, "month", 1, 12)?;
    let day = number(day, "day", 1, 31)?;
    let mut ms = days_from_civil(year, month, day) * 86_400_000;
    if let Some(time) = time {
        let (clock, offset_minutes) = split_zone(time).ok_or_else(invalid)?;
        let (hms, fraction) = match clock.split_once(['.', ',']) {
            Some((hms, fraction)) => (hms, Some(fraction)),
            None => (clock, None),
        };
        let fields: Vec<&str> = hms.split(':').collect();
        if fields.len() < 2 || fields.len() > 3 {
            return Err(invalid());
        }
        let hour = number(fields[0], "hour", 0, 23)? as i64;
        let minute = number(fields[1], "minute", 0, 59)? as i64;
        let second = match fields.get(2) {
            Some(s) => number(s, "second", 0, 60)? as i64,
            None => 0,
        };
        let millis = match fraction {
            Some(f) if !f.is_empty() && f.chars().all(|c| c.is_ascii_digit()) => {
                let digits: String = f.chars().chain(std::iter::repeat('0')).take(3).collect();
                digits.parse::<i64>().map_err(|_| invalid())?
            }
            Some(_) => return Err(invalid()),
            None => 0,
        };
        ms += ((hour * 60 + minute) * 60 + second) * 1000 + millis;
        ms -= offset_minutes * 60_000;
    }
    Ok(ms)
}

/// Splits `12:00:00+02:00` into the clock and the zone offset in minutes.
fn split_zone(time: &str) -> Option<(&str, i64)> {
    if let Some(clock) = time.strip_suffix(['Z', 'z']) {
        return Some((clock, 0));
    }
    if let Some(at) = time.rfind(['+', '-']) {
        let (clock, zone) = time.split_at(at);
        let sign = if zone.starts_with('-') { -1 } else { 1 };
        let zone = zone[1..].replace(':', "");
        if zone.len() != 4 && zone.len() != 2 {
            return None;
        }
        let hours: i64 = zone[..2].parse().ok()?;
        let minutes: i64 = if zone.len() == 4 {
            zone[2..].parse().ok()?
        } else {
            0
        };
        return Some((clock, sign * (hours * 60 + minutes)));
    }
    Some((time, 0))
}

/// Milliseconds since the epoch as `2024-05-01T12:00:00.250Z`.
pub fn format_timestamp_ms(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let rest = ms.rem_euclid(86_400_000);
    // civil_from_days
    let z = days + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + if month <= 2 { 1 } else { 0 };
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rest / 3_600_000,
        rest / 60_000 % 60,
        rest / 1000 % 60,
        rest % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_iso8601_forms_when_parsed_should_give_epoch_millis() {
        assert_eq!(parse_timestamp_ms("1700000000000"), Ok(1_700_000_000_000));
        assert_eq!(parse_timestamp_ms("1970-01-01"), Ok(0));
        assert_eq!(
            parse_timestamp_ms("2023-11-14T22:13:20Z"),
            Ok(1_700_000_000_000)
        );
        assert_eq!(
            parse_timestamp_ms("2023-11-14T22:13:20.5Z"),
            Ok(1_700_000_000_500)
        );
        assert_eq!(
            parse_timestamp_ms("2023-11-15T00:13:20.123+02:00"),
            Ok(1_700_000_000_123)
        );
        assert_eq!(
            parse_timestamp_ms("2023-11-14 22:13"),
            Ok(1_699_999_980_000)
        );
        assert_eq!(
            parse_timestamp_ms("2024-02-29T00:00:00-0130"),
            Ok(1_709_170_200_000)
        );
        assert!(parse_timestamp_ms("yesterday").is_err());
        assert!(parse_timestamp_ms("2024-13-01").is_err());
        assert!(
            parse_timestamp_ms("2024-01-01T00:00+\u{20ac}1").is_err(),
            "no panic on non-ASCII"
        );
    }

    #[test]
    fn given_millis_when_formatted_should_round_trip() {
        for ms in [0, 1_700_000_000_123, 1_709_170_200_000, 951_782_400_000] {
            assert_eq!(parse_timestamp_ms(&format_timestamp_ms(ms)), Ok(ms));
        }
        assert_eq!(
            format_timestamp_ms(1_700_000_000_000),
            "2023-11-14T22:13:20.000Z"
        );
    }
}
