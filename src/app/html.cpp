#include "app/html.hpp"

namespace printerfacts {
namespace {

// Everything before and after the variable part of each page. The pages load no scripts and
// only our own stylesheet, which the Content-Security-Policy set by the router enforces.
constexpr std::string_view kHead =
    "<!DOCTYPE html>\n"
    "<html lang=\"en\">\n"
    "<head>\n"
    "<meta charset=\"utf-8\">\n"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
    "<title>";

constexpr std::string_view kAfterTitle =
    "</title>\n"
    "<link rel=\"stylesheet\" href=\"/static/style.css\">\n"
    "<link rel=\"icon\" href=\"/static/favicon.svg\" type=\"image/svg+xml\">\n"
    "</head>\n"
    "<body>\n"
    "<header><h1>Printer Facts</h1></header>\n"
    "<main>\n";

constexpr std::string_view kFoot =
    "</main>\n"
    // Said of every page, whatever the listener: no claim about the transport, which the
    // page cannot know (a TCP listener in development serves it too).
    "<footer>Served by printerfacts. "
    "<a href=\"/fact\">Plain text</a></footer>\n"
    "</body>\n"
    "</html>\n";

std::string page(std::string_view title, std::string_view main_html) {
  std::string out;
  out.reserve(kHead.size() + title.size() + kAfterTitle.size() + main_html.size() + kFoot.size());
  out.append(kHead).append(title).append(kAfterTitle).append(main_html).append(kFoot);
  return out;
}

}  // namespace

void append_html_escaped(std::string& out, std::string_view text) {
  for (const char c : text) {
    switch (c) {
      case '&':
        out.append("&amp;");
        break;
      case '<':
        out.append("&lt;");
        break;
      case '>':
        out.append("&gt;");
        break;
      case '"':
        out.append("&quot;");
        break;
      case '\'':
        out.append("&#39;");
        break;
      default:
        out.push_back(c);
    }
  }
}

std::string html_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  append_html_escaped(out, text);
  return out;
}

std::string render_index(std::string_view escaped_fact) {
  std::string main_html;
  main_html.reserve(escaped_fact.size() + 160);
  main_html.append("<blockquote>")
      .append(escaped_fact)
      .append("</blockquote>\n<p class=\"more\"><a href=\"/\">Another fact</a></p>\n");
  return page("Printer Facts", main_html);
}

std::string render_not_found(std::string_view path) {
  std::string main_html = "<h2>Not found</h2>\n<p>There is no page at <code>";
  append_html_escaped(main_html, path);
  main_html.append(
      "</code>. The printer looked everywhere, even behind the toner.</p>\n"
      "<p class=\"more\"><a href=\"/\">Get a printer fact instead</a></p>\n");
  return page("Not found - Printer Facts", main_html);
}

std::string render_error(unsigned status, std::string_view reason) {
  std::string title = std::to_string(status) + " ";
  append_html_escaped(title, reason);
  std::string main_html = "<h2>" + title + "</h2>\n";
  return page(title + " - Printer Facts", main_html);
}

}  // namespace printerfacts
