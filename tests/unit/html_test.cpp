#include "app/html.hpp"

#include <gtest/gtest.h>

namespace printerfacts {
namespace {

TEST(HtmlEscape, EscapesEveryMarkupCharacter) {
  EXPECT_EQ(html_escape(R"(<a href="x" onclick='y'>&</a>)"),
            "&lt;a href=&quot;x&quot; onclick=&#39;y&#39;&gt;&amp;&lt;/a&gt;");
  EXPECT_EQ(html_escape("plain text, ünïcode"), "plain text, ünïcode");
  EXPECT_EQ(html_escape(""), "");
}

TEST(RenderNotFound, NamesThePathEscaped) {
  const std::string page = render_not_found("/<script>alert(1)</script>");
  EXPECT_NE(page.find("/&lt;script&gt;alert(1)&lt;/script&gt;"), std::string::npos);
  EXPECT_EQ(page.find("<script>"), std::string::npos);
}

TEST(RenderIndex, HasTitleBlockquoteStylesheetAndViewport) {
  const std::string page = render_index("Toner &amp; tea");
  EXPECT_NE(page.find("<title>Printer Facts</title>"), std::string::npos);
  EXPECT_NE(page.find("<blockquote>Toner &amp; tea</blockquote>"), std::string::npos);
  EXPECT_NE(page.find("href=\"/static/style.css\""), std::string::npos);
  EXPECT_NE(page.find("name=\"viewport\""), std::string::npos);
  EXPECT_NE(page.find("<footer>"), std::string::npos);
}

}  // namespace
}  // namespace printerfacts
