//! Python `repr()` of bytes, strings and JSON values, so that messages read like the ones of
//! the Python reference, which formats these values with `!r`.

use serde_json::Value;

/// Formats bytes as Python's `repr(bytes)` does, for example `b'NNZ\x1a'`.
pub fn bytes_repr(data: &[u8]) -> String {
    let quote = pick_quote(data.contains(&b'\''), data.contains(&b'"'));
    let mut out = format!("b{quote}");
    for &byte in data {
        match byte {
            b'\\' => out.push_str("\\\\"),
            b'\t' => out.push_str("\\t"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            _ if char::from(byte) == quote => {
                out.push('\\');
                out.push(quote);
            }
            0x20..=0x7E => out.push(char::from(byte)),
            _ => out.push_str(&format!("\\x{byte:02x}")),
        }
    }
    out.push(quote);
    out
}

/// Formats a string as Python's `repr(str)` does for ASCII and common text.
///
/// NOTE: Python leaves every printable Unicode character unescaped and escapes the rest by
/// category. This treats everything from U+00A1 upwards as printable, so a rare character
/// such as a zero-width space is shown as is where Python would escape it.
pub fn str_repr(text: &str) -> String {
    let quote = pick_quote(text.contains('\''), text.contains('"'));
    let mut out = String::from(quote);
    for character in text.chars() {
        match character {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            _ if character == quote => {
                out.push('\\');
                out.push(quote);
            }
            '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{a0}' => {
                out.push_str(&format!("\\x{:02x}", u32::from(character)));
            }
            _ => out.push(character),
        }
    }
    out.push(quote);
    out
}

/// Formats a JSON value as Python's `repr()` of `json.loads` output, for example
/// `None`, `True`, `'text'` or `[1, 2]`.
pub fn json_repr(value: &Value) -> String {
    match value {
        Value::Null => "None".to_owned(),
        Value::Bool(true) => "True".to_owned(),
        Value::Bool(false) => "False".to_owned(),
        Value::Number(number) => number.to_string(),
        Value::String(text) => str_repr(text),
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(json_repr).collect();
            format!("[{}]", parts.join(", "))
        }
        Value::Object(entries) => {
            let parts: Vec<String> = entries
                .iter()
                .map(|(key, value)| format!("{}: {}", str_repr(key), json_repr(value)))
                .collect();
            format!("{{{}}}", parts.join(", "))
        }
    }
}

/// Formats a list of strings as Python's `repr(list[str])`, for example `['a', 'b']`.
pub fn str_list_repr<S: AsRef<str>>(items: &[S]) -> String {
    let parts: Vec<String> = items.iter().map(|item| str_repr(item.as_ref())).collect();
    format!("[{}]", parts.join(", "))
}

/// Formats a string as Python's `json.dumps` does by default (`ensure_ascii=True`): in
/// double quotes, with every character outside printable ASCII escaped, as `\uXXXX` (a
/// surrogate pair above U+FFFF) where JSON has no short escape.
pub fn json_string(text: &str) -> String {
    let mut out = String::from('"');
    for character in text.chars() {
        match character {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(character),
            _ => {
                let mut units = [0u16; 2];
                for unit in character.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
        }
    }
    out.push('"');
    out
}

/// Python uses single quotes unless the text contains a single quote and no double quote.
fn pick_quote(has_single: bool, has_double: bool) -> char {
    if has_single && !has_double {
        '"'
    } else {
        '\''
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_like_python() {
        assert_eq!(bytes_repr(b"NNZ\x1a"), r"b'NNZ\x1a'");
        assert_eq!(bytes_repr(b"a'b"), r#"b"a'b""#);
        assert_eq!(bytes_repr(b"a'\"\\\n\xff"), r#"b'a\'"\\\n\xff'"#);
    }

    #[test]
    fn strings_like_python() {
        assert_eq!(str_repr("nnzip-int"), "'nnzip-int'");
        assert_eq!(str_repr("it's"), "\"it's\"");
        assert_eq!(str_repr("tab\there"), r"'tab\there'");
    }

    #[test]
    fn json_like_python() {
        let value: Value = serde_json::from_str(r#"[null, true, 3, "x", {"k": 1.5}]"#).unwrap();
        assert_eq!(json_repr(&value), "[None, True, 3, 'x', {'k': 1.5}]");
        assert_eq!(str_list_repr(&["a", "b"]), "['a', 'b']");
    }

    #[test]
    fn json_strings_like_python() {
        assert_eq!(json_string("tiny_index.nzi"), r#""tiny_index.nzi""#);
        assert_eq!(json_string("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(
            json_string("\n\r\t\u{8}\u{c}\u{1}\u{7f}"),
            r#""\n\r\t\b\f\u0001\u007f""#
        );
        assert_eq!(json_string("é€😀"), r#""\u00e9\u20ac\ud83d\ude00""#);
    }
}
