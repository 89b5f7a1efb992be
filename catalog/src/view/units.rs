//! Unit conversion between the columns of a view's sources and its target schema.

/// A linear conversion `target = value * scale + offset`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Conversion {
    pub scale: f64,
    pub offset: f64,
}

impl Conversion {
    pub const IDENTITY: Self = Self { scale: 1.0, offset: 0.0 };

    pub fn is_identity(&self) -> bool {
        *self == Self::IDENTITY
    }

    /// How to turn values in `from` into values in `to`; `None` when the units are of
    /// different dimensions or unknown.
    pub fn between(from: &str, to: &str) -> Option<Self> {
        if normalise(from) == normalise(to) {
            return Some(Self::IDENTITY);
        }
        let (from_dimension, from_scale, from_offset) = unit(from)?;
        let (to_dimension, to_scale, to_offset) = unit(to)?;
        if from_dimension != to_dimension {
            return None;
        }
        // To the base unit, then from it: base = v * s + o.
        let scale = from_scale / to_scale;
        Some(Self { scale, offset: (from_offset - to_offset) / to_scale })
    }
}

fn normalise(unit: &str) -> String {
    unit.trim().replace(['³'], "3").replace(' ', "").to_lowercase()
}

/// Dimension, scale and offset to the dimension's base unit.
fn unit(name: &str) -> Option<(&'static str, f64, f64)> {
    Some(match normalise(name).as_str() {
        "mm" => ("length", 0.001, 0.0),
        "cm" => ("length", 0.01, 0.0),
        "dm" => ("length", 0.1, 0.0),
        "m" => ("length", 1.0, 0.0),
        "km" => ("length", 1000.0, 0.0),
        "m3/s" | "m^3/s" => ("flow", 1.0, 0.0),
        "l/s" => ("flow", 0.001, 0.0),
        "°c" | "degc" | "celsius" => ("temperature", 1.0, 0.0),
        "k" | "kelvin" => ("temperature", 1.0, -273.15),
        "°f" | "degf" => ("temperature", 5.0 / 9.0, -32.0 * 5.0 / 9.0),
        "m/s" => ("speed", 1.0, 0.0),
        "km/h" => ("speed", 1.0 / 3.6, 0.0),
        "%" | "percent" => ("ratio", 0.01, 0.0),
        "hpa" => ("pressure", 100.0, 0.0),
        "pa" => ("pressure", 1.0, 0.0),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn convert(value: f64, from: &str, to: &str) -> f64 {
        let c = Conversion::between(from, to).expect("convertible");
        value * c.scale + c.offset
    }

    #[test]
    fn converts_within_a_dimension() {
        assert!((convert(1.23, "m", "cm") - 123.0).abs() < 1e-9);
        assert!((convert(250.0, "cm", "m") - 2.5).abs() < 1e-9);
        assert!((convert(0.0, "°C", "K") - 273.15).abs() < 1e-9);
        assert!((convert(212.0, "°F", "°C") - 100.0).abs() < 1e-9);
        assert!((convert(1.5, "m³/s", "l/s") - 1500.0).abs() < 1e-9);
        assert!(Conversion::between("CM", "cm").expect("same").is_identity());
    }

    #[test]
    fn refuses_across_dimensions_and_unknown_units() {
        assert_eq!(Conversion::between("m", "°C"), None);
        assert_eq!(Conversion::between("furlong", "m"), None);
    }
}
