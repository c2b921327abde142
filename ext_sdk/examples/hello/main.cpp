// The smallest useful extension: answers "hello" requests and remembers how many it answered
// across restarts (its checkpoint), and shows the count on a panel with a button that counts
// too. Run it under a host with examples/hello/hello.json.
#include <symphony/sdk/extension.hpp>

#include <atomic>
#include <cstring>

int main(int argc, char** argv) {
  symphony::sdk::Extension ext;
  std::atomic<std::uint64_t> greeted{0};

  ext.on_request("hello", [&](const symphony::sdk::Request& request) -> symphony::sdk::Reply {
    const std::string name = request.string("name").value_or("world");
    if (name.size() > 64) return symphony::sdk::fail("a name is at most 64 characters");
    ext.log().info("greeting {}", name);
    const std::uint64_t count = greeted.fetch_add(1) + 1;
    ext.ui_changed();
    return symphony::sdk::Json().add("greeting", "hello, " + name).add("greeted", count).str();
  });
  ext.ui([&] {  // on the UI thread; `greeted` is shared with the requests: atomic
    using namespace symphony::sdk::ui;
    return stack("root", {heading("title", "Hello"),
                          text("greeted", std::to_string(greeted.load()) + " greeted"),
                          button("greet", "Greet").on("click", [&](const UiEvent&) {
                            ++greeted;
                          })});
  });
  ext.on_checkpoint(
      [&] {  // save: the counter's 8 bytes
        const std::uint64_t n = greeted.load();
        std::vector<std::byte> bytes(sizeof n);
        std::memcpy(bytes.data(), &n, sizeof n);
        return bytes;
      },
      [&](std::span<const std::byte> bytes) {  // restore
        std::uint64_t n = 0;
        if (bytes.size() == sizeof n) std::memcpy(&n, bytes.data(), sizeof n);
        greeted = n;
      });
  ext.on_start([&] { ext.log().info("hello is up, {} greeted so far", greeted.load()); });
  return ext.run(argc, argv);
}
