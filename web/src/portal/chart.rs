//! Time-series charts as inline SVG, drawn on the server; hover values come from `<title>`
//! elements.

use maud::{Markup, html};

use super::lang::Lang;
use super::rows::Series;

/// Distinct colours with at least 4.5:1 contrast on white.
const PALETTE: [&str; 8] = ["#0b5cad", "#b3261e", "#1f6f3f", "#7a3e9d", "#8a5a00", "#006d77", "#a0306e", "#3c4a5c"];
const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 260.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 28.0;
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

/// A line per series over their common time span, every point drawn.
pub(crate) fn chart(series: &[Series], label: &str, unit: Option<&str>, lang: Lang) -> Markup {
    drawn(series, label, unit, lang, usize::MAX, MARKED)
}

/// A small chart (a dashboard's, one per station): at most [`SMALL_POINTS`] points drawn per
/// series (each the maximum of its stretch, so peaks stay visible), fewer of them marked.
pub(crate) fn small_chart(series: &[Series], label: &str, unit: Option<&str>, lang: Lang) -> Markup {
    drawn(series, label, unit, lang, SMALL_POINTS, MARKED / 2)
}

/// Points a small chart draws per series: about one per two pixels of its width.
const SMALL_POINTS: usize = 360;

fn drawn(
    series: &[Series],
    label: &str,
    unit: Option<&str>,
    lang: Lang,
    points_max: usize,
    marked_max: usize,
) -> Markup {
    let points = series.iter().flat_map(|s| s.points.iter());
    let (mut t0, mut t1, mut v0, mut v1) = (i64::MAX, i64::MIN, f64::INFINITY, f64::NEG_INFINITY);
    for (t, v) in points {
        (t0, t1, v0, v1) = (t0.min(*t), t1.max(*t), v0.min(*v), v1.max(*v));
    }
    if t0 > t1 {
        return html! {};
    }
    let pad = ((v1 - v0) * 0.05).max(0.5);
    let (v0, v1) = (v0 - pad, v1 + pad);
    let x = |t: i64| LEFT + (t - t0) as f64 / ((t1 - t0).max(1) as f64) * (WIDTH - LEFT - RIGHT);
    let y = |v: f64| TOP + (v1 - v) / (v1 - v0) * (HEIGHT - TOP - BOTTOM);
    let unit = unit.map(|u| format!("\u{a0}{u}")).unwrap_or_default();
    html! {
        svg.chart role="img" aria-label=(label) viewBox=(format!("0 0 {WIDTH} {HEIGHT}")) xmlns="http://www.w3.org/2000/svg" {
            line x1=(LEFT) y1=(TOP) x2=(LEFT) y2=(HEIGHT - BOTTOM) stroke="#c9ced6" {}
            line x1=(LEFT) y1=(HEIGHT - BOTTOM) x2=(WIDTH - RIGHT) y2=(HEIGHT - BOTTOM) stroke="#c9ced6" {}
            text x="4" y=(TOP + 10.0) { (lang.number(v1, 1)) (unit) }
            text x="4" y=(HEIGHT - BOTTOM) { (lang.number(v0, 1)) (unit) }
            text x=(LEFT) y=(HEIGHT - 8.0) { (lang.moment(t0)) }
            text x=(WIDTH - RIGHT) y=(HEIGHT - 8.0) text-anchor="end" { (lang.moment(t1)) }
            @for (i, one) in series.iter().enumerate() {
                g class=(format!("c{}", i % PALETTE.len())) {
                    title { (one.name) }
                    @let points = thinned(&one.points, points_max);
                    polyline stroke=(colour(i)) points=(polyline(&points, &x, &y)) {}
                    @for (t, v) in marked(&points, marked_max) {
                        circle cx=(format!("{:.1}", x(t))) cy=(format!("{:.1}", y(v))) r="2.5" fill=(colour(i)) {
                            title { (one.name) ": " (lang.number(v, 1)) (unit) ", " (lang.moment(t)) }
                        }
                    }
                }
            }
        }
    }
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
