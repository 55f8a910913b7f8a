//! Operating-system figures for `/api/metrics`, read from Linux's /proc: process CPU time, resident memory and
//! thread count, machine-wide CPU time and memory. CPU percentages need two readings, so [`SystemSampler`]
//! keeps the previous one and reports usage over the interval between calls.

use std::time::Instant;

/// One reading of the counters.
#[derive(Debug, Clone, Copy, Default)]
struct Reading {
    /// Process user+system CPU time, seconds.
    process_cpu_secs: f64,
    /// Machine busy and total CPU time, clock ticks summed over all CPUs.
    machine_busy_ticks: u64,
    machine_total_ticks: u64,
}

/// Figures for one collection.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SystemSnapshot {
    /// Process CPU use over the last interval, percent of one CPU (like `top`; may exceed 100).
    pub process_cpu_percent: f64,
    /// Machine CPU use over the last interval, percent of all CPUs.
    pub system_cpu_percent: f64,
    pub process_resident_bytes: u64,
    pub threads: u64,
    pub system_memory_total_bytes: u64,
    pub system_memory_used_percent: f64,
}

/// Keeps the previous reading to turn CPU counters into percentages.
#[derive(Debug, Default)]
pub struct SystemSampler {
    previous: Option<(Instant, Reading)>,
    last: SystemSnapshot,
}

/// Intervals shorter than this reuse the last figures (too short to measure CPU use meaningfully).
const MIN_INTERVAL_SECS: f64 = 0.2;

impl SystemSampler {
    /// Takes a reading; CPU figures cover the time since the previous call.
    pub fn sample(&mut self) -> SystemSnapshot {
        let now = Instant::now();
        let reading = read_counters();
        if let Some((at, prev)) = self.previous {
            let secs = now.duration_since(at).as_secs_f64();
            if secs < MIN_INTERVAL_SECS {
                return self.last;
            }
            self.last.process_cpu_percent =
                ((reading.process_cpu_secs - prev.process_cpu_secs) / secs * 100.0).max(0.0);
            let total = reading.machine_total_ticks.saturating_sub(prev.machine_total_ticks);
            let busy = reading.machine_busy_ticks.saturating_sub(prev.machine_busy_ticks);
            self.last.system_cpu_percent = if total == 0 { 0.0 } else { busy as f64 / total as f64 * 100.0 };
        }
        self.previous = Some((now, reading));
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        self.last.process_resident_bytes = status_kib(&status, "VmRSS:") * 1024;
        self.last.threads = status_kib(&status, "Threads:");
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let total = status_kib(&meminfo, "MemTotal:") * 1024;
        let available = status_kib(&meminfo, "MemAvailable:") * 1024;
        self.last.system_memory_total_bytes = total;
        self.last.system_memory_used_percent =
            if total == 0 { 0.0 } else { total.saturating_sub(available) as f64 / total as f64 * 100.0 };
        self.last
    }
}

fn read_counters() -> Reading {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let machine = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let (busy, total) = parse_machine_cpu(&machine).unwrap_or((0, 0));
    Reading {
        process_cpu_secs: parse_process_cpu_ticks(&stat).unwrap_or(0) as f64 / clock_ticks_per_second(),
        machine_busy_ticks: busy,
        machine_total_ticks: total,
    }
}

fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions; it returns -1 for unknown names.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as f64 } else { 100.0 }
}

/// utime + stime from /proc/self/stat. The command name (field 2) may contain spaces and parentheses, so
/// fields are counted after its closing parenthesis.
fn parse_process_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the command: state is field 3, utime field 14, stime field 15 (1-based in proc(5)).
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// (busy, total) ticks from the aggregate `cpu` line of /proc/stat.
fn parse_machine_cpu(stat: &str) -> Option<(u64, u64)> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let values: Vec<u64> = line.split_whitespace().skip(1).filter_map(|v| v.parse().ok()).collect();
    // user nice system idle iowait irq softirq steal (guest time is already counted in user).
    let total: u64 = values.iter().take(8).sum();
    let idle = values.get(3).copied().unwrap_or(0) + values.get(4).copied().unwrap_or(0);
    Some((total.saturating_sub(idle), total))
}

/// The number after `key` in a `Key:   123 kB` style file.
fn status_kib(text: &str, key: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_cpu_ticks_survive_odd_command_names() {
        let stat = "1234 (we ird) name)) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 7 0 100 200 300";
        assert_eq!(parse_process_cpu_ticks(stat), Some(300));
        assert_eq!(parse_process_cpu_ticks("garbage"), None);
    }

    #[test]
    fn machine_cpu_counts_idle_and_iowait_as_not_busy() {
        let stat = "cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 1 2 3\n";
        assert_eq!(parse_machine_cpu(stat), Some((150, 1000)));
    }

    #[test]
    fn live_figures_are_real_numbers() {
        let mut s = SystemSampler::default();
        let first = s.sample();
        assert!(first.process_resident_bytes > 0);
        assert!(first.threads >= 1);
        assert!(first.system_memory_total_bytes > 0);
        assert!((0.0..=100.0).contains(&first.system_memory_used_percent));
    }
}
