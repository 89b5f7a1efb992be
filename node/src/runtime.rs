use std::future::Future;
use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Logs as text, or as JSON lines when `URBANMESH_LOG_FORMAT=json`; filter by `RUST_LOG`,
/// else at `level`.
pub(crate) fn init_tracing(level: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    if std::env::var("URBANMESH_LOG_FORMAT").is_ok_and(|f| f == "json") {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Runs `main` on the I/O runtime, with a second runtime for queries so that scans and
/// decoding never hold up network I/O. Both are torn down outside async context.
pub(crate) fn block_on<F, Fut>(main: F) -> anyhow::Result<()>
where
    F: FnOnce(tokio::runtime::Handle) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let io = tokio::runtime::Builder::new_multi_thread().enable_all().thread_name("urbanmesh-io").build()?;
    let query = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("urbanmesh-query")
        .thread_stack_size(8 * 1024 * 1024)
        .build()?;
    let result = io.block_on(main(query.handle().clone()));
    io.shutdown_timeout(std::time::Duration::from_secs(5));
    query.shutdown_timeout(std::time::Duration::from_secs(5));
    result
}
