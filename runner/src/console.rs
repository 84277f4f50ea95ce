//! Where a command's output goes: this process's stdout and stderr, or — for a command the
//! server runs on behalf of a client of its local API — back to that client.
//!
//! Commands write through [`outln!`](crate::outln) and [`errln!`](crate::errln) instead of
//! `println!`; a thread that runs a command for a client installs a [`Sink`] with
//! [`capture`]. Listeners that write from other threads (progress of parallel scenarios)
//! take the [`current`] sink when they are made.
//!
//! Owns nothing else: no formatting, no colours (those ask [`is_terminal`]).

use std::cell::RefCell;
use std::io::{IsTerminal, Write};
use std::sync::Arc;

/// The two streams a command writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Out,
    Err,
}

/// Somewhere output can go.
pub trait Sink: Send + Sync {
    /// Writes `text`; false when nobody reads any more (the client went away).
    fn write(&self, stream: Stream, text: &str) -> bool;
    /// Whether spinners make sense on `stream`.
    fn is_terminal(&self, stream: Stream) -> bool;
    /// Whether `stream` gets colours: on a terminal, unless `NO_COLOR` is set.
    fn color(&self, stream: Stream) -> bool {
        self.is_terminal(stream) && !no_color()
    }
    /// Whether live progress is left out (`-q`): only results, warnings and errors.
    fn quiet(&self) -> bool {
        false
    }
}

/// `NO_COLOR` set and not empty (no-color.org).
fn no_color() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
}

/// `--color`: when output gets colours.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    /// On a terminal, unless `NO_COLOR` is set.
    #[default]
    Auto,
    Always,
    Never,
}

/// What the person asked of the console (`--color`, `-q`), over another sink.
pub struct Preferences {
    pub inner: Arc<dyn Sink>,
    pub color: ColorChoice,
    pub quiet: bool,
}

impl Sink for Preferences {
    fn write(&self, stream: Stream, text: &str) -> bool {
        self.inner.write(stream, text)
    }

    fn is_terminal(&self, stream: Stream) -> bool {
        self.inner.is_terminal(stream)
    }

    fn color(&self, stream: Stream) -> bool {
        match self.color {
            ColorChoice::Auto => self.inner.color(stream),
            ColorChoice::Always => true,
            ColorChoice::Never => false,
        }
    }

    fn quiet(&self) -> bool {
        self.quiet || self.inner.quiet()
    }
}

/// The process's own stdout and stderr.
struct Stdio;

impl Sink for Stdio {
    fn write(&self, stream: Stream, text: &str) -> bool {
        // Never panics on a closed pipe (`lowtouch history | head`, a server without a
        // terminal): the output is lost, the work goes on.
        match stream {
            Stream::Out => std::io::stdout().lock().write_all(text.as_bytes()).is_ok(),
            Stream::Err => std::io::stderr().lock().write_all(text.as_bytes()).is_ok(),
        }
    }

    fn is_terminal(&self, stream: Stream) -> bool {
        match stream {
            Stream::Out => std::io::stdout().is_terminal(),
            Stream::Err => std::io::stderr().is_terminal(),
        }
    }
}

thread_local! {
    static CURRENT: RefCell<Option<Arc<dyn Sink>>> = const { RefCell::new(None) };
}

/// The sink of this thread: a client's, inside [`capture`], else the process's stdio.
pub fn current() -> Arc<dyn Sink> {
    CURRENT
        .with(|c| c.borrow().clone())
        .unwrap_or_else(|| Arc::new(Stdio))
}

/// A log: every line written through it starts with the UTC time it was written at
/// (`2026-12-04T20:32:05.123Z `), as `lowtouch serve`'s lines do.
pub struct Timestamped {
    inner: Arc<dyn Sink>,
    /// Per stream: whether the next byte starts a line.
    at_line_start: std::sync::Mutex<[bool; 2]>,
}

impl Timestamped {
    pub fn new(inner: Arc<dyn Sink>) -> Timestamped {
        Timestamped {
            inner,
            at_line_start: std::sync::Mutex::new([true; 2]),
        }
    }
}

impl Sink for Timestamped {
    fn write(&self, stream: Stream, text: &str) -> bool {
        let now = chrono::Utc::now()
            .format("%Y-%m-%dT%H:%M:%S%.3fZ ")
            .to_string();
        let mut starts = self.at_line_start.lock().unwrap_or_else(|e| e.into_inner());
        let start = &mut starts[stream as usize];
        let stamped = stamp(&now, text, start);
        self.inner.write(stream, &stamped)
    }

    fn is_terminal(&self, stream: Stream) -> bool {
        self.inner.is_terminal(stream)
    }

    fn color(&self, stream: Stream) -> bool {
        self.inner.color(stream)
    }

    fn quiet(&self) -> bool {
        self.inner.quiet()
    }
}

/// `text` with `prefix` before each line it starts; `at_line_start` carries across writes.
fn stamp(prefix: &str, text: &str, at_line_start: &mut bool) -> String {
    let mut out = String::with_capacity(text.len() + prefix.len());
    for piece in text.split_inclusive('\n') {
        if *at_line_start {
            out.push_str(prefix);
        }
        out.push_str(piece);
        *at_line_start = piece.ends_with('\n');
    }
    out
}

/// Sends this thread's output to `sink` from now on (a thread a server's runtime starts).
pub fn install(sink: Arc<dyn Sink>) {
    CURRENT.with(|c| *c.borrow_mut() = Some(sink));
}

/// Runs `f` with this thread's output going to `sink`.
pub fn capture<R>(sink: Arc<dyn Sink>, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<Arc<dyn Sink>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let previous = self.0.take();
            CURRENT.with(|c| *c.borrow_mut() = previous);
        }
    }
    let _restore = Restore(CURRENT.with(|c| c.borrow_mut().replace(sink)));
    f()
}

pub fn write(stream: Stream, text: &str) -> bool {
    current().write(stream, text)
}

pub fn is_terminal(stream: Stream) -> bool {
    current().is_terminal(stream)
}

/// `println!` to the current sink's stdout.
#[macro_export]
macro_rules! outln {
    () => {{ $crate::console::write($crate::console::Stream::Out, "\n"); }};
    ($($arg:tt)*) => {{
        $crate::console::write($crate::console::Stream::Out, &format!("{}\n", format_args!($($arg)*)));
    }};
}

/// `print!` to the current sink's stdout.
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => {{
        $crate::console::write($crate::console::Stream::Out, &format!($($arg)*));
    }};
}

/// `eprintln!` to the current sink's stderr.
#[macro_export]
macro_rules! errln {
    ($($arg:tt)*) => {{
        $crate::console::write($crate::console::Stream::Err, &format!("{}\n", format_args!($($arg)*)));
    }};
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Recorder(Mutex<Vec<(Stream, String)>>);

    impl Sink for Recorder {
        fn write(&self, stream: Stream, text: &str) -> bool {
            self.0.lock().unwrap().push((stream, text.to_string()));
            true
        }
        fn is_terminal(&self, _: Stream) -> bool {
            false
        }
    }

    #[test]
    fn each_line_is_stamped_once_even_across_writes() {
        let mut start = true;
        assert_eq!(stamp("T ", "a\nb", &mut start), "T a\nT b");
        assert!(!start);
        assert_eq!(stamp("U ", " more\n\nc\n", &mut start), " more\nU \nU c\n");
        assert!(start);
    }

    #[test]
    fn capture_routes_this_threads_output_and_restores_it() {
        let rec = Arc::new(Recorder::default());
        capture(rec.clone(), || {
            crate::outln!("to {}", "out");
            crate::errln!("to err");
            // Another thread is not captured unless it is handed the sink.
            let sink = current();
            std::thread::spawn(move || sink.write(Stream::Out, "handed\n"))
                .join()
                .unwrap();
        });
        let got = rec.0.lock().unwrap().clone();
        assert_eq!(
            got,
            vec![
                (Stream::Out, "to out\n".to_string()),
                (Stream::Err, "to err\n".to_string()),
                (Stream::Out, "handed\n".to_string()),
            ]
        );
        assert!(CURRENT.with(|c| c.borrow().is_none()));
    }
}
