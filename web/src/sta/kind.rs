//! The entity types of the SensorThings data model, their names, properties and
//! navigation properties.

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    Thing,
    Location,
    HistoricalLocation,
    Datastream,
    Sensor,
    ObservedProperty,
    Observation,
    FeatureOfInterest,
}

impl Kind {
    pub(crate) const ALL: [Self; 8] = [
        Self::Thing,
        Self::Location,
        Self::HistoricalLocation,
        Self::Datastream,
        Self::Sensor,
        Self::ObservedProperty,
        Self::Observation,
        Self::FeatureOfInterest,
    ];

    pub(crate) fn plural(self) -> &'static str {
        match self {
            Self::Thing => "Things",
            Self::Location => "Locations",
            Self::HistoricalLocation => "HistoricalLocations",
            Self::Datastream => "Datastreams",
            Self::Sensor => "Sensors",
            Self::ObservedProperty => "ObservedProperties",
            Self::Observation => "Observations",
            Self::FeatureOfInterest => "FeaturesOfInterest",
        }
    }

    pub(crate) fn singular(self) -> &'static str {
        match self {
            Self::Thing => "Thing",
            Self::Location => "Location",
            Self::HistoricalLocation => "HistoricalLocation",
            Self::Datastream => "Datastream",
            Self::Sensor => "Sensor",
            Self::ObservedProperty => "ObservedProperty",
            Self::Observation => "Observation",
            Self::FeatureOfInterest => "FeatureOfInterest",
        }
    }

    pub(crate) fn from_plural(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.plural() == name)
    }

    /// The entity type a navigation property leads to, and whether it is a collection.
    pub(crate) fn navigation(self, name: &str) -> Option<(Self, bool)> {
        self.navigations()
            .iter()
            .copied()
            .find(|(kind, many)| name == if *many { kind.plural() } else { kind.singular() })
    }

    pub(crate) fn navigations(self) -> &'static [(Self, bool)] {
        match self {
            Self::Thing => &[(Self::Location, true), (Self::HistoricalLocation, true), (Self::Datastream, true)],
            Self::Location => &[(Self::Thing, true), (Self::HistoricalLocation, true)],
            Self::HistoricalLocation => &[(Self::Thing, false), (Self::Location, true)],
            Self::Datastream => &[
                (Self::Thing, false),
                (Self::Sensor, false),
                (Self::ObservedProperty, false),
                (Self::Observation, true),
            ],
            Self::Sensor | Self::ObservedProperty => &[(Self::Datastream, true)],
            Self::Observation => &[(Self::Datastream, false), (Self::FeatureOfInterest, false)],
            Self::FeatureOfInterest => &[(Self::Observation, true)],
        }
    }

    /// The entity's own properties, besides `id`.
    pub(crate) fn properties(self) -> &'static [&'static str] {
        match self {
            Self::Thing => &["name", "description", "properties"],
            Self::Location => &["name", "description", "encodingType", "location", "properties"],
            Self::HistoricalLocation => &["time"],
            Self::Datastream => &[
                "name",
                "description",
                "unitOfMeasurement",
                "observationType",
                "observedArea",
                "phenomenonTime",
                "resultTime",
                "properties",
            ],
            Self::Sensor => &["name", "description", "encodingType", "metadata", "properties"],
            Self::ObservedProperty => &["name", "definition", "description", "properties"],
            Self::Observation => {
                &["phenomenonTime", "result", "resultTime", "resultQuality", "validTime", "parameters"]
            }
            Self::FeatureOfInterest => &["name", "description", "encodingType", "feature", "properties"],
        }
    }

    pub(crate) fn has_property(self, name: &str) -> bool {
        name == "id" || self.properties().contains(&name)
    }
}
