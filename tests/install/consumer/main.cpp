// Publishes one sample on a native topic and reads it back through the installed headers and
// library: exit 0 only if it arrives intact.
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>

#include <symphony/engine/bus.hpp>

int main() {
  symphony::BusOptions options;
  options.name = "consumer-" + std::to_string(::getpid());
  auto bus = symphony::Bus::open(options);
  if (!bus) return std::fprintf(stderr, "%s\n", bus.error().message.c_str()), 1;
  auto sub = bus->subscribe<int>("hello", "int");
  auto pub = bus->advertise<int>("hello", "int");
  if (!sub || !pub) return std::fprintf(stderr, "cannot set up the topic\n"), 1;
  if (pub->try_publish(42) != symphony::engine::RingStatus::ok) return 1;
  const int* value = sub->try_take();
  if (value == nullptr || *value != 42) return 1;
  std::printf("installed package works: got %d\n", *value);
  return 0;
}
