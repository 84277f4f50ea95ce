//! A unified diff as a terminal shows it: added lines green, removed ones red, hunk
//! headers dim (`render --diff`).

use super::terminal::Style;

/// The lines that differ between `old` and `new`, with 3 lines of context, headed
/// `--- a/…` and `+++ b/…` with the two labels.
pub fn unified(old: &str, new: &str, from: &str, to: &str, style: Style) -> String {
    let diff = similar::TextDiff::from_lines(old, new);
    let text = diff
        .unified_diff()
        .context_radius(3)
        .header(from, to)
        .to_string();
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let painted = if line.starts_with('+') && !line.starts_with("+++") {
            style.green(line)
        } else if line.starts_with('-') && !line.starts_with("---") {
            style.red(line)
        } else if line.starts_with("@@") {
            style.dim(line)
        } else {
            line.to_string()
        };
        out.push_str(&painted);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changed_lines_are_painted_and_headers_are_not() {
        let style = Style { color: true };
        let text = unified("a\nb\n", "a\nc\n", "a/x", "b/x", style);
        assert!(text.starts_with("--- a/x\n+++ b/x\n"), "{text}");
        assert!(text.contains("\x1b[31m-b\x1b[0m") && text.contains("\x1b[32m+c\x1b[0m"));
        let plain = unified("a\nb\n", "a\nc\n", "a/x", "b/x", Style { color: false });
        assert!(
            plain.contains("\n-b\n+c\n") && !plain.contains('\x1b'),
            "{plain}"
        );
    }
}
