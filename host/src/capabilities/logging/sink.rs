//! Where one component's log lines end up.

use std::path::Path;

use super::file::LogFile;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
    Critical,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Trace => "TRACE",
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warn => "WARN",
            Level::Error => "ERROR",
            Level::Critical => "CRITICAL",
        }
    }
}

/// Longest message written, in bytes; the rest is cut and its size noted.
const MAX_MESSAGE_BYTES: usize = 16 * 1024;
/// Longest context (the logger name) written, in bytes.
const MAX_CONTEXT_BYTES: usize = 256;

/// `text` as one bounded line: a component must not be able to forge log
/// lines of its own (or of the host's, in the terminal) by embedding line
/// breaks or terminal escapes, nor fill the disk with one call. Control
/// characters become escapes (`\n`, `\r`, `\t`, `\u{1b}`), a backslash is
/// doubled so that an escape in the output is always the host's, and text
/// past `max` bytes is cut at a character boundary with a note of how much
/// was left out.
fn one_line(text: &str, max: usize) -> std::borrow::Cow<'_, str> {
    let clean = text.len() <= max && !text.chars().any(|c| c.is_control() || c == '\\');
    if clean {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut cut = text.len().min(max);
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    let mut line = String::with_capacity(cut + 32);
    for c in text[..cut].chars() {
        match c {
            '\\' => line.push_str("\\\\"),
            '\n' => line.push_str("\\n"),
            '\r' => line.push_str("\\r"),
            '\t' => line.push_str("\\t"),
            c if c.is_control() => line.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => line.push(c),
        }
    }
    if cut < text.len() {
        line.push_str(&format!(" …[{} more bytes]", text.len() - cut));
    }
    std::borrow::Cow::Owned(line)
}

/// A component's log destination, shared by all its instances.
pub struct LogSink {
    component: String,
    file: Option<LogFile>,
}

impl LogSink {
    pub fn open(component: &str, file: Option<&Path>) -> anyhow::Result<Self> {
        Ok(Self {
            component: component.to_owned(),
            file: file
                .map(|path| LogFile::open(component, path))
                .transpose()?,
        })
    }

    /// Waits until every line written so far is in the file.
    #[cfg(test)]
    pub fn flush(&self) {
        if let Some(file) = &self.file {
            file.flush();
        }
    }

    pub fn write(&self, level: Level, context: &str, message: &str) {
        let component = self.component.as_str();
        let (context, message) = (
            one_line(context, MAX_CONTEXT_BYTES),
            one_line(message, MAX_MESSAGE_BYTES),
        );
        let (context, message) = (context.as_ref(), message.as_ref());
        match level {
            Level::Trace => tracing::trace!(component, context, "{message}"),
            Level::Debug => tracing::debug!(component, context, "{message}"),
            Level::Info => tracing::info!(component, context, "{message}"),
            Level::Warn => tracing::warn!(component, context, "{message}"),
            Level::Error | Level::Critical => tracing::error!(component, context, "{message}"),
        }
        if let Some(file) = &self.file {
            let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            let context = if context.is_empty() { "-" } else { context };
            file.write(format!("{now} {} {context} {message}\n", level.as_str()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_kept_as_is() {
        assert!(matches!(
            one_line("order 7 paid", 100),
            std::borrow::Cow::Borrowed("order 7 paid")
        ));
    }

    #[test]
    fn line_breaks_and_escapes_cannot_forge_lines() {
        let forged = "ok\n2026-01-01T00:00:00Z ERROR admin token is x\r\u{1b}[2J\\n";
        let line = one_line(forged, 1024);
        assert!(!line.contains('\n') && !line.contains('\r') && !line.contains('\u{1b}'));
        assert_eq!(
            line,
            "ok\\n2026-01-01T00:00:00Z ERROR admin token is x\\r\\u{1b}[2J\\\\n"
        );
    }

    #[test]
    fn long_messages_are_cut_at_a_char_boundary() {
        let text = "é".repeat(10);
        let line = one_line(&text, 5);
        assert_eq!(line, "éé …[16 more bytes]");
    }

    #[test]
    fn file_lines_are_one_per_call() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        let sink = LogSink::open("c", Some(&path)).unwrap();
        sink.write(Level::Info, "ctx\nx", "a\nb");
        sink.write(Level::Warn, "", "c");
        sink.flush();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[0].ends_with(" INFO ctx\\nx a\\nb"), "{}", lines[0]);
        assert!(lines[1].ends_with(" WARN - c"), "{}", lines[1]);
    }
}
