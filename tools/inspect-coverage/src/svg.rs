//! `--svg FILE`: the heatmap as an image. One block per stream: a row per
//! hour, a cell per minute, partition rows under hours that are not full,
//! a legend, and a tooltip (`<title>`) on every cell that is not plain full.

use std::fmt::Write;

use gapless_report::schema::*;
use gapless_time::{human, rfc3339};

const CELL: i64 = 10;
const LABEL_W: i64 = 130;
const ROW_H: i64 = 12;
/// Minutes before the stream owed coverage.
const NOT_OWED: &str = "#eeeeee";

pub fn color(state: State, suspect: bool) -> &'static str {
    match state {
        State::Full if suspect => "#f0c020",
        State::Full => "#2e9e44",
        State::Partial => "#f0a030",
        State::None => "#d83a3a",
        State::Pending => "#c8c8c8",
        State::Recovering => "#2f8fd8",
        State::Lost => "#7a1f7a",
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The SVG document of a report.
pub fn render(report: &Report) -> String {
    let mut body = String::new();
    let mut y: i64 = 20;
    let width = LABEL_W + 60 * CELL + 20;
    let _ = writeln!(
        body,
        r#"<text x="10" y="{y}" font-size="14" font-weight="bold">gapless coverage: {} ({:.2}% of {} owed minutes full)</text>"#,
        report.status.as_str(),
        100.0 * report.totals.full_share_owed,
        report.totals.owed
    );
    y += 16;
    let _ = writeln!(
        body,
        r#"<text x="10" y="{y}">{} .. {} (UTC), judged at {}</text>"#,
        esc(&report.window.from),
        esc(&report.window.to),
        esc(&report.now)
    );
    y += 18;
    let mut x = 10;
    for st in State::ALL {
        let _ = writeln!(
            body,
            r#"<rect x="{x}" y="{}" width="{CELL}" height="{CELL}" fill="{}"/><text x="{}" y="{}">{}</text>"#,
            y - 9,
            color(st, false),
            x + 14,
            y,
            st.as_str()
        );
        x += 95;
    }
    let _ = writeln!(
        body,
        r#"<rect x="{x}" y="{}" width="{CELL}" height="{CELL}" fill="{}"/><text x="{}" y="{}">suspect</text>"#,
        y - 9,
        color(State::Full, true),
        x + 14,
        y
    );
    y += 12;
    for s in &report.streams {
        y += 20;
        let _ = writeln!(
            body,
            r#"<text x="10" y="{y}" font-size="13" font-weight="bold">{} ({} partition{}): {:.2}% of {} owed minutes full, {} holes, {} lost minutes</text>"#,
            esc(&s.stream),
            s.partitions,
            if s.partitions == 1 { "" } else { "s" },
            100.0 * s.totals.full_share_owed,
            s.totals.owed,
            s.holes.len(),
            s.totals.lost
        );
        y += 6;
        for m in (0..60).step_by(10) {
            let _ = writeln!(body, r#"<text x="{}" y="{}" fill="gray">:{m:02}</text>"#, LABEL_W + m * CELL, y + 8);
        }
        y += 12;
        if s.minutes.is_empty() {
            continue;
        }
        let base = s.minutes[0].minute;
        let first_hour = base.div_euclid(60);
        let last_hour = s.minutes[s.minutes.len() - 1].minute.div_euclid(60);
        for hour in first_hour..=last_hour {
            let rows: Vec<(usize, &MinuteRow)> = (0..60)
                .filter_map(|i| {
                    let idx = hour * 60 + i - base;
                    (idx >= 0 && (idx as usize) < s.minutes.len()).then(|| (i as usize, &s.minutes[idx as usize]))
                })
                .collect();
            let label = rfc3339(hour * 3600);
            let _ = writeln!(body, r#"<text x="10" y="{}">{} {}h</text>"#, y + 9, &label[..10], &label[11..13]);
            for (i, r) in &rows {
                if crate::render::not_owed(s, r) {
                    let _ = writeln!(
                        body,
                        r#"<rect x="{}" y="{y}" width="{}" height="{}" fill="{NOT_OWED}"/>"#,
                        LABEL_W + *i as i64 * CELL,
                        CELL - 1,
                        CELL - 1
                    );
                    continue;
                }
                cell(&mut body, LABEL_W + *i as i64 * CELL, y, r.state, r.suspect, r, None);
            }
            y += ROW_H;
            if s.partitions > 1 && rows.iter().any(|(_, r)| r.state != State::Full && !crate::render::not_owed(s, r)) {
                for p in 0..s.partitions as usize {
                    let _ = writeln!(body, r#"<text x="70" y="{}" fill="gray">p{}</text>"#, y + 9, p + 1);
                    for (i, r) in &rows {
                        let st = r.partitions.get(p).copied().unwrap_or(State::None);
                        cell(&mut body, LABEL_W + *i as i64 * CELL, y, st, false, r, Some(p + 1));
                    }
                    y += ROW_H;
                }
            }
        }
    }
    y += 10;
    format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{y}" viewBox="0 0 {width} {y}" font-family="monospace" font-size="11">
<rect width="100%" height="100%" fill="white"/>
{body}</svg>
"#
    )
}

fn cell(out: &mut String, x: i64, y: i64, st: State, suspect: bool, r: &MinuteRow, partition: Option<usize>) {
    let w = CELL - 1;
    if st == State::Full && !suspect {
        let _ = writeln!(out, r#"<rect x="{x}" y="{y}" width="{w}" height="{w}" fill="{}"/>"#, color(st, suspect));
        return;
    }
    let who = partition.map(|p| format!(" partition {p}")).unwrap_or_default();
    let k = &r.counts;
    let note = if suspect { " (suspect: low volume)" } else { "" };
    let _ = writeln!(
        out,
        r#"<rect x="{x}" y="{y}" width="{w}" height="{w}" fill="{}"><title>{}{who}: {}{note}; received {} stored {} duplicates {} quarantined {}</title></rect>"#,
        color(st, suspect),
        esc(&r.t),
        st.as_str(),
        k.received,
        k.stored,
        k.duplicates,
        k.quarantined
    );
}

/// A one-line description, for logs.
pub fn describe(report: &Report) -> String {
    format!(
        "{} streams, {} minutes, {} holes ({})",
        report.streams.len(),
        report.totals.minutes,
        report.totals.holes,
        human(report.totals.hole_secs)
    )
}
