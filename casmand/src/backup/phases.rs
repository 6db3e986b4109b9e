//! How long each step of an operation took, for its log line (`phases=`).

/// How long each step of an operation took, for its log line.
pub(crate) struct Phases {
    last: std::time::Instant,
    done: Vec<(&'static str, u128)>,
}

impl Phases {
    pub(crate) fn start() -> Phases {
        Phases { last: std::time::Instant::now(), done: Vec::new() }
    }

    /// Ends the step `name`.
    pub(crate) fn mark(&mut self, name: &'static str) {
        let now = std::time::Instant::now();
        self.done.push((name, now.duration_since(self.last).as_millis()));
        self.last = now;
    }
}

impl std::fmt::Display for Phases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self.done.iter().map(|(n, ms)| format!("{n} {ms} ms")).collect();
        f.write_str(&parts.join(", "))
    }
}
