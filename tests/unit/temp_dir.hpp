// A short, private temporary directory for tests that need files or sockets (sun_path is short).
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <string>

namespace printerfacts::testing {

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/pf-XXXXXX";
    path_ = ::mkdtemp(tmpl);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

}  // namespace printerfacts::testing
