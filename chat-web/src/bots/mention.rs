//! Who a message addresses: `@name rest` or `/name rest` at its start.

/// The bot a message is addressed to and the rest of the text, if it starts with `@name` or
/// `/name` (a letter, then up to 63 of a-z, 0-9, `-`, `_`), followed by a space or the end.
pub fn addressee(text: &str) -> Option<(&str, &str)> {
    let text = text.trim_start();
    let rest = text.strip_prefix('@').or_else(|| text.strip_prefix('/'))?;
    let end = rest.find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_'));
    let (name, args) = rest.split_at(end.unwrap_or(rest.len()));
    let starts_with_letter = name.chars().next().is_some_and(|c| c.is_ascii_lowercase());
    if !starts_with_letter || name.len() > 64 || !(args.is_empty() || args.starts_with(char::is_whitespace)) {
        return None;
    }
    Some((name, args.trim()))
}

#[cfg(test)]
mod tests {
    use super::addressee;

    #[test]
    fn mentions_and_commands() {
        assert_eq!(addressee("@words tell me"), Some(("words", "tell me")));
        assert_eq!(addressee("  /weather Paris "), Some(("weather", "Paris")));
        assert_eq!(addressee("/help"), Some(("help", "")));
        assert_eq!(addressee("hello @words"), None);
        assert_eq!(addressee("@Words hi"), None);
        assert_eq!(addressee("@words, hi"), None);
        assert_eq!(addressee("/9lives"), None);
        assert_eq!(addressee("@"), None);
        assert_eq!(addressee("// comment"), None);
    }
}
