//! What every Prometheus scrape of a service is expected to show about the service itself:
//! `urbanmesh_build_info` (the version) and the process's `process_*` series (memory, CPU,
//! open files, threads, start time), read from `/proc` at each scrape.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

/// Registers the build's version and the process collector.
pub fn register_process_metrics(registry: &mut Registry) {
    registry.register(
        "urbanmesh_build",
        "The running node's version",
        Info::new(vec![("version", env!("CARGO_PKG_VERSION").to_owned())]),
    );
    registry.register_collector(Box::new(ProcessCollector));
}

#[derive(Debug)]
struct ProcessCollector;

/// The figures of this process, where the system tells them.
#[derive(Debug, Default, PartialEq)]
struct Figures {
    resident_bytes: Option<i64>,
    virtual_bytes: Option<i64>,
    cpu_seconds: Option<f64>,
    threads: Option<i64>,
    open_fds: Option<i64>,
    start_time_seconds: Option<f64>,
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let figures = read();
        let gauges = [
            ("process_resident_memory_bytes", "Resident memory size in bytes", figures.resident_bytes),
            ("process_virtual_memory_bytes", "Virtual memory size in bytes", figures.virtual_bytes),
            ("process_threads", "Number of OS threads", figures.threads),
            ("process_open_fds", "Number of open file descriptors", figures.open_fds),
        ];
        for (name, help, value) in gauges {
            if let Some(value) = value {
                let gauge = ConstGauge::new(value);
                gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)?;
            }
        }
        if let Some(start) = figures.start_time_seconds {
            let gauge = ConstGauge::new(start);
            let help = "Start time of the process since the epoch, in seconds";
            gauge.encode(encoder.encode_descriptor(
                "process_start_time_seconds",
                help,
                None,
                gauge.metric_type(),
            )?)?;
        }
        if let Some(seconds) = figures.cpu_seconds {
            let counter = ConstCounter::new(seconds);
            let help = "User and system CPU time spent, in seconds";
            counter.encode(encoder.encode_descriptor("process_cpu_seconds", help, None, counter.metric_type())?)?;
        }
        Ok(())
    }
}

fn read() -> Figures {
    let stat = std::fs::read_to_string("/proc/self/stat").ok();
    let boot = std::fs::read_to_string("/proc/stat").ok();
    let mut figures = stat.as_deref().map(|stat| parse_stat(stat, boot.as_deref())).unwrap_or_default();
    // The page size differs between kernels (16 and 64 KiB on some aarch64): take the
    // resident size as the kernel states it.
    if let Some(kib) = std::fs::read_to_string("/proc/self/status").ok().and_then(|status| {
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<i64>().ok())
    }) {
        figures.resident_bytes = Some(kib * 1024);
    }
    figures.open_fds = std::fs::read_dir("/proc/self/fd").ok().map(|d| d.count() as i64);
    figures
}

/// Clock ticks per second and page size: the values every Linux on x86_64 and aarch64 uses.
const TICKS: f64 = 100.0;
const PAGE_BYTES: i64 = 4096;

/// `/proc/self/stat` (and `/proc/stat` for the boot time): the fields after the command
/// name, which may itself contain spaces and parentheses.
fn parse_stat(stat: &str, boot: Option<&str>) -> Figures {
    let Some((_, rest)) = stat.rsplit_once(')') else { return Figures::default() };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Field numbers of proc(5), less the three before `state` (pid, comm, and state is index 0).
    let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<i64>().ok());
    let boot_seconds =
        boot.and_then(|b| b.lines().find_map(|l| l.strip_prefix("btime "))).and_then(|b| b.trim().parse::<f64>().ok());
    Figures {
        cpu_seconds: field(14).zip(field(15)).map(|(user, system)| (user + system) as f64 / TICKS),
        threads: field(20),
        start_time_seconds: boot_seconds.zip(field(22)).map(|(boot, ticks)| boot + ticks as f64 / TICKS),
        virtual_bytes: field(23),
        resident_bytes: field(24).map(|pages| pages * PAGE_BYTES),
        open_fds: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fields_after_a_command_name_with_spaces_and_parentheses_are_read() {
        let stat = "4242 (urbanmesh (io) x) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 7 0 1000 \
                    123456789 2500 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";
        let figures = parse_stat(stat, Some("cpu 1 2 3\nbtime 1767225600\n"));
        assert_eq!(figures.cpu_seconds, Some(3.0));
        assert_eq!(figures.threads, Some(7));
        assert_eq!(figures.start_time_seconds, Some(1_767_225_610.0));
        assert_eq!(figures.virtual_bytes, Some(123_456_789));
        assert_eq!(figures.resident_bytes, Some(2500 * 4096));
        assert_eq!(parse_stat("garbage", None), Figures::default());
    }

    #[test]
    fn this_process_is_measured() {
        let figures = read();
        assert!(figures.resident_bytes.is_some_and(|b| b > 0), "{figures:?}");
        assert!(figures.open_fds.is_some_and(|n| n > 0), "{figures:?}");
    }
}
