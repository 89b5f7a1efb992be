//! What a read filter may contain: a row predicate, not a query language.
//!
//! Filters come from anyone who may read a dataset, so they are held to columns, literals,
//! comparisons, boolean logic and a short list of cheap functions. Anything else (functions
//! that build large values, subqueries, aggregates) is refused before planning.

use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::logical_expr::Expr;

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
            Expr::Column(_)
            | Expr::Literal(..)
            | Expr::BinaryExpr(_)
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
