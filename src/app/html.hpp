// The HTML the service renders: the index page, the 404 page, and the escaping both rely on.
#pragma once

#include <string>
#include <string_view>

namespace printerfacts {

/// Appends `text` to `out` with & < > " ' replaced by character references, so it is inert in
/// element content and in quoted attribute values alike.
void append_html_escaped(std::string& out, std::string_view text);

/// `text`, escaped as append_html_escaped does.
std::string html_escape(std::string_view text);

/// The index page around one fact, which must already be HTML-escaped.
std::string render_index(std::string_view escaped_fact);

/// The 404 page, naming the requested path (escaped here, so any target is safe to pass).
std::string render_not_found(std::string_view path);

/// A short error page for 4xx/5xx answers with no route behind them ("Bad Request", ...).
std::string render_error(unsigned status, std::string_view reason);

}  // namespace printerfacts
