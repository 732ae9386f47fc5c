//! Unix times as calendar dates in UTC (the proleptic Gregorian calendar; H. Hinnant's
//! `civil_from_days` and `days_from_civil`): the dates pages and mails show, and the times the
//! console's audit filter reads.

use crate::ports::UnixTime;

/// `2023-11-14 22:13 UTC`.
pub fn utc(t: UnixTime) -> String {
    let c = civil(t);
    format!("{:04}-{:02}-{:02} {:02}:{:02} UTC", c.0, c.1, c.2, c.3, c.4)
}

/// (year, month, day, hour, minute, second) of `t`.
fn civil(t: UnixTime) -> (i64, i64, i64, i64, i64, i64) {
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d, secs / 3600, secs % 3600 / 60, secs % 60)
}

/// `2026-12-02T04:12:17Z` (ISO 8601 / RFC 3339 in UTC).
pub fn iso(t: UnixTime) -> String {
    let c = civil(t);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        c.0, c.1, c.2, c.3, c.4, c.5
    )
}

/// Days since 1970-01-01 of a civil date (H. Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A UTC time as the filter takes it: `YYYY-MM-DD`, optionally followed by `T` or a space and
/// `HH:MM` or `HH:MM:SS`, optionally `Z` (what `<input type="datetime-local">` sends, read as
/// UTC). `None` for anything else.
pub fn parse_time(s: &str) -> Option<UnixTime> {
    let s = s.trim().trim_end_matches(['Z', 'z']);
    let (date, time) = match s.split_once(['T', 't', ' ']) {
        Some((d, t)) => (d, Some(t)),
        None => (s, None),
    };
    let num = |p: &str, len: usize| -> Option<i64> {
        (p.len() == len && p.bytes().all(|b| b.is_ascii_digit()))
            .then(|| p.parse().ok())
            .flatten()
    };
    let mut parts = date.split('-');
    let (y, m, d) = (
        num(parts.next()?, 4)?,
        num(parts.next()?, 2)?,
        num(parts.next()?, 2)?,
    );
    if parts.next().is_some() || !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let mut secs = 0;
    if let Some(t) = time {
        let mut parts = t.split(':');
        let (h, min) = (num(parts.next()?, 2)?, num(parts.next()?, 2)?);
        let sec = match parts.next() {
            Some(p) => num(p, 2)?,
            None => 0,
        };
        if parts.next().is_some() || h > 23 || min > 59 || sec > 59 {
            return None;
        }
        secs = h * 3600 + min * 60 + sec;
    }
    let t = days_from_civil(y, m, d) * 86_400 + secs;
    // Refuses 2026-02-31 and the like: the date must come back as written.
    iso(t).starts_with(date).then_some(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc(1_700_000_000), "2023-11-14 22:13 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00 UTC");
        assert_eq!(iso(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(utc(-86_400), "1969-12-31 00:00 UTC");
    }
}
