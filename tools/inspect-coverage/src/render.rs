//! The terminal view: per stream (and partition) a heatmap, one row per
//! hour and one cell per minute, a legend, and a summary.

use std::fmt::Write;

use gapless_report::schema::*;
use gapless_time::{human, rfc3339};

/// How to draw.
#[derive(Clone, Copy, Debug)]
pub struct Style {
    /// ANSI colours and Unicode blocks (a terminal); otherwise plain ASCII.
    pub color: bool,
    /// Partition rows under every hour, not only under hours that are not full.
    pub all_partitions: bool,
    /// Omit the heatmap (summary only).
    pub summary_only: bool,
}

const RESET: &str = "\x1b[0m";

fn glyph(state: State, suspect: bool, color: bool) -> String {
    if !color {
        let c = match state {
            State::Full if suspect => '!',
            State::Full => '#',
            State::Partial => '+',
            State::None => '.',
            State::Pending => '?',
            State::Recovering => 'r',
            State::Lost => 'X',
        };
        return c.to_string();
    }
    let (code, c) = match state {
        State::Full if suspect => ("33;1", '!'),
        State::Full => ("32", '█'),
        State::Partial => ("33", '▓'),
        State::None => ("31", '░'),
        State::Pending => ("90", '·'),
        State::Recovering => ("36;1", 'r'),
        State::Lost => ("35;1", 'X'),
    };
    format!("\x1b[{code}m{c}{RESET}")
}

/// A minute not full and entirely before the stream's `owed_from`.
pub fn not_owed(s: &StreamReport, r: &MinuteRow) -> bool {
    r.state != State::Full && s.owed_from_secs.is_some_and(|o| r.minute * 60 + 60 <= o)
}

fn not_owed_glyph(color: bool) -> String {
    if color {
        format!("\x1b[90m-{RESET}")
    } else {
        "-".to_string()
    }
}

/// The legend line.
pub fn legend(color: bool) -> String {
    let mut s = String::from("legend: ");
    for st in State::ALL {
        let _ = write!(s, "{} {}  ", glyph(st, false, color), st.as_str());
    }
    let _ = write!(
        s,
        "{} suspect (full, low volume)  {} not owed (before the archive started)",
        glyph(State::Full, true, color),
        not_owed_glyph(color)
    );
    s
}

fn paint(text: &str, code: &str, color: bool) -> String {
    if color {
        format!("\x1b[{code}m{text}{RESET}")
    } else {
        text.to_string()
    }
}

/// The whole terminal view of a report.
pub fn render(report: &Report, style: Style) -> String {
    let mut out = String::new();
    let c = style.color;
    let _ = writeln!(
        out,
        "{}  window {} .. {} (UTC)  judged at {}  (source: {})",
        paint("gapless coverage", "1", c),
        report.window.from,
        report.window.to,
        report.now,
        report.source
    );
    if !style.summary_only {
        let _ = writeln!(out, "{}", legend(c));
    }
    for s in &report.streams {
        out.push('\n');
        if !style.summary_only {
            heatmap(&mut out, s, style);
        }
        summary(&mut out, s, report, c);
    }
    out.push('\n');
    let t = &report.totals;
    let verdict = match report.status {
        Status::Complete => paint("complete", "32;1", c),
        Status::Holes => paint("recoverable holes", "33;1", c),
        Status::Lost => paint("lost data", "31;1", c),
    };
    let _ = writeln!(
        out,
        "status: {verdict} (exit {})  {} streams, {}), {} holes ({} recoverable, {} lost)",
        report.exit_code,
        report.streams.len(),
        share(t),
        t.holes,
        human(t.recoverable_secs),
        human(t.lost_secs)
    );
    out
}

fn heatmap(out: &mut String, s: &StreamReport, style: Style) {
    let c = style.color;
    let _ = writeln!(
        out,
        "{}  {} partition{}",
        paint(&s.stream, "1", c),
        s.partitions,
        if s.partitions == 1 { "" } else { "s" }
    );
    if s.minutes.is_empty() {
        return;
    }
    let label_w = 16;
    let _ = writeln!(out, "{:label_w$}:00       :10       :20       :30       :40       :50", "");
    let first_hour = s.minutes[0].minute.div_euclid(60);
    let last_hour = s.minutes[s.minutes.len() - 1].minute.div_euclid(60);
    let base = s.minutes[0].minute;
    for hour in first_hour..=last_hour {
        let cells: Vec<Option<&MinuteRow>> = (0..60)
            .map(|i| {
                let m = hour * 60 + i;
                let idx = m - base;
                if idx >= 0 && (idx as usize) < s.minutes.len() {
                    Some(&s.minutes[idx as usize])
                } else {
                    None
                }
            })
            .collect();
        let label = rfc3339(hour * 3600);
        let _ = write!(out, "{} {}h  ", &label[..10], &label[11..13]);
        for cell in &cells {
            match cell {
                Some(r) if not_owed(s, r) => out.push_str(&not_owed_glyph(c)),
                Some(r) => out.push_str(&glyph(r.state, r.suspect, c)),
                None => out.push(' '),
            }
        }
        out.push('\n');
        let not_full = cells.iter().flatten().any(|r| r.state != State::Full && !not_owed(s, r));
        if s.partitions > 1 && (style.all_partitions || not_full) {
            for p in 0..s.partitions as usize {
                let _ = write!(out, "{:>14}  ", format!("p{}", p + 1));
                for cell in &cells {
                    match cell {
                        Some(r) if not_owed(s, r) => out.push_str(&not_owed_glyph(c)),
                        Some(r) => out.push_str(&glyph(r.partitions.get(p).copied().unwrap_or(State::None), false, c)),
                        None => out.push(' '),
                    }
                }
                out.push('\n');
            }
        }
    }
}

/// The share of the owed minutes that are full: `98.36% full (120 of 122
/// owed minutes`, and how many minutes of the window were never owed (the
/// parenthesis is closed by the caller).
pub fn share(t: &Totals) -> String {
    let before = t.minutes - t.owed;
    let before = if before > 0 { format!(", {before} before coverage was owed") } else { String::new() };
    if t.owed == 0 {
        return format!("no minute owed (0 owed minutes{before}");
    }
    format!("{:.2}% full ({} of {} owed minutes{before}", 100.0 * t.full_share_owed, t.full_owed, t.owed)
}

fn summary(out: &mut String, s: &StreamReport, report: &Report, c: bool) {
    let t = &s.totals;
    let _ = writeln!(
        out,
        "{}: {}; partial {}, none {}, pending {}, recovering {}, lost {})",
        paint(&s.stream, "1", c),
        share(t),
        t.partial,
        t.none,
        t.pending,
        t.recovering,
        t.lost
    );
    if let Some(o) = &s.owed_from {
        let _ = writeln!(
            out,
            "  coverage owed from {o}{}",
            if t.not_owed > 0 { format!(" ({} minutes before it are not holes)", t.not_owed) } else { String::new() }
        );
    }
    if s.holes.is_empty() {
        let _ = writeln!(out, "  holes: none");
    } else {
        let _ = writeln!(out, "  holes ({}, {} in all):", s.holes.len(), human(t.hole_secs));
        const MAX: usize = 40;
        for h in s.holes.iter().take(MAX) {
            let when = if h.state.is_lost() {
                "no longer recoverable".to_string()
            } else if h.leaves_window_in_secs > 0 {
                format!("leaves the recovery window in {}", human(h.leaves_window_in_secs))
            } else {
                "leaving the recovery window now".to_string()
            };
            let state = match h.state {
                HoleState::Recoverable => paint("recoverable", "33", c),
                HoleState::Recovering => paint("recovering", "36", c),
                HoleState::Lost => paint("lost", "35;1", c),
                HoleState::Expired => paint("expired", "35;1", c),
            };
            let parts = if s.partitions > 1 {
                format!("  partitions {}", h.partitions.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(","))
            } else {
                String::new()
            };
            let job = h.job.map(|j| format!("  job #{j}")).unwrap_or_default();
            let _ =
                writeln!(out, "    {} .. {}  {:>8}  {state}  {when}{parts}{job}", h.start, h.end, human(h.length_secs));
        }
        if s.holes.len() > MAX {
            let _ = writeln!(out, "    ... and {} more (see --json)", s.holes.len() - MAX);
        }
    }
    let active: Vec<&Job> = s.jobs.iter().filter(|j| j.state != "failed").collect();
    if active.is_empty() {
        let _ = writeln!(out, "  recovery jobs in flight: none");
    } else {
        let _ = writeln!(out, "  recovery jobs in flight ({}):", active.len());
        for j in active {
            let part = j.partition.map(|p| format!("partition {p}")).unwrap_or_else(|| "all partitions".into());
            let _ = writeln!(
                out,
                "    #{} {} {} .. {}  resume at {}  {} left  {}  attempts {}",
                j.id,
                part,
                j.start,
                j.end,
                j.resume,
                human(j.remaining_secs),
                j.state,
                j.attempts
            );
        }
    }
    let failed = s.jobs.iter().filter(|j| j.state == "failed").count();
    if failed > 0 {
        let _ = writeln!(out, "  failed jobs: {failed}");
    }
    let lost_secs: i64 = s.lost.iter().map(|l| l.length_secs).sum();
    if s.lost.is_empty() && t.lost == 0 {
        let _ = writeln!(out, "  lost: none");
    } else {
        let _ = writeln!(out, "  lost: {} minutes ({} marked lost by the archiver)", t.lost, human(lost_secs));
        for l in s.lost.iter().take(10) {
            let _ = writeln!(out, "    {} .. {}  {}", l.start, l.end, human(l.length_secs));
        }
    }
    // Audit.
    let tc = &t.counts;
    if s.audit.unbalanced.is_empty() {
        let _ = writeln!(
            out,
            "  audit: received = stored + duplicates + quarantined in every minute ({} = {} + {} + {})",
            tc.received, tc.stored, tc.duplicates, tc.quarantined
        );
    } else {
        let _ = writeln!(
            out,
            "  audit: {} minutes where received != stored + duplicates + quarantined:",
            paint(&s.audit.unbalanced.len().to_string(), "31;1", c)
        );
        for a in s.audit.unbalanced.iter().take(10) {
            let k = &a.counts;
            let _ = writeln!(out, "    {}  {} != {} + {} + {}", a.t, k.received, k.stored, k.duplicates, k.quarantined);
        }
    }
    if s.audit.segments_verified {
        // Rows left unchecked: evicted to the bucket (`verify`).
        let in_bucket = s.minutes.iter().filter(|m| m.segment_records.is_none()).count();
        if in_bucket > 0 {
            let _ = writeln!(
                out,
                "  segments: {in_bucket} minutes are in the bucket (evicted from this data directory), not checked here \
                 (check them with --data s3://BUCKET/PREFIX --verify-segments)"
            );
        }
        if s.audit.segment_mismatch.is_empty() {
            let which = if in_bucket > 0 { "every other" } else { "every" };
            let _ = writeln!(out, "  segments: {which} minute's segment holds as many records as `stored` says");
        } else {
            let _ = writeln!(
                out,
                "  segments: {} minutes whose segment does not hold `stored` records:",
                paint(&s.audit.segment_mismatch.len().to_string(), "31;1", c)
            );
            for a in s.audit.segment_mismatch.iter().take(10) {
                let n = a.segment_records.unwrap_or(0);
                let why = if n < a.counts.stored { "missing from disk" } else { "counters behind" };
                let _ = writeln!(out, "    {}  {} in the segment, {} stored ({why})", a.t, n, a.counts.stored);
            }
        }
    }
    if !s.audit.suspect.is_empty() {
        let _ = writeln!(
            out,
            "  suspect: {} full minutes stored less than {:.0}% of their neighbours' median:",
            paint(&s.audit.suspect.len().to_string(), "33;1", c),
            100.0 * report.suspect_ratio
        );
        for a in s.audit.suspect.iter().take(10) {
            let _ = writeln!(
                out,
                "    {}  {} stored, neighbours' median {}",
                a.t,
                a.counts.stored,
                a.neighbour_median.unwrap_or(0)
            );
        }
    }
}
