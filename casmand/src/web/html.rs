//! The page frame and HTML helpers. Every value that comes from a database or
//! a request goes through [`esc`].

use crate::inventory::svg::xml_escape;

/// Escapes `s` for HTML text and attribute values.
pub fn esc(s: &str) -> String {
    xml_escape(s)
}

const NAV: [(&str, &str, &str); 5] = [
    ("chains", "/chains", "Chains"),
    ("grid", "/grid", "Core grid"),
    ("snap", "/snap", "SNAP ports"),
    ("status", "/status", "Status"),
    ("scanner", "/scanner", "Scanner"),
];

/// A whole page: `title` (escaped here), the nav with `active` marked, and
/// `body` (already HTML). The body sits in `<main>`, which the live-update
/// script replaces when the data change.
pub fn page(title: &str, active: &str, body: &str) -> String {
    let mut nav = String::new();
    for (key, href, label) in NAV {
        let current = if key == active { " aria-current=\"page\"" } else { "" };
        nav.push_str(&format!("<a href=\"{href}\"{current}>{label}</a>"));
    }
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title} · casman</title>\n<link rel=\"stylesheet\" href=\"/assets/style.css\">\n\
         <script src=\"/assets/app.js\" defer></script>\n</head>\n<body data-view=\"{active}\">\n\
         <header><span class=\"brand\">casman</span><nav>{nav}</nav>\
         <span id=\"live\" class=\"live\" title=\"Live updates\">static</span></header>\n\
         <main id=\"main\">\n<h1>{title}</h1>\n{body}\n</main>\n\
         <dialog id=\"detail-dialog\"><form method=\"dialog\"><button class=\"close\">Close</button></form>\
         <div class=\"dialog-body\"></div></dialog>\n</body>\n</html>\n",
        title = esc(title),
    )
}

/// `value`, or an em dash when empty.
pub fn or_dash(value: &str) -> String {
    if value.trim().is_empty() { "—".to_owned() } else { esc(value) }
}

/// One `<tr><th>label</th><td>value</td></tr>` (value already HTML).
pub fn row(label: &str, value_html: &str) -> String {
    format!("<tr><th scope=\"row\">{}</th><td>{value_html}</td></tr>", esc(label))
}

/// A search form with one text field `name` (GET to `action`).
pub fn search_form(action: &str, name: &str, value: &str, placeholder: &str, extra: &str) -> String {
    format!(
        "<form class=\"search\" method=\"get\" action=\"{action}\">\
         <input type=\"search\" name=\"{name}\" value=\"{}\" placeholder=\"{}\" aria-label=\"{}\"{extra}>\
         <button type=\"submit\">Search</button></form>",
        esc(value),
        esc(placeholder),
        esc(placeholder)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_in_values() {
        assert_eq!(esc("<b onclick=\"x\">&'"), "&lt;b onclick=&quot;x&quot;&gt;&amp;&apos;");
        assert!(page("<x>", "grid", "").contains("<title>&lt;x&gt; · casman</title>"));
        assert_eq!(or_dash(" "), "—");
    }
}
