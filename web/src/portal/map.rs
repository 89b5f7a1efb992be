//! Station maps as inline SVG, drawn on the server: every station a circle coloured by its
//! state, each labelled where its label overlaps no other label or circle and stays
//! inside the map, and a legend of the states shown.

use maud::{Markup, html};

use super::words::Words;

const WIDTH: f64 = 480.0;
const HEIGHT: f64 = 360.0;
/// Room around the stations: a circle and some of a label.
const MARGIN: f64 = 28.0;
const RADIUS: f64 = 7.0;
const FONT: f64 = 11.0;
/// A generous width per character of the labels (upper-case names, system fonts).
const CHAR_WIDTH: f64 = FONT * 0.68;

/// The states a station may be in, as CSS classes.
pub(crate) const STATES: [&str; 4] = ["low", "normal", "high", "unknown"];

/// A place on a map: its name, coordinates, state and what hovering shows.
pub(crate) struct Spot {
    pub(crate) name: String,
    pub(crate) lon: f64,
    pub(crate) lat: f64,
    pub(crate) state: &'static str,
    pub(crate) detail: String,
}

/// `low`, `normal` or `high`, else `unknown`.
pub(crate) fn state_class(state: Option<&str>) -> &'static str {
    match state {
        Some("low") => "low",
        Some("normal") => "normal",
        Some("high") => "high",
        _ => "unknown",
    }
}

/// The spots on a plain equirectangular map (no tiles: nothing is loaded from elsewhere).
pub(crate) fn map(spots: &[Spot], label: &str, w: &Words) -> Markup {
    let (mut west, mut south, mut east, mut north) =
        (f64::INFINITY, f64::INFINITY, f64::NEG_INFINITY, f64::NEG_INFINITY);
    for spot in spots {
        (west, south, east, north) = (west.min(spot.lon), south.min(spot.lat), east.max(spot.lon), north.max(spot.lat));
    }
    let squeeze = ((south + north) / 2.0).to_radians().cos().max(0.1);
    let span_x = ((east - west) * squeeze).max(1e-6);
    let span_y = (north - south).max(1e-6);
    let scale = ((WIDTH - 2.0 * MARGIN) / span_x).min((HEIGHT - 2.0 * MARGIN) / span_y).min(20_000.0);
    let at = |spot: &Spot| {
        (
            WIDTH / 2.0 + (spot.lon - (west + east) / 2.0) * squeeze * scale,
            HEIGHT / 2.0 - (spot.lat - (south + north) / 2.0) * scale,
        )
    };
    let points: Vec<(f64, f64)> = spots.iter().map(at).collect();
    let labels = place_labels(spots, &points);
    let shown = STATES.iter().filter(|s| spots.iter().any(|spot| spot.state == **s));
    html! {
        svg.map role="img" aria-label=(label) viewBox=(format!("0 0 {WIDTH} {HEIGHT}")) xmlns="http://www.w3.org/2000/svg" {
            rect x="0" y="0" width=(WIDTH) height=(HEIGHT) fill="#eef2f6" {}
            @for (spot, (x, y)) in spots.iter().zip(&points) {
                circle class=(spot.state) data-state=(spot.state) cx=(format!("{x:.1}")) cy=(format!("{y:.1}")) r=(RADIUS) {
                    title { (spot.name) ": " (spot.detail) }
                }
            }
            @for (spot, placed) in spots.iter().zip(&labels) {
                text x=(format!("{:.1}", placed.x)) y=(format!("{:.1}", placed.y)) text-anchor=(placed.anchor) { (spot.name) }
            }
        }
        ul.legend.states {
            @for state in shown {
                li { span class=(format!("dot {state}")) aria-hidden="true" {} " " (w.station_state(state)) }
            }
        }
    }
}

/// Where a label goes: its anchor point and alignment.
struct Label {
    x: f64,
    y: f64,
    anchor: &'static str,
}

#[derive(Clone, Copy)]
struct Area {
    x0: f64,
    y0: f64,
    x1: f64,
    y1: f64,
}

impl Area {
    fn overlap(&self, other: &Area) -> f64 {
        let dx = (self.x1.min(other.x1) - self.x0.max(other.x0)).max(0.0);
        let dy = (self.y1.min(other.y1) - self.y0.max(other.y0)).max(0.0);
        dx * dy
    }

    fn inside(&self) -> bool {
        self.x0 >= 0.0 && self.y0 >= 0.0 && self.x1 <= WIDTH && self.y1 <= HEIGHT
    }
}

fn text_box(x: f64, y: f64, anchor: &str, chars: usize) -> Area {
    let width = chars as f64 * CHAR_WIDTH;
    let x0 = match anchor {
        "end" => x - width,
        "middle" => x - width / 2.0,
        _ => x,
    };
    Area { x0, y0: y - FONT * 0.85, x1: x0 + width, y1: y + FONT * 0.3 }
}

/// Labels in turn, each at the first place (right, left, above, below, then the same a
/// line up or down, and further) that is inside the map and clear of the circles and the
/// labels placed before; where no place is clear, the least covered one inside the map.
fn place_labels(spots: &[Spot], points: &[(f64, f64)]) -> Vec<Label> {
    let circles: Vec<Area> =
        points.iter().map(|(x, y)| Area { x0: x - RADIUS, y0: y - RADIUS, x1: x + RADIUS, y1: y + RADIUS }).collect();
    let mut taken: Vec<Area> = Vec::new();
    let mut labels = Vec::with_capacity(spots.len());
    for (spot, (x, y)) in spots.iter().zip(points) {
        let chars = spot.name.chars().count();
        let gap = RADIUS + 3.0;
        let mut candidates = Vec::new();
        for shift in [0.0, -1.0, 1.0, -2.0, 2.0, -3.0, 3.0, -4.0, 4.0] {
            let dy = shift * (FONT + 2.0);
            candidates.push(Label { x: x + gap, y: y + FONT * 0.35 + dy, anchor: "start" });
            candidates.push(Label { x: x - gap, y: y + FONT * 0.35 + dy, anchor: "end" });
            if shift == 0.0 {
                candidates.push(Label { x: *x, y: y - gap - 1.0, anchor: "middle" });
                candidates.push(Label { x: *x, y: y + gap + FONT * 0.85, anchor: "middle" });
            }
        }
        let covered = |label: &Label| {
            let area = text_box(label.x, label.y, label.anchor, chars);
            circles.iter().chain(&taken).map(|other| area.overlap(other)).sum::<f64>()
        };
        let inside = |label: &Label| text_box(label.x, label.y, label.anchor, chars).inside();
        let best = candidates
            .iter()
            .position(|c| inside(c) && covered(c) == 0.0)
            .or_else(|| {
                candidates
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| inside(c))
                    .min_by(|(_, a), (_, b)| covered(a).total_cmp(&covered(b)))
                    .map(|(i, _)| i)
            })
            .unwrap_or(0);
        let chosen = candidates.swap_remove(best);
        taken.push(text_box(chosen.x, chosen.y, chosen.anchor, chars));
        labels.push(chosen);
    }
    labels
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::portal::lang::Lang;
    use crate::portal::words::words;

    fn spot(name: &str, lon: f64, lat: f64) -> Spot {
        Spot { name: name.to_owned(), lon, lat, state: "normal", detail: String::new() }
    }

    fn boxes(spots: &[Spot]) -> Vec<Area> {
        let svg = map(spots, "Karte", words(Lang::De)).into_string();
        let mut found = Vec::new();
        for part in svg.split("<text ").skip(1) {
            let attr = |name: &str| -> String {
                let start = part.find(&format!("{name}=\"")).expect("attribute") + name.len() + 2;
                part[start..].split('"').next().expect("value").to_owned()
            };
            let text = part.split('>').nth(1).and_then(|t| t.split('<').next()).expect("text");
            let x: f64 = attr("x").parse().expect("x");
            let y: f64 = attr("y").parse().expect("y");
            found.push(text_box(x, y, &attr("text-anchor"), text.chars().count()));
        }
        found
    }

    #[test]
    fn labels_of_neighbouring_stations_do_not_overlap_and_stay_inside() {
        // Bad Salzuflen's two gauges lie 900 m apart, beside towns 30 km away.
        let spots = [
            spot("BAD SALZUFLEN WERRE", 8.7371, 52.0894),
            spot("BAD SALZUFLEN SALZE", 8.7460, 52.0860),
            spot("DETMOLD WERRE", 8.8837, 51.9385),
            spot("HERFORD WERRE", 8.6712, 52.1196),
            spot("HERFORD AA", 8.6600, 52.1250),
            spot("GÜTERSLOH DALKE", 8.3833, 51.9067),
        ];
        let found = boxes(&spots);
        assert_eq!(found.len(), spots.len());
        for (i, a) in found.iter().enumerate() {
            assert!(a.inside(), "label {i} leaves the map: {:?}", (a.x0, a.y0, a.x1, a.y1));
            for b in &found[i + 1..] {
                assert_eq!(a.overlap(b), 0.0, "labels overlap");
            }
        }
    }

    #[test]
    fn a_station_at_the_edge_is_labelled_inward() {
        let spots = [spot("DETMOLD WERRE", 8.8837, 51.9385), spot("BERLEBECK BERLEBECKE", 8.8541, 51.9122)];
        for found in boxes(&spots) {
            assert!(found.inside());
        }
    }

    #[test]
    fn the_legend_names_the_states_shown() {
        let mut spots = vec![spot("A", 8.0, 52.0), spot("B", 8.1, 52.1)];
        spots[1].state = "high";
        let html = map(&spots, "Karte", words(Lang::De)).into_string();
        assert!(html.contains("hoch") && html.contains("normal") && !html.contains("niedrig"), "{html}");
    }
}
