# Run at every build of symphony-perf (cmake -P): writes OUTPUT, a header with the source tree's
# git commit (short hash, "+dirty" if tracked files had changes; "unknown" outside git) and the
# build type, rewriting it only when it changes so that nothing recompiles needlessly.
#   cmake -DSOURCE_DIR=... -DOUTPUT=... -DBUILD_TYPE=... -P build_info.cmake
set(commit unknown)
find_program(GIT git)
if(GIT)
  execute_process(COMMAND ${GIT} -C ${SOURCE_DIR} rev-parse --short HEAD
    OUTPUT_VARIABLE hash RESULT_VARIABLE failed OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
  if(NOT failed AND NOT hash STREQUAL "")
    set(commit ${hash})
    # --no-optional-locks: never take the index lock (other git commands may be running).
    execute_process(COMMAND ${GIT} --no-optional-locks -C ${SOURCE_DIR} status --porcelain
      --untracked-files=no OUTPUT_VARIABLE changes ERROR_QUIET)
    if(NOT changes STREQUAL "")
      string(APPEND commit "+dirty")
    endif()
  endif()
endif()
if(BUILD_TYPE STREQUAL "")
  set(BUILD_TYPE "unspecified")
endif()
set(text "#pragma once
// Generated at build time by perf/harness/build_info.cmake: do not edit.
namespace symphony::perf {
inline constexpr const char kGitCommit[] = \"${commit}\";
inline constexpr const char kBuildType[] = \"${BUILD_TYPE}\";
}  // namespace symphony::perf
")
set(old "")
if(EXISTS ${OUTPUT})
  file(READ ${OUTPUT} old)
endif()
if(NOT old STREQUAL text)
  file(WRITE ${OUTPUT} "${text}")
endif()
