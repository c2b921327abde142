#pragma once
// A browser stand-in for the gateway's tests: a blocking Beast WebSocket client with a read
// timeout, and the tree of every extension kept the way the app keeps it (snapshots replace,
// patches apply on base == seq).

#include <sys/socket.h>
#include <sys/time.h>

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <nlohmann/json.hpp>

#include "symphony/ui/tree.hpp"

namespace symphony::test {

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using Json = nlohmann::json;

struct Upgrade {
  int status = 0;  // 101 when upgraded
  std::string body;
};

class WsClient {
 public:
  struct Options {
    std::string token;
    std::string origin;  // empty: http://127.0.0.1:<port>
    std::string host;    // empty: 127.0.0.1:<port>
    int receive_buffer = 0;  // SO_RCVBUF before connecting (a slow browser: small)
    std::string path = "/ws";
  };

  Upgrade connect(std::uint16_t port, const Options& o) {
    const std::string p = std::to_string(port);
    tcp::socket& s = ws_.next_layer();
    s.open(tcp::v4());
    if (o.receive_buffer > 0) {
      s.set_option(net::socket_base::receive_buffer_size(o.receive_buffer));
    }
    s.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
    set_timeout(std::chrono::seconds(10));
    const std::string origin = o.origin.empty() ? "http://127.0.0.1:" + p : o.origin;
    ws_.set_option(websocket::stream_base::decorator([origin](websocket::request_type& req) {
      req.set(http::field::origin, origin);
    }));
    ws_.read_message_max(4 << 20);
    websocket::response_type res;
    beast::error_code ec;
    ws_.handshake(res, o.host.empty() ? "127.0.0.1:" + p : o.host,
                  o.path + "?token=" + o.token, ec);
    Upgrade u;
    u.status = static_cast<int>(res.result_int());
    u.body = res.body();
    open_ = !ec && u.status == 101;
    return u;
  }

  void set_timeout(std::chrono::milliseconds t) {
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(t.count() / 1000);
    tv.tv_usec = static_cast<suseconds_t>((t.count() % 1000) * 1000);
    ::setsockopt(ws_.next_layer().native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }

  bool send(const std::string& text) {
    beast::error_code ec;
    ws_.text(true);
    ws_.write(net::buffer(text), ec);
    return !ec;
  }

  // The next message (and applies it to the trees), or nullopt after the socket's timeout or
  // a close.
  std::optional<Json> read() {
    if (!open_) return std::nullopt;
    beast::flat_buffer b;
    beast::error_code ec;
    ws_.read(b, ec);
    if (ec) {
      open_ = false;
      last_error = ec.message();
      return std::nullopt;
    }
    ++messages;
    bytes += b.size();
    const std::string text = beast::buffers_to_string(b.data());
    if (history.size() < 4000) history += text.substr(0, 120) + "\n";
    Json j = Json::parse(text, nullptr, false);
    apply(text, j);
    return j;
  }

  // Reads until `done` holds (checked after each message) or `timeout`.
  bool read_until(const std::function<bool(const Json&)>& done,
                  std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      auto j = read();
      if (!j) return false;
      if (done(*j)) return true;
    }
    return false;
  }

  // The text of node `node` of `ext`'s tree ("" when absent).
  std::string text_of(const std::string& ext, const std::string& node) const {
    auto it = trees.find(ext);
    if (it == trees.end()) return {};
    std::function<const ui::Node*(const ui::Node&)> find = [&](const ui::Node& n) -> const ui::Node* {
      if (n.id == node) return &n;
      for (const auto& c : n.children) {
        if (auto* f = find(c)) return f;
      }
      return nullptr;
    };
    const ui::Node* n = find(it->second.tree);
    if (n == nullptr || !n->props.contains("text")) return {};
    return n->props["text"].get<std::string>();
  }

  bool is_open() const { return open_; }

  struct Tree {
    std::uint64_t seq = 0;
    ui::Node tree;
  };
  std::map<std::string, Tree> trees;
  std::uint64_t snapshots = 0, patches = 0, mismatches = 0, messages = 0, bytes = 0;
  std::string last_error;
  std::string history;  // the start of the first messages, for failure reports

 private:
  void apply(const std::string& text, const Json& j) {
    if (!j.is_object()) return;
    const std::string kind = j.value("kind", "");
    if (kind != "snapshot" && kind != "patch") return;
    auto f = ui::decode_frame(text);
    if (!f) {
      ++mismatches;
      return;
    }
    if (f->kind == ui::Frame::Kind::snapshot) {
      ++snapshots;
      trees[f->extension] = {f->seq, *f->tree};
      return;
    }
    ++patches;
    auto it = trees.find(f->extension);
    if (it == trees.end() || it->second.seq != f->base || !ui::apply(it->second.tree, f->ops)) {
      ++mismatches;  // the gateway must never send a patch that does not apply
      return;
    }
    it->second.seq = f->seq;
  }

  net::io_context ioc_;
  websocket::stream<tcp::socket> ws_{ioc_};
  bool open_ = false;
};

// The upgrade request alone, to see a refusal's status (Beast 1.74's client handshake drops the
// response when the upgrade is declined).
inline Upgrade try_upgrade(std::uint16_t port, const WsClient::Options& o) {
  const std::string p = std::to_string(port);
  net::io_context ioc;
  beast::tcp_stream stream(ioc);
  stream.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
  http::request<http::empty_body> req{http::verb::get, o.path + "?token=" + o.token, 11};
  req.set(http::field::host, o.host.empty() ? "127.0.0.1:" + p : o.host);
  req.set(http::field::origin, o.origin.empty() ? "http://127.0.0.1:" + p : o.origin);
  req.set(http::field::connection, "Upgrade");
  req.set(http::field::upgrade, "websocket");
  req.set(http::field::sec_websocket_version, "13");
  req.set(http::field::sec_websocket_key, "dGhlIHNhbXBsZSBub25jZQ==");
  http::write(stream, req);
  beast::flat_buffer b;
  http::response_parser<http::string_body> parser;
  parser.skip(false);
  beast::error_code ec;
  http::read_header(stream, b, parser, ec);
  Upgrade u;
  u.status = static_cast<int>(parser.get().result_int());
  if (u.status != 101) {
    http::read(stream, b, parser, ec);
    u.body = parser.get().body();
  }
  return u;
}

// One plain HTTP request (raw target: no normalisation), for static files.
struct HttpReply {
  int status = 0;
  std::string content_type;
  std::string body;
};

inline HttpReply http_get(std::uint16_t port, const std::string& target) {
  net::io_context ioc;
  beast::tcp_stream stream(ioc);
  stream.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
  http::request<http::empty_body> req{http::verb::get, target, 11};
  req.set(http::field::host, "127.0.0.1:" + std::to_string(port));
  http::write(stream, req);
  beast::flat_buffer b;
  http::response<http::string_body> res;
  beast::error_code ec;
  http::read(stream, b, res, ec);
  HttpReply r;
  r.status = static_cast<int>(res.result_int());
  r.content_type = std::string(res[http::field::content_type]);
  r.body = res.body();
  return r;
}

}  // namespace symphony::test
