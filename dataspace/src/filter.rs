//! What a read filter may contain: a row predicate, not a query language.
//!
//! Filters come from anyone who may read a dataset, so they are held to a documented,
//! bounded subset: columns, literals, comparisons, arithmetic, boolean logic, IN, BETWEEN,
//! LIKE, IS NULL, CASE, casts and a short list of functions whose cost is bounded by the
//! row they read. Anything else is refused before planning, naming the construct: regular
//! expressions (`~`, `SIMILAR TO`), what multiplies a value's size (`||`, `repeat`, `lpad`),
//! subqueries, aggregates and window functions.
//!
//! Which rows a filter meets is not decided here: the sealed read path applies it to the
//! grant's output only, so no expression can learn anything from an error.

use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::logical_expr::{BinaryExpr, Expr, Operator};

/// Scalar functions whose cost is bounded by the row they read.
const ALLOWED_FUNCTIONS: &[&str] = &[
    "abs",
    "btrim",
    "ceil",
    "char_length",
    "character_length",
    "coalesce",
    "date_part",
    "date_trunc",
    "ends_with",
    "floor",
    "length",
    "lower",
    "ltrim",
    "nullif",
    "round",
    "rtrim",
    "starts_with",
    "strpos",
    "substr",
    "substring",
    "to_timestamp",
    "trim",
    "trunc",
    "upper",
];

/// Why `expr` may not be used as a filter, if it may not.
pub(crate) fn refusal(expr: &Expr) -> Option<String> {
    let mut refused = None;
    let _ = expr.apply(|node| {
        let allowed = match node {
            Expr::BinaryExpr(BinaryExpr { op, .. }) => {
                if let Some(construct) = refused_operator(*op) {
                    refused = Some(format!("{construct} is not allowed in a filter"));
                    return Ok(TreeNodeRecursion::Stop);
                }
                true
            }
            Expr::Column(_)
            | Expr::Literal(..)
            | Expr::Like(_)
            | Expr::Not(_)
            | Expr::IsNotNull(_)
            | Expr::IsNull(_)
            | Expr::IsTrue(_)
            | Expr::IsFalse(_)
            | Expr::IsUnknown(_)
            | Expr::IsNotTrue(_)
            | Expr::IsNotFalse(_)
            | Expr::IsNotUnknown(_)
            | Expr::Negative(_)
            | Expr::Between(_)
            | Expr::Case(_)
            | Expr::Cast(_)
            | Expr::TryCast(_)
            | Expr::InList(_) => true,
            Expr::ScalarFunction(function) => ALLOWED_FUNCTIONS.contains(&function.name()),
            _ => false,
        };
        if allowed {
            Ok(TreeNodeRecursion::Continue)
        } else {
            refused = Some(format!(
                "`{node}` is not allowed in a filter; use columns, literals, comparisons, AND/OR/NOT, \
                 IN, BETWEEN, LIKE, IS NULL and the functions {}",
                ALLOWED_FUNCTIONS.join(", ")
            ));
            Ok(TreeNodeRecursion::Stop)
        }
    });
    refused
}

/// The name of an operator a filter may not use: those that match regular expressions,
/// build larger values or go beyond comparing and computing on one row's values.
fn refused_operator(op: Operator) -> Option<&'static str> {
    match op {
        Operator::Eq
        | Operator::NotEq
        | Operator::Lt
        | Operator::LtEq
        | Operator::Gt
        | Operator::GtEq
        | Operator::Plus
        | Operator::Minus
        | Operator::Multiply
        | Operator::Divide
        | Operator::Modulo
        | Operator::And
        | Operator::Or
        | Operator::IsDistinctFrom
        | Operator::IsNotDistinctFrom => None,
        Operator::RegexMatch | Operator::RegexIMatch | Operator::RegexNotMatch | Operator::RegexNotIMatch => {
            Some("`~` (regular expression match)")
        }
        Operator::StringConcat => Some("`||` (string concatenation)"),
        Operator::LikeMatch | Operator::ILikeMatch | Operator::NotLikeMatch | Operator::NotILikeMatch => {
            Some("`~~` (use LIKE)")
        }
        Operator::BitwiseAnd
        | Operator::BitwiseOr
        | Operator::BitwiseXor
        | Operator::BitwiseShiftRight
        | Operator::BitwiseShiftLeft => Some("a bitwise operator"),
        _ => Some("this operator"),
    }
}

#[cfg(test)]
mod tests {
    use datafusion::prelude::SessionContext;

    use super::refusal;

    fn check(filter: &str) -> Option<String> {
        let frame = SessionContext::new().read_empty().expect("frame");
        refusal(&frame.parse_sql_expr(filter).expect("parses"))
    }

    #[test]
    fn size_multipliers_and_regular_expressions_are_refused_by_name() {
        let concat = check("'a' || 'b' = 'ab'").expect("refused");
        assert!(concat.contains("`||`"), "{concat}");
        let regex = check("'abc' ~ 'a.*'").expect("refused");
        assert!(regex.contains("`~`"), "{regex}");
        assert!(check("repeat('a', 1000000) = 'a'").expect("refused").contains("not allowed"));
        assert!(check("'a' SIMILAR TO 'a'").expect("refused").contains("not allowed"));
        assert_eq!(check("1 + 2 > 2 AND lower('A') = 'a' AND 3 BETWEEN 1 AND 4"), None);
    }
}
