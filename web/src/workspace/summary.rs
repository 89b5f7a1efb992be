//! A policy in plain German: who sees the dataset, who reads what, and on what terms.

use urbanmesh_policy::{Assignee, Policy, Rule, Visibility};

/// Who may know the dataset exists.
pub(crate) fn visibility(policy: &Policy) -> String {
    match &policy.visibility {
        Visibility::Public => "alle".into(),
        Visibility::Federation => "Mitglieder des Verbunds".into(),
        Visibility::Peers(peers) => format!("die Mitglieder {}", peers.join(", ")),
        Visibility::Internal => "nur die Beschäftigten".into(),
    }
}

/// The whole policy as sentences: "Bürgerinnen und Bürger sehen …, Mitglieder des Verbunds
/// sehen …, sonst niemand."
pub(crate) fn summary(policy: &Policy) -> String {
    let mut sentences = Vec::new();
    if policy.rules.is_empty() {
        sentences.push(match &policy.visibility {
            Visibility::Public => {
                "Bürgerinnen und Bürger und alle anderen sehen und lesen die Daten vollständig.".to_owned()
            }
            Visibility::Federation => {
                "Mitglieder des Verbunds sehen und lesen die Daten vollständig; Bürgerinnen und Bürger sehen sie nicht."
                    .to_owned()
            }
            Visibility::Peers(peers) => {
                format!("Nur die Mitglieder {} sehen und lesen die Daten vollständig.", peers.join(", "))
            }
            Visibility::Internal => {
                "Nur die Beschäftigten der Kommune sehen die Daten; nichts verlässt den Knoten.".to_owned()
            }
        });
    } else {
        sentences.push(format!("Den Datensatz finden {}.", visibility(policy)));
        for rule in &policy.rules {
            sentences.push(rule_sentence(rule));
        }
        sentences.push("Sonst liest niemand die Daten.".to_owned());
    }
    sentences.push("Die Beschäftigten der Kommune sehen immer alles.".to_owned());
    if let Some(attribution) = &policy.attribution {
        sentences.push(format!("Wer die Daten nutzt, nennt „{attribution}“."));
    }
    sentences.join(" ")
}

fn rule_sentence(rule: &Rule) -> String {
    let who = match &rule.assignee {
        Assignee::Anyone => "Alle, auch Bürgerinnen und Bürger,".to_owned(),
        Assignee::Federation => "Mitglieder des Verbunds".to_owned(),
        Assignee::Peers(peers) => format!("Die Mitglieder {}", peers.join(", ")),
        Assignee::Roles(roles) => format!("Personen mit der Rolle {}", roles.join(" oder ")),
    };
    let mut what = match &rule.aggregate {
        Some(aggregate) => format!(
            "nur Summen und Mittel je {} über mindestens {} {}",
            aggregate.bucket,
            aggregate.min_group,
            aggregate.weight.as_deref().map_or("Zeilen".to_owned(), |w| format!("(gezählt in „{w}“)"))
        ),
        None => "die Zeilen".to_owned(),
    };
    if let Some(columns) = &rule.columns {
        what.push_str(&format!(", nur die Spalten {}", columns.join(", ")));
    }
    if !rule.masked.is_empty() {
        what.push_str(&format!(", ohne {}", rule.masked.join(", ")));
    }
    if let Some(filter) = &rule.row_filter {
        what.push_str(&format!(", nur wo {filter}"));
    }
    if let Some(max) = rule.max_rows {
        what.push_str(&format!(", höchstens {max} Zeilen je Abruf"));
    }
    let mut terms = Vec::new();
    if !rule.purposes.is_empty() {
        terms.push(format!("zum Zweck {}", rule.purposes.join(" oder ")));
    }
    if let Some(until) = rule.valid_until {
        terms.push(format!("bis {}", until.format("%d.%m.%Y")));
    }
    if let Some(from) = rule.valid_from {
        terms.push(format!("ab {}", from.format("%d.%m.%Y")));
    }
    let terms = if terms.is_empty() { String::new() } else { format!(" ({})", terms.join(", ")) };
    format!("{who} lesen {what}{terms}.")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn says_who_sees_what_in_plain_words() {
        let policy: Policy = serde_json::from_value(serde_json::json!({
            "visibility": "federation",
            "rules": [{"assignee": "federation", "masked": ["sensor_serial"],
                       "aggregate": {"bucket": "1h", "min_group": 10}}],
            "attribution": "Stadt Herford"
        }))
        .expect("policy");
        let text = summary(&policy);
        assert!(
            text.contains("Mitglieder des Verbunds lesen nur Summen und Mittel je 1h über mindestens 10"),
            "{text}"
        );
        assert!(text.contains("ohne sensor_serial") && text.contains("Sonst liest niemand"), "{text}");
        assert!(summary(&Policy::default()).contains("nichts verlässt den Knoten"));
    }
}
