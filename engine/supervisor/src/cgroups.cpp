#include "cgroups.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

namespace symphony::supervisor {
namespace {

namespace fs = std::filesystem;
using engine::Errc;
using engine::Error;

constexpr std::uint64_t kCfsPeriodUs = 100'000;

std::vector<std::string> split(const std::string& text, char separator) {
  std::vector<std::string> parts;
  std::string part;
  std::istringstream in(text);
  while (std::getline(in, part, separator)) parts.push_back(part);
  return parts;
}

std::optional<std::string> read_text(const fs::path& file) {
  std::ifstream in(file);
  if (!in) return std::nullopt;
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// Writes `value` to a cgroup control file; the errno text on failure.
engine::Result<void> write_control(const fs::path& file, const std::string& value) {
  const int fd = ::open(file.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return tl::unexpected(Error::from_errno("open " + file.string(), errno));
  const ssize_t n = ::write(fd, value.data(), value.size());
  const int error = errno;
  ::close(fd);
  if (n != static_cast<ssize_t>(value.size())) {
    return tl::unexpected(Error::from_errno("write '" + value + "' to " + file.string(), error));
  }
  return {};
}

// A hierarchy as this process sees it: where it is mounted and which of its paths the mount
// shows (a container may see only a subtree).
struct Mount {
  fs::path mountpoint;
  std::string root;
};

// controller ("memory", "cpu"; "" for the v2 hierarchy) -> where its hierarchy is mounted.
std::map<std::string, Mount> cgroup_mounts() {
  std::map<std::string, Mount> mounts;
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    // id parent major:minor root mountpoint options [optional...] - fstype source superoptions
    const auto fields = split(line, ' ');
    const auto dash = std::find(fields.begin(), fields.end(), "-");
    if (fields.size() < 5 || dash == fields.end() || fields.end() - dash < 4) continue;
    const std::string& fstype = dash[1];
    const Mount mount{fields[4], fields[3]};
    if (fstype == "cgroup2") {
      mounts.emplace("", mount);
    } else if (fstype == "cgroup") {
      for (const std::string& option : split(dash[3], ',')) mounts.emplace(option, mount);
    }
  }
  return mounts;
}

// controller -> our group's path in its hierarchy ("" for v2), from /proc/self/cgroup.
std::map<std::string, std::string> own_groups() {
  std::map<std::string, std::string> groups;
  std::ifstream in("/proc/self/cgroup");
  std::string line;
  while (std::getline(in, line)) {
    const auto first = line.find(':');
    const auto second = line.find(':', first + 1);
    if (first == std::string::npos || second == std::string::npos) continue;
    const std::string controllers = line.substr(first + 1, second - first - 1);
    const std::string path = line.substr(second + 1);
    if (controllers.empty()) {
      groups.emplace("", path);
    } else {
      for (const std::string& c : split(controllers, ',')) groups.emplace(c, path);
    }
  }
  return groups;
}

// Our group's directory for `controller`, if its hierarchy is mounted where we can see it.
std::optional<fs::path> own_directory(const std::map<std::string, Mount>& mounts,
                                      const std::map<std::string, std::string>& groups,
                                      const std::string& controller) {
  const auto mount = mounts.find(controller);
  const auto group = groups.find(controller);
  if (mount == mounts.end() || group == groups.end()) return std::nullopt;
  const std::string& root = mount->second.root;
  const std::string& path = group->second;
  if (root == "/") return mount->second.mountpoint / fs::path(path).relative_path();
  if (path.compare(0, root.size(), root) != 0) return std::nullopt;  // outside the mount's view
  return mount->second.mountpoint / fs::path(path.substr(root.size())).relative_path();
}

std::vector<pid_t> procs_of(const fs::path& dir) {
  std::vector<pid_t> pids;
  std::ifstream in(dir / "cgroup.procs");
  long pid = 0;
  while (in >> pid) pids.push_back(static_cast<pid_t>(pid));
  return pids;
}

int kill_procs(const fs::path& dir) {
  int killed = 0;
  for (const pid_t pid : procs_of(dir)) {
    if (pid > 0 && ::kill(pid, SIGKILL) == 0) ++killed;
  }
  return killed;
}

// rmdir, retried while the kernel still counts tasks that are exiting.
bool remove_group(const fs::path& dir) {
  if (dir.empty()) return true;
  for (int attempt = 0; attempt < 200; ++attempt) {
    if (::rmdir(dir.c_str()) == 0 || errno == ENOENT) return true;
    if (errno != EBUSY) return false;
    kill_procs(dir);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return false;
}

// Removes "symphony-<pid>-*" groups whose supervisor process no longer exists.
void remove_stale_groups(const fs::path& parent) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(parent, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("symphony-", 0) != 0 || !entry.is_directory(ec)) continue;
    const long pid = std::strtol(name.c_str() + 9, nullptr, 10);
    if (pid <= 0 || pid == ::getpid() ||
        !(::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH)) {
      continue;
    }
    for (const auto& child : fs::directory_iterator(entry.path(), ec)) {
      if (child.is_directory(ec)) remove_group(child.path());
    }
    remove_group(entry.path());
  }
}

bool lists(const std::string& controllers, const std::string& name) {
  for (const std::string& c : split(controllers, ' ')) {
    std::string trimmed = c;
    trimmed.erase(std::remove(trimmed.begin(), trimmed.end(), '\n'), trimmed.end());
    if (trimmed == name) return true;
  }
  return false;
}

}  // namespace

std::uint64_t read_cgroup_counter(const fs::path& file, const std::string& key) {
  std::ifstream in(file);
  std::string name;
  std::uint64_t value = 0;
  while (in >> name >> value) {
    if (name == key) return value;
  }
  return 0;
}

CgroupRoots CgroupRoots::detect(CgroupUse use, const std::string& name) {
  CgroupRoots roots;
  LimitReport& r = roots.report_;
  const auto rlimit_fallback = [&r](const std::string& why) {
    r.memory = LimitMechanism::rlimit;
    r.cpu = LimitMechanism::none;
    r.why += why +
             "; memory: setrlimit(RLIMIT_DATA) in the child (not RLIMIT_AS, which breaks ASan's "
             "shadow memory and iceoryx's large mappings), CPU: none (rlimits cannot limit a "
             "rate, only total seconds)";
  };
  if (use == CgroupUse::disabled) {
    rlimit_fallback("cgroups disabled by SupervisorOptions::cgroups");
    return roots;
  }
  const auto mounts = cgroup_mounts();
  const auto groups = own_groups();

  // cgroup v2: only where our group's cgroup.controllers offers both memory and cpu, and we can
  // enable them for a child group of ours (the "no internal processes" rule forbids that in a
  // non-root group that holds processes, ours included).
  if (const auto v2 = own_directory(mounts, groups, "")) {
    const std::string controllers = read_text(*v2 / "cgroup.controllers").value_or("");
    if (lists(controllers, "memory") && lists(controllers, "cpu")) {
      remove_stale_groups(*v2);
      const fs::path parent = *v2 / name;
      if (::mkdir(parent.c_str(), 0755) != 0 && errno != EEXIST) {
        r.why += "cgroup v2 at " + v2->string() + " lists memory and cpu, but mkdir " +
                 parent.string() + ": " + std::strerror(errno) + "; ";
      } else if (auto enabled = write_control(*v2 / "cgroup.subtree_control", "+memory +cpu");
                 !enabled) {
        r.why += "cgroup v2 at " + v2->string() +
                 " lists memory and cpu but cannot delegate them (" + enabled.error().message +
                 "); ";
        ::rmdir(parent.c_str());
      } else if (auto nested = write_control(parent / "cgroup.subtree_control", "+memory +cpu");
                 !nested) {
        r.why += "cgroup v2: " + nested.error().message + "; ";
        ::rmdir(parent.c_str());
      } else {
        r.memory = r.cpu = LimitMechanism::cgroup_v2;
        r.memory_group = r.cpu_group = parent;
        r.why += "cgroup v2 at " + v2->string() + " lists memory and cpu";
        return roots;
      }
    } else {
      r.why += "cgroup v2 " + (controllers.empty() ? std::string("has no controllers for us")
                                                   : "offers only: " + controllers) +
               " (memory and cpu are on cgroup v1 hierarchies); ";
      r.why.erase(std::remove(r.why.begin(), r.why.end(), '\n'), r.why.end());
    }
  }

  // cgroup v1: a child group in each of the memory and cpu hierarchies, under our own group.
  const auto make_v1 = [&](const std::string& controller, LimitMechanism& mechanism,
                           fs::path& group) {
    const auto dir = own_directory(mounts, groups, controller);
    if (!dir) {
      r.why += "no cgroup v1 " + controller + " hierarchy visible; ";
      return;
    }
    remove_stale_groups(*dir);
    const fs::path parent = *dir / name;
    if (::mkdir(parent.c_str(), 0755) != 0 && errno != EEXIST) {
      r.why += "cgroup v1 " + controller + ": mkdir " + parent.string() + ": " +
               std::strerror(errno) + "; ";
      return;
    }
    mechanism = LimitMechanism::cgroup_v1;
    group = parent;
  };
  make_v1("memory", r.memory, r.memory_group);
  make_v1("cpu", r.cpu, r.cpu_group);
  if (r.memory == LimitMechanism::cgroup_v1 && r.cpu == LimitMechanism::cgroup_v1) {
    r.why += "cgroup v1: memory under " + r.memory_group.parent_path().string() + ", cpu under " +
             r.cpu_group.parent_path().string();
    return roots;
  }
  if (r.memory == LimitMechanism::none && r.cpu == LimitMechanism::none) {
    rlimit_fallback("no cgroup could be created");
    return roots;
  }
  if (r.memory == LimitMechanism::none) {
    r.memory = LimitMechanism::rlimit;
    r.why += "memory: setrlimit(RLIMIT_DATA) (no memory cgroup)";
  }
  if (r.cpu == LimitMechanism::none) r.why += "CPU: none (no cpu cgroup)";
  return roots;
}

void CgroupRoots::remove() {
  if (report_.memory == LimitMechanism::cgroup_v1 || report_.memory == LimitMechanism::cgroup_v2) {
    remove_group(report_.memory_group);
  }
  if (report_.cpu == LimitMechanism::cgroup_v1) remove_group(report_.cpu_group);
}

engine::Result<ExtensionCgroup> ExtensionCgroup::create(const CgroupRoots& roots,
                                                        const std::string& name,
                                                        const ResourceLimits& limits) {
  const LimitReport& r = roots.report();
  ExtensionCgroup group;
  group.v2_ = roots.v2();
  const auto make = [&name](const fs::path& parent) -> engine::Result<fs::path> {
    const fs::path dir = parent / name;
    if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
      return tl::unexpected(Error::from_errno("mkdir " + dir.string(), errno));
    }
    return dir;
  };
  if (r.memory == LimitMechanism::cgroup_v1 || r.memory == LimitMechanism::cgroup_v2) {
    auto dir = make(r.memory_group);
    if (!dir) return tl::unexpected(dir.error());
    group.memory_dir_ = *dir;
  }
  if (r.cpu == LimitMechanism::cgroup_v1) {
    auto dir = make(r.cpu_group);
    if (!dir) {
      group.remove();
      return tl::unexpected(dir.error());
    }
    group.cpu_dir_ = *dir;
  } else if (r.cpu == LimitMechanism::cgroup_v2) {
    group.cpu_dir_ = group.memory_dir_;
  }
  const auto fail = [&group](Error error) -> engine::Result<ExtensionCgroup> {
    group.remove();
    return tl::unexpected(std::move(error));
  };
  if (limits.memory_bytes != 0 && !group.memory_dir_.empty()) {
    const std::string bytes = std::to_string(limits.memory_bytes);
    if (group.v2_) {
      if (auto w = write_control(group.memory_dir_ / "memory.max", bytes); !w) return fail(w.error());
      // No swap: a limit that swapping can evade is not a limit (absent without swap support).
      if (fs::exists(group.memory_dir_ / "memory.swap.max")) {
        (void)write_control(group.memory_dir_ / "memory.swap.max", "0");
      }
    } else {
      if (auto w = write_control(group.memory_dir_ / "memory.limit_in_bytes", bytes); !w) {
        return fail(w.error());
      }
      // memory+swap at the same value: no swapping past the limit (absent without swap
      // accounting). Written after the memory limit: the kernel wants memsw >= memory.
      if (fs::exists(group.memory_dir_ / "memory.memsw.limit_in_bytes")) {
        (void)write_control(group.memory_dir_ / "memory.memsw.limit_in_bytes", bytes);
      }
    }
  }
  if (limits.cpu_cores > 0 && !group.cpu_dir_.empty()) {
    const auto quota = std::max<std::uint64_t>(
        1000, static_cast<std::uint64_t>(std::llround(limits.cpu_cores * kCfsPeriodUs)));
    if (group.v2_) {
      if (auto w = write_control(group.cpu_dir_ / "cpu.max",
                                 std::to_string(quota) + " " + std::to_string(kCfsPeriodUs));
          !w) {
        return fail(w.error());
      }
    } else {
      if (auto w = write_control(group.cpu_dir_ / "cpu.cfs_period_us",
                                 std::to_string(kCfsPeriodUs));
          !w) {
        return fail(w.error());
      }
      if (auto w = write_control(group.cpu_dir_ / "cpu.cfs_quota_us", std::to_string(quota));
          !w) {
        return fail(w.error());
      }
    }
  }
  return group;
}

engine::Result<std::vector<UniqueFd>> ExtensionCgroup::open_join_files() const {
  std::vector<UniqueFd> files;
  for (const fs::path* dir : {&memory_dir_, &cpu_dir_}) {
    if (dir->empty() || (dir == &cpu_dir_ && cpu_dir_ == memory_dir_)) continue;
    const fs::path procs = *dir / "cgroup.procs";
    UniqueFd fd(::open(procs.c_str(), O_WRONLY | O_CLOEXEC));
    if (!fd || !raise_above_stdio(fd)) {
      return tl::unexpected(Error::from_errno("open " + procs.string(), errno));
    }
    files.push_back(std::move(fd));
  }
  return files;
}

std::uint64_t ExtensionCgroup::oom_kills() const {
  if (memory_dir_.empty()) return 0;
  return read_cgroup_counter(memory_dir_ / (v2_ ? "memory.events" : "memory.oom_control"),
                             "oom_kill");
}

std::uint64_t ExtensionCgroup::cpu_throttled() const {
  if (cpu_dir_.empty()) return 0;
  return read_cgroup_counter(cpu_dir_ / "cpu.stat", "nr_throttled");
}

std::uint64_t ExtensionCgroup::memory_usage() const {
  if (memory_dir_.empty()) return 0;
  const auto text =
      read_text(memory_dir_ / (v2_ ? "memory.current" : "memory.usage_in_bytes")).value_or("0");
  return std::strtoull(text.c_str(), nullptr, 10);
}

int ExtensionCgroup::kill_all() const {
  if (v2_ && !memory_dir_.empty() && fs::exists(memory_dir_ / "cgroup.kill")) {
    (void)write_control(memory_dir_ / "cgroup.kill", "1");
  }
  int killed = 0;
  if (!memory_dir_.empty()) killed += kill_procs(memory_dir_);
  if (!cpu_dir_.empty() && cpu_dir_ != memory_dir_) killed += kill_procs(cpu_dir_);
  return killed;
}

bool ExtensionCgroup::remove() {
  kill_all();
  bool removed = remove_group(memory_dir_);
  if (cpu_dir_ != memory_dir_) removed = remove_group(cpu_dir_) && removed;
  if (removed) memory_dir_.clear(), cpu_dir_.clear();
  return removed;
}

}  // namespace symphony::supervisor
