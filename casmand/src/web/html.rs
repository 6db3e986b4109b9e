//! The page frames and HTML helpers, built with maud: a value spliced into
//! markup with `(value)` is escaped by construction; only markup built here
//! (or [`PreEscaped`] static text) goes in unescaped.

use crate::db::as_of::At;
use maud::{DOCTYPE, Markup, PreEscaped, Render, html};

const NAV: [(&str, &str, &str); 5] = [
    ("chains", "/chains", "Chains"),
    ("grid", "/grid", "Core grid"),
    ("snap", "/snap", "SNAP ports"),
    ("status", "/status", "Status"),
    ("scanner", "/scanner", "Scanner"),
];

/// The `<head>` of every page: `title`, one stylesheet and one deferred
/// script (no inline script: the Content-Security-Policy forbids it).
fn head(title: &str, stylesheet: &str, script: &str, light_and_dark: bool) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            @if light_and_dark { meta name="color-scheme" content="light dark"; }
            title { (title) " · casman" }
            link rel="stylesheet" href=(stylesheet);
            script src=(script) defer {}
        }
    }
}

/// A whole page of the views: `title`, the nav with `active` marked, and
/// `body`. The body sits in `<main>`, which the live-update script replaces
/// when the data change.
pub fn layout(title: &str, active: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title, "/assets/style.css", "/assets/app.js", false))
            body data-view=(active) {
                header {
                    span class="brand" { "casman" }
                    nav {
                        @for (key, href, label) in NAV {
                            a href=(href) aria-current=[(key == active).then_some("page")] { (label) }
                        }
                    }
                    span id="live" class="live" title="Live updates" { "static" }
                }
                main id="main" {
                    h1 { (title) }
                    (body)
                }
                dialog id="detail-dialog" {
                    form method="dialog" { button class="close" { "Close" } }
                    div class="dialog-body" {}
                }
            }
        }
    }
}

/// A page of the views holding one message (not found, access refused, an
/// error).
pub fn message_page(title: &str, message: Markup) -> Markup {
    layout(title, "", html! { p class="empty" { (message) } })
}

/// The shell of a field page (`/scanner`, `/admin`): their stylesheet, the
/// page's own `script`, the header bar with `brand_href` and `right` at its
/// end, and `main`, static markup drawn into by the script.
pub fn field_page(
    title: &str,
    script: &str,
    body_class: &str,
    brand_href: &str,
    right: Markup,
    main: &'static str,
) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title, "/assets/scanner.css", script, true))
            body class=(body_class) {
                header class="bar" {
                    a class="brand" href=(brand_href) { "casman" }
                    span id="who" class="who" {}
                    (right)
                }
                main { (PreEscaped(main)) }
            }
        }
    }
}

/// `value`, or an em dash when empty.
pub fn or_dash(value: &str) -> Markup {
    html! {
        @if value.trim().is_empty() { "—" } @else { (value) }
    }
}

/// One `<tr><th>label</th><td>value</td></tr>`.
pub fn row(label: &str, value: impl Render) -> Markup {
    html! {
        tr { th scope="row" { (label) } td { (value) } }
    }
}

/// The "as of" field of a view's form: a date and time picker (UTC), empty
/// for now.
pub fn at_field(at: Option<&At>) -> Markup {
    let value = at.map_or("", |a| a.stored().trim_end_matches('Z'));
    html! {
        label class="as-of" {
            "As of (UTC) "
            input type="datetime-local" name="at" step="1" value=(value) aria-label="As of, UTC";
        }
    }
}

/// The note of a view shown as of a past moment, with the way back to now.
pub fn at_banner(at: Option<&At>, now: &str) -> Markup {
    html! {
        @if let Some(at) = at {
            p class="as-of-banner" {
                "The array as of " b { (at.stored()) } ", from the logs this site holds. "
                a href=(now) { "Back to now" }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_in_values() {
        assert!(layout("<x>", "grid", html! {}).into_string().contains("<title>&lt;x&gt; · casman</title>"));
        assert_eq!(or_dash(" ").into_string(), "—");
        assert_eq!(
            row("<a>", "<b>").into_string(),
            "<tr><th scope=\"row\">&lt;a&gt;</th><td>&lt;b&gt;</td></tr>"
        );
    }

    #[test]
    fn the_nav_marks_the_current_view() {
        let p = layout("Core grid", "grid", html! {}).into_string();
        assert!(p.contains("<a href=\"/grid\" aria-current=\"page\">Core grid</a>"), "{p}");
        assert!(p.contains("<a href=\"/snap\">SNAP ports</a>"), "{p}");
        assert!(p.starts_with("<!DOCTYPE html>"), "{p}");
    }
}
