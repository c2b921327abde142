// An extension built outside Symphony's tree against the installed SDK.
#include <symphony/sdk/extension.hpp>

int main(int argc, char** argv) {
  symphony::sdk::Extension ext;
  ext.on_request("ping", [](const symphony::sdk::Request&) -> symphony::sdk::Reply {
    return std::string("{\"pong\":true}");
  });
  return ext.run(argc, argv);
}
