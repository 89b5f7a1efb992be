//! The geometry `$filter` compares entities' points with: a polygon given as WKT.

/// Longest ring accepted, in points.
const MAX_POINTS: usize = 10_000;

/// A polygon's outer ring (holes are not supported), in longitude and latitude.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Polygon {
    ring: Vec<(f64, f64)>,
}

impl Polygon {
    /// `POLYGON((x y, x y, …))`, as `geography'…'` literals carry it.
    pub(crate) fn from_wkt(text: &str) -> Result<Self, String> {
        let body = text
            .trim()
            .strip_prefix("POLYGON")
            .map(str::trim)
            .and_then(|rest| rest.strip_prefix("(("))
            .and_then(|rest| rest.strip_suffix("))"))
            .ok_or_else(|| format!("a geography must be a POLYGON((x y, …)), not `{text}`"))?;
        if body.contains('(') || body.contains(')') {
            return Err("polygons with holes are not supported".into());
        }
        let ring = body
            .split(',')
            .map(|pair| {
                let mut numbers = pair.split_whitespace().map(str::parse::<f64>);
                match (numbers.next(), numbers.next(), numbers.next()) {
                    (Some(Ok(x)), Some(Ok(y)), None) if x.is_finite() && y.is_finite() => Ok((x, y)),
                    _ => Err(format!("`{}` is not a point `x y`", pair.trim())),
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        if ring.len() < 4 || ring.first() != ring.last() {
            return Err("a polygon's ring needs at least 4 points and ends where it starts".into());
        }
        if ring.len() > MAX_POINTS {
            return Err(format!("a polygon may have at most {MAX_POINTS} points"));
        }
        Ok(Self { ring })
    }

    /// Whether the point lies inside or on the edge of the ring (even-odd rule).
    pub(crate) fn contains(&self, x: f64, y: f64) -> bool {
        let mut inside = false;
        for pair in self.ring.windows(2) {
            let ((x1, y1), (x2, y2)) = (pair[0], pair[1]);
            let on_edge = (x - x1) * (y2 - y1) == (y - y1) * (x2 - x1)
                && x >= x1.min(x2)
                && x <= x1.max(x2)
                && y >= y1.min(y2)
                && y <= y1.max(y2);
            if on_edge {
                return true;
            }
            if (y1 > y) != (y2 > y) && x < (x2 - x1) * (y - y1) / (y2 - y1) + x1 {
                inside = !inside;
            }
        }
        inside
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_inside_on_and_outside_a_bbox() {
        let bbox = Polygon::from_wkt("POLYGON((8 51, 9 51, 9 52, 8 52, 8 51))").expect("bbox");
        assert!(bbox.contains(8.5, 51.5));
        assert!(bbox.contains(8.0, 51.5));
        assert!(!bbox.contains(9.5, 51.5));
        assert!(!bbox.contains(8.5, 50.0));
    }

    #[test]
    fn malformed_polygons_are_refused_with_the_reason() {
        for (wkt, says) in [
            ("POINT(1 2)", "POLYGON"),
            ("POLYGON((1 2, 3 4))", "at least 4"),
            ("POLYGON((1 2, 3 x, 1 2, 1 2))", "`3 x`"),
            ("POLYGON((0 0, 1 0, 1 1, 0 0),(0.1 0.1, 0.2 0.1, 0.2 0.2, 0.1 0.1))", "holes"),
        ] {
            assert!(Polygon::from_wkt(wkt).expect_err(wkt).contains(says), "{wkt}");
        }
    }
}
