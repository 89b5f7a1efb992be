//! Time-series charts as inline SVG, drawn on the server; hover values come from `<title>`
//! elements.

use maud::{Markup, html};

use super::lang::Lang;
use super::local;
use super::rows::Series;

/// Distinct colours with at least 4.5:1 contrast on white.
const PALETTE: [&str; 8] = ["#0b5cad", "#b3261e", "#1f6f3f", "#7a3e9d", "#8a5a00", "#006d77", "#a0306e", "#3c4a5c"];
/// Points per series that carry a hover value.
const MARKED: usize = 48;

pub(crate) fn colour(index: usize) -> &'static str {
    PALETTE[index % PALETTE.len()]
}

/// Which colour each series has, as a list under the chart.
pub(crate) fn legend(series: &[Series]) -> Markup {
    html! {
        @if series.len() > 1 {
            ul.legend {
                @for (i, one) in series.iter().enumerate() {
                    li { span class=(format!("swatch c{}", i % PALETTE.len())) aria-hidden="true" { "■" } " " (one.name) }
                }
            }
        }
    }
}

/// How a chart is drawn: its size in the units of its `viewBox` (text keeps its size in
/// them, so a chart shown small is drawn small), the points drawn and marked per series.
#[derive(Clone, Copy)]
struct Style {
    width: f64,
    height: f64,
    points_max: usize,
    marked_max: usize,
}

const LARGE: Style = Style { width: 720.0, height: 300.0, points_max: usize::MAX, marked_max: MARKED };
/// A dashboard's small chart: about one point per pixel of its width (each the maximum of
/// its stretch, so peaks stay visible), fewer of them marked.
const SMALL: Style = Style { width: 360.0, height: 220.0, points_max: 360, marked_max: MARKED / 2 };
const LEFT: f64 = 64.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 28.0;
/// Horizontal grid lines a chart aims for.
const VALUE_TICKS: f64 = 5.0;
/// A break in a series wider than this many of its usual steps is drawn as a gap.
const GAP_STEPS: i64 = 3;

/// A line per series over their common time span, every point drawn.
pub(crate) fn chart(series: &[Series], label: &str, unit: Option<&str>, lang: Lang) -> Markup {
    drawn(series, label, unit, lang, LARGE, None)
}

/// A chart over the time from `span.0` to `span.1` (milliseconds), whatever its points
/// cover: the charts of one dashboard share their time axis.
pub(crate) fn chart_over(series: &[Series], label: &str, unit: Option<&str>, lang: Lang, span: (i64, i64)) -> Markup {
    drawn(series, label, unit, lang, LARGE, Some(span))
}

/// A small chart (a view's, one per station), drawn [`SMALL`].
pub(crate) fn small_chart(series: &[Series], label: &str, unit: Option<&str>, lang: Lang) -> Markup {
    drawn(series, label, unit, lang, SMALL, None)
}

fn drawn(
    series: &[Series],
    label: &str,
    unit: Option<&str>,
    lang: Lang,
    size: Style,
    span: Option<(i64, i64)>,
) -> Markup {
    let clipped: Vec<Series>;
    let series = match span {
        None => series,
        Some((from, to)) => {
            let within = |t: &i64| from <= *t && *t <= to;
            clipped = series
                .iter()
                .map(|s| Series {
                    name: s.name.clone(),
                    points: s.points.iter().copied().filter(|(t, _)| within(t)).collect(),
                    state: None,
                    position: None,
                })
                .collect();
            clipped.as_slice()
        }
    };
    let points = series.iter().flat_map(|s| s.points.iter());
    let (mut t0, mut t1, mut v0, mut v1) = (i64::MAX, i64::MIN, f64::INFINITY, f64::NEG_INFINITY);
    for (t, v) in points {
        (t0, t1, v0, v1) = (t0.min(*t), t1.max(*t), v0.min(*v), v1.max(*v));
    }
    if t0 > t1 {
        return html! {};
    }
    if let Some((from, to)) = span {
        (t0, t1) = (from, to);
    }
    let pad = ((v1 - v0) * 0.05).max(0.5);
    let (step, v0, v1) = value_axis(v0 - pad, v1 + pad);
    let (bottom, right) = (size.height - BOTTOM, size.width - RIGHT);
    let x = |t: i64| LEFT + (t - t0) as f64 / ((t1 - t0).max(1) as f64) * (right - LEFT);
    let y = |v: f64| TOP + (v1 - v) / (v1 - v0) * (bottom - TOP);
    let unit = unit.map(|u| format!("\u{a0}{u}")).unwrap_or_default();
    let decimals = if step < 1.0 { (-step.log10().floor()) as usize } else { 0 };
    let values = (0..).map(|k| v0 + k as f64 * step).take_while(|v| *v <= v1 + step * 1e-6);
    let times = time_ticks(t0, t1);
    html! {
        svg.chart role="img" aria-label=(label) viewBox=(format!("0 0 {} {}", size.width, size.height)) xmlns="http://www.w3.org/2000/svg" {
            g.grid {
                @for v in values {
                    line x1=(LEFT) y1=(format!("{:.1}", y(v))) x2=(right) y2=(format!("{:.1}", y(v))) {}
                    text x=(LEFT - 4.0) y=(format!("{:.1}", y(v) + 4.0)) text-anchor="end" { (lang.number(v, decimals)) }
                }
                @for (t, daily) in &times {
                    line x1=(format!("{:.1}", x(*t))) y1=(TOP) x2=(format!("{:.1}", x(*t))) y2=(bottom) {}
                    text x=(format!("{:.1}", x(*t))) y=(size.height - 8.0) text-anchor="middle" { (lang.tick(*t, *daily)) }
                }
            }
            text.unit x="4" y=(TOP + 2.0) { (unit.trim_start_matches('\u{a0}')) }
            line.axis x1=(LEFT) y1=(bottom) x2=(right) y2=(bottom) {}
            @for (i, one) in series.iter().enumerate() {
                g class=(format!("c{}", i % PALETTE.len())) {
                    title { (one.name) }
                    @let points = thinned(&one.points, size.points_max);
                    @for run in runs(&points) {
                        polyline stroke=(colour(i)) points=(polyline(run, &x, &y)) {}
                    }
                    @for (t, v) in marked(&points, size.marked_max) {
                        circle cx=(format!("{:.1}", x(t))) cy=(format!("{:.1}", y(v))) r="2.5" fill=(colour(i)) {
                            title { (one.name) ": " (lang.number(v, 1)) (unit) ", " (lang.moment(t)) }
                        }
                    }
                }
            }
        }
    }
}

/// The value axis for `low..high`: a step of 1, 2 or 5 times a power of ten giving about
/// [`VALUE_TICKS`] lines, and the range widened to whole steps.
fn value_axis(low: f64, high: f64) -> (f64, f64, f64) {
    let raw = ((high - low) / VALUE_TICKS).max(1e-9);
    let power = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * power).find(|s| *s >= raw).unwrap_or(10.0 * power);
    (step, (low / step).floor() * step, (high / step).ceil() * step)
}

/// Times to mark between `t0` and `t1`: whole hours or days of German civil time, at most
/// eight, each with whether it marks a day.
fn time_ticks(t0: i64, t1: i64) -> Vec<(i64, bool)> {
    const HOUR: i64 = 3_600_000;
    const DAY: i64 = 24 * HOUR;
    let span = t1 - t0;
    let Some(&step) = [HOUR, 3 * HOUR, 6 * HOUR, 12 * HOUR, DAY, 2 * DAY, 7 * DAY].iter().find(|s| span / **s <= 8)
    else {
        return Vec::new();
    };
    // Aligned in local time: a tick at local midnight (or a whole local hour).
    let offset = local::berlin_offset_millis(t0);
    let first = (t0 + offset).div_euclid(step.min(DAY)) * step.min(DAY) - offset;
    let mut ticks = Vec::new();
    let mut t = first;
    while t <= t1 && ticks.len() <= 8 {
        if t >= t0 {
            ticks.push((t, step >= DAY));
        }
        t += step;
    }
    ticks
}

/// The stretches of a series without gaps: a gap is a break of more than [`GAP_STEPS`]
/// times its median step.
fn runs(points: &[(i64, f64)]) -> Vec<&[(i64, f64)]> {
    let mut steps: Vec<i64> = points.windows(2).map(|w| w[1].0 - w[0].0).collect();
    if steps.is_empty() {
        return vec![points];
    }
    steps.sort_unstable();
    let usual = steps[steps.len() / 2].max(1);
    points.chunk_by(|a, b| b.0 - a.0 <= GAP_STEPS * usual).collect()
}

fn polyline(points: &[(i64, f64)], x: &impl Fn(i64) -> f64, y: &impl Fn(f64) -> f64) -> String {
    let mut text = String::with_capacity(points.len() * 12);
    for (t, v) in points {
        text.push_str(&format!("{:.1},{:.1} ", x(*t), y(*v)));
    }
    text
}

/// At most `max` points: each the highest of its stretch of the series, at its time.
fn thinned(points: &[(i64, f64)], max: usize) -> std::borrow::Cow<'_, [(i64, f64)]> {
    if points.len() <= max {
        return std::borrow::Cow::Borrowed(points);
    }
    let stretch = points.len().div_ceil(max);
    let highest =
        |chunk: &[(i64, f64)]| chunk.iter().copied().fold((0, f64::NEG_INFINITY), |a, p| if p.1 > a.1 { p } else { a });
    std::borrow::Cow::Owned(points.chunks(stretch).map(highest).collect())
}

/// At most `max` evenly spread points, the latest always among them.
fn marked(points: &[(i64, f64)], max: usize) -> impl Iterator<Item = (i64, f64)> + '_ {
    let step = points.len().div_ceil(max).max(1);
    let last = points.len().saturating_sub(1);
    points.iter().enumerate().filter(move |(i, _)| (last - i) % step == 0).map(|(_, p)| *p)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: i64 = 60_000;

    #[test]
    fn a_break_of_more_than_three_usual_steps_is_a_gap() {
        let points: Vec<(i64, f64)> = [0, 15, 30, 45, 120, 135].iter().map(|m| (m * MINUTE, 1.0)).collect();
        let runs = runs(&points);
        assert_eq!(runs.iter().map(|r| r.len()).collect::<Vec<_>>(), [4, 2]);
        assert_eq!(super::runs(&points[..1]).len(), 1);
    }

    #[test]
    fn the_value_axis_steps_by_one_two_or_five() {
        assert_eq!(value_axis(83.0, 97.0), (5.0, 80.0, 100.0));
        assert_eq!(value_axis(0.12, 0.91), (0.2, 0.0, 1.0));
        let (step, low, high) = value_axis(-3.0, 1234.0);
        assert_eq!((step, low, high), (500.0, -500.0, 1500.0));
    }

    #[test]
    fn a_week_is_marked_at_local_midnights() {
        let t0 = chrono::DateTime::parse_from_rfc3339("2026-11-26T10:00:00Z").expect("time").timestamp_millis();
        let ticks = time_ticks(t0, t0 + 7 * 24 * 60 * MINUTE);
        assert_eq!(ticks.len(), 7, "{ticks:?}");
        assert!(ticks.iter().all(|(t, daily)| *daily && (t + 3_600_000) % (24 * 60 * MINUTE) == 0));
        let day = time_ticks(t0, t0 + 24 * 60 * MINUTE);
        assert_eq!(day.len(), 8);
        assert!(day.iter().all(|(t, daily)| !*daily && (t + 3_600_000) % (3 * 60 * MINUTE) == 0));
    }
}
