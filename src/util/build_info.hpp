// What build this is: the version, and the commit it was made from, so that two builds can be
// told apart (--version, printerfacts_build_info, the ready line).
#pragma once

namespace printerfacts {

/// The project's version (CMake's project(VERSION)).
inline constexpr const char* kBuildVersion = PRINTERFACTS_VERSION;

/// The git commit the build was made from ("1a2b3c4d5e6f", with "-dirty" when the tree had
/// uncommitted changes; "unknown" when built outside a git checkout). cmake/version.cmake.
extern const char* const kBuildCommit;

}  // namespace printerfacts
