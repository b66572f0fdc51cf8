//! CronJob scheduling decisions with an injected clock (upstream
//! `cronjob_controllerv2.go` `syncCronJob` and `utils.go`
//! `mostRecentScheduleTime`/`nextScheduleTime`), on standard 5-field schedules
//! and the `@hourly`-style macros.

use chrono::{DateTime, DurationRound, TimeZone, Utc};
use chrono_tz::Tz;
use croner::parser::{CronParser, Seconds, Year};
use croner::Cron;

/// Upstream gives up counting missed start times past this many (and warns).
pub const TOO_MANY_MISSED: usize = 100;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    #[error("unparseable schedule {schedule:?}: {message}")]
    Schedule { schedule: String, message: String },
    #[error("unknown time zone {0:?}")]
    TimeZone(String),
}

/// A parsed schedule in its time zone (`spec.timeZone`, or a `CRON_TZ=`/`TZ=`
/// prefix as older objects carry; UTC otherwise, as a controller-manager in UTC).
#[derive(Debug, Clone)]
pub struct Schedule {
    pub cron: Cron,
    pub tz: Tz,
}

fn zone(name: &str) -> Result<Tz, Error> {
    name.parse::<Tz>()
        .map_err(|_| Error::TimeZone(name.to_string()))
}

pub fn parse(schedule: &str, time_zone: Option<&str>) -> Result<Schedule, Error> {
    let mut tz = match time_zone.filter(|tz| !tz.is_empty()) {
        Some(name) => zone(name)?,
        None => Tz::UTC,
    };
    let mut text = schedule.trim();
    for prefix in ["CRON_TZ=", "TZ="] {
        if let Some(rest) = text.strip_prefix(prefix) {
            let (name, rest) = rest.split_once(' ').unwrap_or((rest, ""));
            tz = zone(name)?;
            text = rest.trim();
        }
    }
    if text.starts_with("@every") {
        return Err(Error::Schedule {
            schedule: schedule.into(),
            message: "@every is not supported".into(),
        });
    }
    let cron = CronParser::builder()
        .seconds(Seconds::Disallowed)
        .year(Year::Disallowed)
        .build()
        .parse(text)
        .map_err(|e| Error::Schedule {
            schedule: schedule.into(),
            message: e.to_string(),
        })?;
    Ok(Schedule { cron, tz })
}

/// `t` without its sub-second part. croner keeps the base time's fraction in
/// what it yields (10:29:00.167 from a base of 10:28:30.167); robfig/cron, as
/// upstream uses it, truncates the base to whole seconds first, so schedule
/// times are whole minutes.
fn whole_seconds(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(chrono::TimeDelta::seconds(1)).unwrap_or(t)
}

impl Schedule {
    /// The first schedule time strictly after `t` (whole seconds).
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron
            .find_next_occurrence(&whole_seconds(t).with_timezone(&self.tz), false)
            .ok()
            .map(|d| d.with_timezone(&Utc))
    }

    /// The last schedule time at or before `t` (whole seconds).
    pub fn previous(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron
            .find_previous_occurrence(&whole_seconds(t).with_timezone(&self.tz), true)
            .ok()
            .map(|d| d.with_timezone(&Utc))
    }

    /// RFC 3339 in the schedule's zone, as the scheduled-timestamp annotation.
    pub fn format(&self, t: DateTime<Utc>) -> String {
        t.with_timezone(&self.tz)
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    }
}

/// Upstream `mostRecentScheduleTime`: the latest schedule time in (earliest, now],
/// and how many were missed in that window (capped at `TOO_MANY_MISSED + 1`).
pub fn most_recent(
    cron: &Schedule,
    earliest: DateTime<Utc>,
    now: DateTime<Utc>,
) -> (Option<DateTime<Utc>>, usize) {
    let mut last = None;
    let mut missed = 0;
    let mut t = earliest;
    while let Some(next) = cron.next_after(t) {
        if next > now {
            break;
        }
        missed += 1;
        last = Some(next);
        t = next;
        if missed > TOO_MANY_MISSED {
            // Jump to the last occurrence directly instead of walking every one.
            if let Some(prev) = cron.previous(now) {
                last = Some(prev);
            }
            break;
        }
    }
    (last, missed)
}

/// What the controller should do at `now`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Nothing due; look again at the next schedule time.
    Wait,
    /// The most recent time's job already exists (made by an earlier sync whose
    /// status write was lost): that time counts as lastScheduleTime.
    Started { scheduled: DateTime<Utc> },
    /// Due, but Forbid and a job is still running.
    Forbidden { scheduled: DateTime<Utc> },
    /// Start a job for `scheduled` (after deleting the running ones under Replace).
    Start {
        scheduled: DateTime<Utc>,
        replace_active: bool,
    },
}

pub struct Inputs<'a> {
    pub cron: &'a Schedule,
    /// lastScheduleTime, else the CronJob's creation time.
    pub earliest: DateTime<Utc>,
    pub starting_deadline_seconds: Option<i64>,
    pub concurrency_policy: &'a str,
    pub suspended: bool,
    pub active_jobs: usize,
    /// Whether a job for this time already exists (by its deterministic name).
    pub exists: &'a (dyn Fn(DateTime<Utc>) -> bool + Sync),
}

pub fn decide(i: &Inputs<'_>, now: DateTime<Utc>) -> Decision {
    if i.suspended {
        return Decision::Wait;
    }
    let mut earliest = i.earliest;
    // A start more than startingDeadlineSeconds late is never made: the window of
    // candidate times begins there (upstream's separate "too late" check is implied).
    if let Some(sds) = i.starting_deadline_seconds {
        let floor = now - chrono::Duration::seconds(sds);
        if floor > earliest {
            earliest = floor;
        }
    }
    let (scheduled, _) = most_recent(i.cron, earliest, now);
    let Some(scheduled) = scheduled else {
        return Decision::Wait;
    };
    if (i.exists)(scheduled) {
        return Decision::Started { scheduled };
    }
    match i.concurrency_policy {
        "Forbid" if i.active_jobs > 0 => Decision::Forbidden { scheduled },
        "Replace" if i.active_jobs > 0 => Decision::Start {
            scheduled,
            replace_active: true,
        },
        _ => Decision::Start {
            scheduled,
            replace_active: false,
        },
    }
}

/// `<cronjob>-<minutes since the epoch>` (upstream `getJobName`).
pub fn job_name(cronjob: &str, scheduled: DateTime<Utc>) -> String {
    format!("{cronjob}-{}", scheduled.timestamp() / 60)
}

pub fn utc(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(secs, 0).single().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().expect("time")
    }

    fn inputs<'a>(
        cron: &'a Schedule,
        earliest: &str,
        sds: Option<i64>,
        policy: &'a str,
        active: usize,
        exists: &'a (dyn Fn(DateTime<Utc>) -> bool + Sync),
    ) -> Inputs<'a> {
        Inputs {
            cron,
            earliest: at(earliest),
            starting_deadline_seconds: sds,
            concurrency_policy: policy,
            suspended: false,
            active_jobs: active,
            exists,
        }
    }

    #[test]
    fn parses_standard_schedules_and_macros() {
        let hourly = parse("@hourly", None).expect("hourly");
        assert_eq!(
            hourly.next_after(at("2024-05-01T10:20:00Z")),
            Some(at("2024-05-01T11:00:00Z"))
        );
        let c = parse("*/15 9-17 * * MON-FRI", None).expect("parse");
        // Saturday 2024-05-04 → Monday 09:00.
        assert_eq!(
            c.next_after(at("2024-05-03T17:50:00Z")),
            Some(at("2024-05-06T09:00:00Z"))
        );
        // Day-of-month OR day-of-week when both are restricted (Vixie cron).
        let c = parse("0 0 1 * 1", None).expect("parse");
        assert_eq!(
            c.next_after(at("2024-05-01T00:00:00Z")),
            Some(at("2024-05-06T00:00:00Z"))
        );
        assert!(parse("* * * * * *", None).is_err());
        assert!(parse("61 * * * *", None).is_err());
        assert!(parse("* * * * *", Some("Mars/Olympus")).is_err());
        assert!(parse("CRON_TZ=UTC 0 * * * *", None).is_ok());
        assert!(parse("0 * * * *", Some("Etc/UTC")).is_ok());
    }

    #[test]
    fn time_zones_shift_schedules_and_follow_dst() {
        let berlin = parse("30 9 * * *", Some("Europe/Berlin")).expect("parse");
        // Summer: 09:30 CEST is 07:30 UTC; winter: 08:30 UTC.
        assert_eq!(
            berlin.next_after(at("2024-07-01T00:00:00Z")),
            Some(at("2024-07-01T07:30:00Z"))
        );
        assert_eq!(
            berlin.next_after(at("2024-12-01T00:00:00Z")),
            Some(at("2024-12-01T08:30:00Z"))
        );
        assert_eq!(
            berlin.format(at("2024-07-01T07:30:00Z")),
            "2024-07-01T09:30:00+02:00"
        );
        let prefixed = parse("CRON_TZ=America/New_York 0 12 * * *", None).expect("parse");
        assert_eq!(
            prefixed.next_after(at("2024-01-10T00:00:00Z")),
            Some(at("2024-01-10T17:00:00Z"))
        );
        assert_eq!(
            parse("0 * * * *", None)
                .expect("utc")
                .format(at("2024-01-10T17:00:00Z")),
            "2024-01-10T17:00:00Z"
        );
    }

    #[test]
    fn most_recent_counts_missed_starts() {
        let c = parse("*/10 * * * *", None).expect("parse");
        let (t, missed) = most_recent(&c, at("2024-05-01T10:00:00Z"), at("2024-05-01T10:35:00Z"));
        assert_eq!((t, missed), (Some(at("2024-05-01T10:30:00Z")), 3));
        assert_eq!(
            most_recent(&c, at("2024-05-01T10:30:00Z"), at("2024-05-01T10:35:00Z")),
            (None, 0)
        );
        let every_minute = parse("* * * * *", None).expect("parse");
        let (t, missed) = most_recent(
            &every_minute,
            at("2024-05-01T00:00:00Z"),
            at("2024-05-02T00:00:30Z"),
        );
        assert_eq!(t, Some(at("2024-05-02T00:00:00Z")));
        assert!(missed > TOO_MANY_MISSED);
    }

    #[test]
    fn starting_deadline_and_concurrency_policies() {
        let c = parse("*/10 * * * *", None).expect("parse");
        let none = |_: DateTime<Utc>| false;
        let now = at("2024-05-01T10:35:00Z");
        let start = |s: &str, replace| Decision::Start {
            scheduled: at(s),
            replace_active: replace,
        };
        assert_eq!(
            decide(
                &inputs(&c, "2024-05-01T10:00:00Z", None, "Allow", 1, &none),
                now
            ),
            start("2024-05-01T10:30:00Z", false)
        );
        // Five minutes late with a 60 s deadline: missed; with 600 s: started.
        assert_eq!(
            decide(
                &inputs(&c, "2024-05-01T10:00:00Z", Some(60), "Allow", 0, &none),
                now
            ),
            Decision::Wait
        );
        assert_eq!(
            decide(
                &inputs(&c, "2024-05-01T10:29:00Z", Some(299), "Allow", 0, &none),
                now
            ),
            Decision::Wait
        );
        assert_eq!(
            decide(
                &inputs(&c, "2024-05-01T10:29:00Z", Some(301), "Allow", 0, &none),
                now
            ),
            start("2024-05-01T10:30:00Z", false)
        );
        assert_eq!(
            decide(
                &inputs(&c, "2024-05-01T10:00:00Z", Some(600), "Allow", 0, &none),
                now
            ),
            start("2024-05-01T10:30:00Z", false)
        );
        assert_eq!(
            decide(
                &inputs(&c, "2024-05-01T10:00:00Z", None, "Forbid", 1, &none),
                now
            ),
            Decision::Forbidden {
                scheduled: at("2024-05-01T10:30:00Z")
            }
        );
        assert_eq!(
            decide(
                &inputs(&c, "2024-05-01T10:00:00Z", None, "Forbid", 0, &none),
                now
            ),
            start("2024-05-01T10:30:00Z", false)
        );
        assert_eq!(
            decide(
                &inputs(&c, "2024-05-01T10:00:00Z", None, "Replace", 2, &none),
                now
            ),
            start("2024-05-01T10:30:00Z", true)
        );
        // Already started (same name exists): nothing to do.
        let exists = |t: DateTime<Utc>| t == at("2024-05-01T10:30:00Z");
        assert_eq!(
            decide(
                &inputs(&c, "2024-05-01T10:00:00Z", None, "Allow", 0, &exists),
                now
            ),
            Decision::Started {
                scheduled: at("2024-05-01T10:30:00Z")
            }
        );
        let mut suspended = inputs(&c, "2024-05-01T10:00:00Z", None, "Allow", 0, &none);
        suspended.suspended = true;
        assert_eq!(decide(&suspended, now), Decision::Wait);
    }

    #[test]
    fn schedule_times_are_whole_minutes_from_fractional_bases() {
        let c = parse("* * * * *", None).expect("parse");
        assert_eq!(
            c.next_after(at("2024-05-01T10:28:30.167Z")),
            Some(at("2024-05-01T10:29:00Z"))
        );
        assert_eq!(
            c.previous(at("2024-05-01T10:29:00.5Z")),
            Some(at("2024-05-01T10:29:00Z"))
        );
        // A startingDeadlineSeconds floor carries now's fraction; the start does not.
        let none = |_: DateTime<Utc>| false;
        let i = inputs(&c, "2024-05-01T10:00:00Z", Some(300), "Allow", 0, &none);
        assert_eq!(
            decide(&i, at("2024-05-01T10:29:00.167Z")),
            Decision::Start {
                scheduled: at("2024-05-01T10:29:00Z"),
                replace_active: false
            }
        );
    }

    #[test]
    fn job_names_use_minutes_since_epoch() {
        assert_eq!(
            job_name("hello", at("2024-05-01T10:30:00Z")),
            format!("hello-{}", at("2024-05-01T10:30:00Z").timestamp() / 60)
        );
        assert_eq!(job_name("hello", utc(6_000)), "hello-100");
    }
}
