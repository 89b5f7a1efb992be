//! The portal's one stylesheet: readable on phones, AA contrast, no web fonts.

use axum::http::header;
use axum::response::IntoResponse;

const CSS: &str = r#"
:root { --ink: #1b1f24; --muted: #4a5260; --line: #c9ced6; --accent: #0b5cad; --bg: #ffffff;
        --low: #8a5a00; --normal: #1f6f3f; --high: #b3261e; --unknown: #59606b; }
* { box-sizing: border-box; }
body { margin: 0; font: 16px/1.5 system-ui, sans-serif; color: var(--ink); background: var(--bg); }
header, main, footer { max-width: 72rem; margin: 0 auto; padding: 0.75rem 1rem; }
header { display: flex; justify-content: space-between; align-items: center; border-bottom: 1px solid var(--line); }
footer { border-top: 1px solid var(--line); color: var(--muted); font-size: 0.9rem; }
a { color: var(--accent); }
a:focus, button:focus, input:focus, select:focus { outline: 3px solid #ffbf47; outline-offset: 2px; }
.site { font-weight: 700; text-decoration: none; color: var(--ink); }
form[role=search] { display: flex; gap: 0.5rem; flex-wrap: wrap; margin: 1rem 0; }
input[type=search] { flex: 1 1 16rem; padding: 0.5rem; font-size: 1rem; border: 1px solid var(--muted); border-radius: 4px; }
button { padding: 0.5rem 1rem; font-size: 1rem; background: var(--accent); color: #fff; border: 0; border-radius: 4px; }
.layout { display: grid; grid-template-columns: 16rem 1fr; gap: 2rem; }
@media (max-width: 48rem) { .layout { grid-template-columns: 1fr; } }
fieldset { border: 1px solid var(--line); margin: 0 0 1rem; }
ul.plain { list-style: none; padding: 0; }
table { border-collapse: collapse; width: 100%; font-size: 0.9rem; }
.scroll { overflow-x: auto; }
th, td { text-align: left; padding: 0.25rem 0.5rem; border-bottom: 1px solid var(--line); }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 0.25rem 1rem; }
dt { font-weight: 600; }
dd { margin: 0; }
pre { background: #f3f4f6; padding: 0.75rem; overflow-x: auto; }
svg { max-width: 100%; height: auto; }
select, textarea, input { max-width: 100%; }
textarea { width: 100%; font-family: ui-monospace, monospace; }
code { overflow-wrap: anywhere; }
form.inline { display: inline; }
.error { color: var(--high); font-weight: 600; }
svg text { font: 12px system-ui, sans-serif; fill: var(--muted); }
.chart polyline { fill: none; stroke-width: 1.5; }
.chart .grid line, .chart .axis { stroke: #dde1e7; stroke-width: 1; }
.chart .axis { stroke: var(--line); }
.map { max-width: 36rem; }
.map circle { stroke: #fff; stroke-width: 1.5; }
.map text { font-size: 11px; fill: var(--ink); paint-order: stroke; stroke: #eef2f6; stroke-width: 3px; }
ul.legend { list-style: none; padding: 0; display: flex; flex-wrap: wrap; gap: 0.25rem 1rem; font-size: 0.9rem; }
.c0 { color: #0b5cad; } .c1 { color: #b3261e; } .c2 { color: #1f6f3f; } .c3 { color: #7a3e9d; }
.c4 { color: #8a5a00; } .c5 { color: #006d77; } .c6 { color: #a0306e; } .c7 { color: #3c4a5c; }
.dot { display: inline-block; width: 0.8em; height: 0.8em; border-radius: 50%; vertical-align: -0.05em; }
.dot.low { background: var(--low); } .dot.normal { background: var(--normal); } .dot.high { background: var(--high); } .dot.unknown { background: var(--unknown); }
.low { fill: var(--low); } .normal { fill: var(--normal); } .high { fill: var(--high); } .unknown { fill: var(--unknown); }
#stations { display: grid; grid-template-columns: repeat(auto-fill, minmax(20rem, 1fr)); gap: 1rem; }
tr[data-status=stale] td, tr[data-status=unavailable] td, tr[data-status=mismatched] td { color: var(--high); }
mark { background: #fff3b0; }
#tiles { display: grid; grid-template-columns: repeat(auto-fill, minmax(min(100%, 34rem), 1fr)); gap: 1rem 2rem; }
p.about { color: var(--muted); font-size: 0.9rem; margin-top: -0.5rem; }
nav.ranges { display: flex; gap: 1rem; margin-bottom: 0.5rem; }
nav.ranges a[aria-current] { font-weight: 700; color: var(--ink); text-decoration: none; }
"#;

pub(crate) async fn css() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=3600")], CSS)
}
