//! System and process metrics from Linux's `/proc`: the parsers are pure (text in,
//! numbers out, tested on captured files); [`read_system`] and [`read_process`] do the
//! reading. The figures are the ones `psutil` reports, computed the same way, so they
//! can be checked against it: RSS is `statm`'s resident pages × the page size, CPU % is
//! the user + system ticks spent over the wall time between two samples.

use std::path::Path;

/// Clock ticks per second (`sysconf(_SC_CLK_TCK)`), for `/proc/*/stat` times.
pub fn ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}

pub fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 { p as u64 } else { 4096 }
}

/// The `cpu` line of `/proc/stat`: ticks spent in total and idle (idle + iowait).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CpuTimes {
    pub total: u64,
    pub idle: u64,
}

pub fn parse_stat_cpu(stat: &str) -> Option<CpuTimes> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    if fields.len() < 4 {
        return None;
    }
    // user nice system idle iowait irq softirq steal (guest time is inside user already).
    let total = fields.iter().take(8).sum();
    let idle = fields[3] + fields.get(4).copied().unwrap_or(0);
    Some(CpuTimes { total, idle })
}

/// CPU busy % between two samples of `/proc/stat`.
pub fn cpu_percent(before: CpuTimes, after: CpuTimes) -> f64 {
    let total = after.total.saturating_sub(before.total);
    if total == 0 {
        return 0.0;
    }
    let idle = after.idle.saturating_sub(before.idle);
    100.0 * (total - idle.min(total)) as f64 / total as f64
}

/// Memory from `/proc/meminfo`, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Memory {
    pub total: u64,
    pub available: u64,
}

impl Memory {
    pub fn used(&self) -> u64 {
        self.total.saturating_sub(self.available)
    }
}

pub fn parse_meminfo(text: &str) -> Option<Memory> {
    let mut total = None;
    let mut available = None;
    for line in text.lines() {
        let mut parts = line.split_whitespace();
        let key = parts.next()?;
        let value: u64 = parts.next().and_then(|v| v.parse().ok()).unwrap_or(0) * 1024;
        match key {
            "MemTotal:" => total = Some(value),
            "MemAvailable:" => available = Some(value),
            _ => {}
        }
    }
    Some(Memory {
        total: total?,
        available: available?,
    })
}

/// The 1-, 5- and 15-minute load averages from `/proc/loadavg`.
pub fn parse_loadavg(text: &str) -> Option<[f64; 3]> {
    let mut it = text.split_whitespace().map(|f| f.parse::<f64>().ok());
    Some([it.next()??, it.next()??, it.next()??])
}

/// What `/proc/PID/stat` says of a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ProcStat {
    /// `R`, `S`, `D`, `Z`, `T`…
    pub state: u8,
    /// user + system ticks.
    pub cpu_ticks: u64,
    pub threads: u64,
    /// Ticks after boot when it started: with the pid, a process's identity.
    pub start_ticks: u64,
}

/// Parses `/proc/PID/stat`. The command name (field 2) may hold spaces and parentheses:
/// the fields are counted from the last `)`.
pub fn parse_pid_stat(text: &str) -> Option<ProcStat> {
    let after = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = after.split_whitespace().collect();
    // f[0] is field 3 (state); field n is f[n - 3].
    let num = |n: usize| f.get(n - 3).and_then(|v| v.parse::<u64>().ok());
    Some(ProcStat {
        state: *f.first()?.as_bytes().first()?,
        cpu_ticks: num(14)? + num(15)?,
        threads: num(20)?,
        start_ticks: num(22)?,
    })
}

/// Resident pages from `/proc/PID/statm` (its second field).
pub fn parse_statm_resident(text: &str) -> Option<u64> {
    text.split_whitespace().nth(1)?.parse().ok()
}

/// A system sample.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct SystemSample {
    pub cpu: CpuTimes,
    pub memory: Memory,
    pub load: [f64; 3],
}

/// This host's facts: cores, memory, kernel release (what is unknown stays empty).
pub fn host_facts(proc_root: &Path) -> crate::net::codec::HostFacts {
    let memory = std::fs::read_to_string(proc_root.join("meminfo"))
        .ok()
        .and_then(|m| parse_meminfo(&m))
        .map_or(0, |m| m.total);
    crate::net::codec::HostFacts {
        cores: std::thread::available_parallelism().map_or(0, |n| n.get() as u32),
        memory_bytes: memory,
        kernel: std::fs::read_to_string(proc_root.join("sys/kernel/osrelease"))
            .map(|s| s.trim().to_string())
            .unwrap_or_default(),
    }
}

pub fn read_system(proc_root: &Path) -> std::io::Result<SystemSample> {
    let read = |name: &str| std::fs::read_to_string(proc_root.join(name));
    let bad = |what: &str| std::io::Error::other(format!("cannot parse {what}"));
    Ok(SystemSample {
        cpu: parse_stat_cpu(&read("stat")?).ok_or_else(|| bad("/proc/stat"))?,
        memory: parse_meminfo(&read("meminfo")?).ok_or_else(|| bad("/proc/meminfo"))?,
        load: parse_loadavg(&read("loadavg")?).ok_or_else(|| bad("/proc/loadavg"))?,
    })
}

/// A process sample.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ProcessSample {
    pub stat: ProcStat,
    pub rss_bytes: u64,
    pub open_files: u64,
}

/// Reads one process; `Ok(None)` when it is gone.
pub fn read_process(proc_root: &Path, pid: u32) -> std::io::Result<Option<ProcessSample>> {
    let dir = proc_root.join(pid.to_string());
    let gone = |e: &std::io::Error| {
        matches!(
            e.kind(),
            std::io::ErrorKind::NotFound | std::io::ErrorKind::InvalidInput
        ) || e.raw_os_error() == Some(libc::ESRCH)
    };
    let stat = match std::fs::read_to_string(dir.join("stat")) {
        Ok(s) => s,
        Err(e) if gone(&e) => return Ok(None),
        Err(e) => return Err(e),
    };
    let Some(stat) = parse_pid_stat(&stat) else {
        return Ok(None);
    };
    let rss_pages = match std::fs::read_to_string(dir.join("statm")) {
        Ok(s) => parse_statm_resident(&s).unwrap_or(0),
        Err(e) if gone(&e) => return Ok(None),
        Err(e) => return Err(e),
    };
    // Another user's process cannot be listed; it still has metrics.
    let open_files = std::fs::read_dir(dir.join("fd")).map_or(0, |d| d.count() as u64);
    Ok(Some(ProcessSample {
        stat,
        rss_bytes: rss_pages * page_size(),
        open_files,
    }))
}

/// CPU % of one process between two samples `wall_secs` apart (100 = one core busy).
pub fn process_cpu_percent(before: &ProcStat, after: &ProcStat, wall_secs: f64) -> f64 {
    if wall_secs <= 0.0 {
        return 0.0;
    }
    let ticks = after.cpu_ticks.saturating_sub(before.cpu_ticks) as f64;
    100.0 * ticks / ticks_per_second() / wall_secs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_files() {
        let stat = "cpu  100 5 50 800 20 1 2 3 0 0\ncpu0 50 2 25 400 10 0 1 1 0 0\nintr 1\n";
        let a = parse_stat_cpu(stat).unwrap();
        assert_eq!(
            a,
            CpuTimes {
                total: 981,
                idle: 820
            }
        );
        let b = CpuTimes {
            total: 1081,
            idle: 870,
        };
        assert!((cpu_percent(a, b) - 50.0).abs() < 1e-9);
        assert_eq!(cpu_percent(a, a), 0.0);

        let meminfo = "MemTotal:       16000 kB\nMemFree:  1000 kB\nMemAvailable:    4000 kB\n";
        let m = parse_meminfo(meminfo).unwrap();
        assert_eq!(
            (m.total, m.available, m.used()),
            (16_384_000, 4_096_000, 12_288_000)
        );
        assert_eq!(parse_meminfo("MemTotal: 1 kB\n"), None);

        assert_eq!(
            parse_loadavg("0.50 0.25 0.10 1/123 4567\n"),
            Some([0.5, 0.25, 0.1])
        );
    }

    #[test]
    fn a_process_name_with_spaces_and_parentheses() {
        let text = "1234 (my (odd) name) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 7 0 98765 1000000 300 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";
        let s = parse_pid_stat(text).unwrap();
        assert_eq!(s.state, b'S');
        assert_eq!(s.cpu_ticks, 300);
        assert_eq!(s.threads, 7);
        assert_eq!(s.start_ticks, 98765);
        assert_eq!(parse_statm_resident("2000 300 100 1 0 500 0\n"), Some(300));
        assert_eq!(parse_pid_stat("garbage"), None);
    }

    #[test]
    fn this_process_reads_back_sensibly() {
        let proc_root = Path::new("/proc");
        let me = read_process(proc_root, std::process::id())
            .unwrap()
            .unwrap();
        assert!(me.rss_bytes > 1 << 20, "{me:?}");
        assert!(me.stat.threads >= 1);
        assert!(me.open_files >= 3);
        let sys = read_system(proc_root).unwrap();
        assert!(sys.memory.total > sys.memory.available);
        // A pid that cannot exist.
        assert_eq!(read_process(proc_root, u32::MAX).unwrap(), None);
    }
}
